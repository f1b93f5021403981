"""A tolerance failure in ``check`` names the entry that failed, with its own values, not the largest
difference of some other entry that is within its tolerance."""
from __future__ import annotations

import numpy as np
import pytest

from autograder.checks.mlph_check import check, compare, encode


def test_the_failing_entry_is_named_not_the_largest_difference():
    # entry 0 differs by 5e-4 but is within rtol * 1000; entry 1 differs by 1e-4 and fails
    why = compare(encode([1000.0005, 1e-4]), encode([1000.0, 0.0]), "close", 1e-6, 1e-9)
    assert why is not None
    assert why.startswith("entry 1: got 0.0001, expected 0.0 (difference 0.0001;")
    assert why.endswith("1 of 2 entries out of tolerance")


def test_a_matrix_entry_is_named_by_its_index_and_the_worst_one_relative_to_its_tolerance():
    expected = np.array([[1.0, 2.0], [3.0, 4.0]])
    actual = expected + np.array([[0.0, 3e-6], [0.0, 1e-3]])  # (0, 1) fails slightly, (1, 1) badly
    why = compare(encode(actual), encode(expected), "close", 1e-6, 1e-9)
    assert why is not None and why.startswith("entry (1, 1): got 4.001, expected 4.0")
    assert why.endswith("2 of 4 entries out of tolerance")


def test_a_canonical_mode_says_which_arrangement_the_index_refers_to():
    why = compare(encode([3.0, 1.0, 2.5]), encode([1.0, 2.0, 3.0]), "sorted", 1e-6, 1e-9)
    assert why is not None and why.startswith("entry 1 of the sorted values: got 2.5, expected 2.0")


def test_check_raises_with_the_entry_in_the_students_notebook():
    with pytest.raises(AssertionError, match=r"check 'p' failed: entry 2: got 0.3, expected 0.25"):
        check("p", np.array([0.5, 0.25, 0.3]), expected=[0.5, 0.25, 0.25])
    check("p_ok", np.array([0.5, 0.25]), expected=[0.5, 0.25 + 1e-12])  # within tolerance: no error
