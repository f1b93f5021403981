"""Equal recorded arrays match in every comparison mode (the comparison takes a shortcut for them), and the
shortcut never lets through what the full comparison rejects: non-finite entries, other shapes, other values."""
from __future__ import annotations

import numpy as np
import pytest

from autograder.checks.mlph_check import MODES, compare, encode

VALUES = np.array([[1.0, -2.0, 0.5], [3.0, 4.25, -1.0]])


@pytest.mark.parametrize("mode", MODES)
def test_an_array_equal_to_the_reference_matches(mode):
    assert compare(encode(VALUES), encode(VALUES.copy()), mode, 1e-6, 1e-9) is None


@pytest.mark.parametrize("mode", MODES)
def test_equal_non_finite_entries_never_match(mode):
    bad = VALUES.copy()
    bad[0, 0] = np.nan
    assert compare(encode(bad), encode(bad.copy()), mode, 1e-6, 1e-9) == \
        "the array holds NaN, infinite or non-numeric entries"


def test_equal_data_of_another_shape_does_not_match():
    assert compare(encode(VALUES.reshape(3, 2)), encode(VALUES), "exact", 0.0, 0.0) == "shape (3, 2) instead of (2, 3)"


def test_integers_equal_to_the_reference_floats_match_and_other_values_do_not():
    assert compare(encode(np.array([1, 2, 3])), encode(np.array([1.0, 2.0, 3.0])), "exact", 0.0, 0.0) is None
    assert compare(encode(np.array([1, 2, 4])), encode(np.array([1.0, 2.0, 3.0])), "exact", 0.0, 0.0) == \
        "the values differ"
