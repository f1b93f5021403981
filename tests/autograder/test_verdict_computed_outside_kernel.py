"""The verdict is computed outside the kernel from recorded values against the solution's records."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from nbformat.v4 import new_output

from autograder.checks.mlph_check import MIME, check, compare, encode  # noqa: F401
from autograder.grading.scoring import hidden_check_names, reference_from_run, score_run
from autograder.errors import SheetError
from coursefactory import tiny_notebook


def rec(name, value, mode="close", rtol=1e-6, atol=1e-9):
    return new_output("display_data", data={MIME: {"name": name, "value": encode(value), "mode": mode,
                                                   "rtol": rtol, "atol": atol}})


def run_with(outputs: dict[str, list], states: dict[str, str] | None = None):
    nb = tiny_notebook()
    st_ = []
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid in outputs:
            c.outputs = outputs[gid]
        st_.append((states or {}).get(gid, "ok"))
    return {"notebook": nb, "states": st_}


SOLUTION = {"test_scale_visible": [rec("scale_visible", [2.0, 4.0, 6.0]), rec("scale_hidden_a", [0.0, -1.5, -3, -4.5])],
            "test_scale_more": [rec("scale_more", [[4.0, 2.0]]), rec("scale_hidden_b", [0, 0.8125, 1.625, 2.4375, 3.25])]}
POINTS = {"test_scale_visible": Fraction(1), "test_scale_more": Fraction(2)}


@pytest.fixture
def reference():
    return reference_from_run(run_with(SOLUTION), "tiny01")


def score(outputs, reference, states=None):
    return {c.grade_id: c for c in score_run(run_with(outputs, states), reference, POINTS, tiny_notebook())}


def test_solution_scores_full(reference):
    assert {g: c.points for g, c in score(SOLUTION, reference).items()} == POINTS


def test_wrong_hidden_value_fails_with_a_message_that_hides_it(reference):
    outs = dict(SOLUTION, test_scale_more=[rec("scale_more", [[4.0, 2.0]]), rec("scale_hidden_b", [0, 1, 2, 3, 4])])
    res = score(outs, reference)
    assert res["test_scale_more"].points == 0 and res["test_scale_more"].message == "a hidden test failed"
    assert res["test_scale_visible"].points == 1


def test_a_forged_correct_record_next_to_the_real_wrong_one_fails(reference):
    outs = dict(SOLUTION, test_scale_visible=[rec("scale_visible", [2.0, 4.0, 6.0]), rec("scale_visible", [3, 4, 5]),
                                              rec("scale_hidden_a", [0.0, -1.5, -3, -4.5])])
    assert score(outs, reference)["test_scale_visible"].points == 0


def test_missing_record_fails_even_without_error(reference):
    outs = dict(SOLUTION, test_scale_visible=[rec("scale_visible", [2.0, 4.0, 6.0])])
    res = score(outs, reference)["test_scale_visible"]
    assert (res.points, res.message) == (0, "a hidden test failed")


def test_student_cannot_loosen_the_tolerance(reference):
    outs = dict(SOLUTION, test_scale_more=[rec("scale_more", [[5.0, 2.0]], rtol=1e9, atol=1e9),
                                           rec("scale_hidden_b", [0, 0.8125, 1.625, 2.4375, 3.25])])
    assert score(outs, reference)["test_scale_more"].points == 0


def test_error_output_and_timeout_cost_only_that_cell(reference):
    err = new_output("error", ename="AssertionError", evalue="check 'scale_visible' failed", traceback=[])
    outs = dict(SOLUTION, test_scale_visible=SOLUTION["test_scale_visible"] + [err])
    res = score(outs, reference, states={"test_scale_more": "timeout"})
    assert res["test_scale_visible"].status == "error" and res["test_scale_visible"].points == 0
    assert res["test_scale_visible"].ename == "AssertionError"
    assert res["test_scale_visible"].message.startswith("the test stopped with a AssertionError; run this test cell")
    assert res["test_scale_more"].status == "timeout"


SMUGGLED = ["scale(np.linspace(0, 1, 5), 3.25)", "c2NhbGUobnAubGluc3BhY2UoMCwgMSwgNSksIDMuMjUp",  # base64 of it
            "7363616c65286e702e6c696e73706163652830", "fpnyr(ac.yvafcnpr(0, 1, 5), 3.25)", "3.25", "np.linspace"]


@pytest.mark.parametrize("evalue", SMUGGLED)
@pytest.mark.parametrize("ename", ["ValueError", "Leak_scale_hidden_b", "c2NhbGVfaGlkZGVu"])
def test_no_text_of_an_error_reaches_the_message(reference, ename, evalue):
    """Whatever the student's code puts into an exception (the hidden test's source, read by an input hook, in
    any encoding), the message is ours: a built-in type's name or "a class defined in your code"."""
    err = new_output("error", ename=ename, evalue=evalue, traceback=[evalue])
    res = score(dict(SOLUTION, test_scale_more=[err]), reference)["test_scale_more"]
    assert res.points == 0 and res.status == "error"
    assert evalue not in res.message and "scale_hidden" not in res.message and ename[:6] not in res.message.replace(
        "ValueError", "")
    assert res.ename == ("ValueError" if ename == "ValueError" else "")


def test_a_stub_is_not_implemented_yet(reference):
    err = new_output("error", ename="NotImplementedError", evalue="", traceback=[])
    res = score(dict(SOLUTION, test_scale_more=[err]), reference)["test_scale_more"]
    assert res.message.startswith("not implemented yet")


def test_reference_requires_passing_cells_with_records():
    with pytest.raises(SheetError, match="test cell 'test_scale_more' records no check"):
        reference_from_run(run_with(dict(SOLUTION, test_scale_more=[])), "tiny01")


