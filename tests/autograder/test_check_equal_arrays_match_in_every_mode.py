"""Equal recorded arrays match in every comparison mode (the comparison takes a shortcut for them), and the
shortcut never lets through what the full comparison rejects: non-finite entries, other shapes, other values.
The modes compared in plain floats give numpy's verdicts and messages."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from autograder.checks import mlph_check
from autograder.checks.mlph_check import MODES, PLAIN_MODES, compare, encode

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


finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), mode=st.sampled_from(PLAIN_MODES),
       tol=st.sampled_from([(1e-6, 1e-9), (0.0, 0.0), (1e-2, 0.0), (0.0, 1e-3)]))
def test_the_modes_compared_without_numpy_agree_with_numpy(data, mode, tol):
    """close, exact, abs and sorted are compared in plain floats (the grader needs no numpy to score): verdict
    and message equal to numpy's comparison of the same records."""
    shape = data.draw(st.sampled_from([[3], [2, 3], [1], [2, 2, 2]]))
    size = int(np.prod(shape))
    expected = data.draw(st.lists(finite, min_size=size, max_size=size))
    noise = data.draw(st.lists(st.sampled_from([0.0, 1e-9, -1e-7, 1e-3, 1.0]), min_size=size, max_size=size))
    actual = [x + d for x, d in zip(expected, noise)]
    if data.draw(st.booleans()):
        actual = actual[::-1]
    a, e = {"shape": shape, "data": actual}, {"shape": shape, "data": expected}
    plain = compare(a, e, mode, *tol)
    saved = mlph_check.PLAIN_MODES
    mlph_check.PLAIN_MODES = ()
    try:
        with np.errstate(all="ignore"):
            assert plain == compare(a, e, mode, *tol)
    finally:
        mlph_check.PLAIN_MODES = saved