def test_hidden_names_are_parsed_from_the_hidden_region():
    src = tiny_notebook().cells[3].source
    assert hidden_check_names(src) == {"scale_hidden_a"}


def test_nan_never_matches():
    assert compare(encode([np.nan, 1.0]), encode([np.nan, 1.0]), "close", 1e-6, 1e-9)
    assert compare(encode(float("nan")), encode(float("nan")), "close", 1e-6, 1e-9)


@pytest.mark.parametrize("mode,actual,ok", [
    ("colsign", np.array([[1.0, -2.0], [3.0, -4.0]]), True),
    ("colsign", np.array([[1.0, 2.0], [-3.0, 4.0]]), False),
    ("sign", -np.array([1.0, 2.0]), None),
    ("sorted", np.array([[3.0, 1.0], [4.0, 2.0]]), True),
    ("abs", np.array([[-1.0, 2.0], [-3.0, -4.0]]), True),
    ("exact", np.array([[1.0, 2.0], [3.0, 4.0 + 1e-12]]), False),
])
def test_modes(mode, actual, ok):
    expected = np.array([[1.0, 2.0], [3.0, 4.0]]) if mode != "sign" else np.array([1.0, 2.0])
    assert (compare(encode(actual), encode(expected), mode, 1e-6, 1e-9) is None) == (ok if ok is not None else True)


def test_subspace_mode_accepts_any_basis_of_the_span():
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0]
    mixed = basis @ np.array([[2.0, 1.0], [0.5, -1.0]])
    other = np.linalg.qr(rng.normal(size=(6, 2)))[0]
    assert compare(encode(mixed), encode(basis), "subspace", 1e-6, 1e-9) is None
    assert compare(encode(other), encode(basis), "subspace", 1e-6, 1e-9) is not None


@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=20))
def test_a_value_always_matches_itself_and_not_a_shifted_copy(xs):
    a = np.array(xs)
    assert compare(encode(a), encode(a), "close", 1e-9, 0.0) is None
    assert compare(encode(a + 1.0 + np.abs(a)), encode(a), "close", 1e-9, 0.0) is not None


def test_check_asserts_locally_on_expected():
    check("x", [1.0, 2.0], expected=[1.0, 2.0])
    with pytest.raises(AssertionError, match="check 'x' failed: shape"):
        check("x", [1.0, 2.0], expected=[1.0, 2.0, 3.0])


@pytest.mark.parametrize("value", ["np.linspace", "hello", 3.25, [3.25, 0.8125], [[1.0] * 3] * 2])
def test_a_recorded_value_is_not_a_channel_out_of_the_grader(reference, value):
    """A failed visible check says which check and what kind of difference, with the *reference's* visible
    expected value; nothing of the student's recorded value (text, numbers, shape) appears."""
    run = run_with(dict(SOLUTION, test_scale_visible=[rec("scale_visible", value),
                                                      rec("scale_hidden_a", [0.0, -1.5, -3, -4.5])]))
    res = {c.grade_id: c for c in score_run(run, reference, POINTS, tiny_notebook())}["test_scale_visible"]
    assert res.points == 0 and res.status == "failed"
    assert res.message.startswith("check 'scale_visible' ") and res.message.endswith("expected [2, 4, 6]")
    for shown in ("linspace", "hello", "3.25", "0.8125", "(2, 3)", "1.0"):
        assert shown not in res.message


@pytest.mark.parametrize("bad", [
    {"name": "scale_visible", "value": {"scalar": float("inf")}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"scalar": 10**400}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [10**9, 10**9], "kind": "number", "data": []}, "mode": "close",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, 4.0]}, "mode": "close",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, 4.0, "6"]}, "mode": "close",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"items": [{"items": []}] * 5000}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"scalar": "x" * 10_000}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": [2.0, 4.0, 6.0], "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "x" * 1000, "value": {"scalar": 1.0}, "mode": "close", "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, 4.0, 6.0]}, "mode": "magic",
     "rtol": 1e-6, "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, 4.0, 6.0]}, "mode": "close",
     "rtol": float("nan"), "atol": 1e-9},
    {"name": "scale_visible", "value": {"shape": [3], "kind": "number", "data": [2.0, 4.0, 6.0]}, "mode": "close",
     "rtol": 1e300, "atol": 1e300},
    {"name": ["a", "list"], "value": {}, "mode": 7}, {"name": {"a": 1}},
    "not a dict", None, [1, 2],
])
def test_a_malformed_record_is_a_failed_check_never_an_exception(reference, bad):
    """Out-of-range and malformed records are dropped by the schema (the check counts as not recorded)."""
    from autograder.checks.mlph_check import MIME

    outs = dict(SOLUTION, test_scale_visible=[new_output("display_data", data={MIME: bad}),
                                              rec("scale_hidden_a", [0.0, -1.5, -3, -4.5])])
    res = score(outs, reference)
    assert res["test_scale_visible"].points == 0 and res["test_scale_visible"].status == "failed"
    assert "was not recorded" in res["test_scale_visible"].message
    assert res["test_scale_more"].points == 2


def test_a_solution_that_cannot_run_says_why():
    run = dict(run_with(SOLUTION), status="crashed", reason="the kernel failed: bwrap: Can't find source path")
    with pytest.raises(SheetError, match="tiny01: the solution notebook could not run: the kernel failed: bwrap"):
        reference_from_run(run, "tiny01")


def test_a_ragged_sequence_is_recorded_item_by_item():
    value = [np.zeros((2, 3)), np.ones(4)]
    assert compare(encode(value), encode([np.zeros((2, 3)), np.ones(4)]), "close", 1e-6, 1e-9) is None
    assert compare(encode(value), encode([np.zeros((2, 3)), np.zeros(4)]), "close", 1e-6, 1e-9).startswith("item 1:")
