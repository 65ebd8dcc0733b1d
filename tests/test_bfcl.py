"""BFCL reading and AST checking: a table of BFCL's rules, the sample files, a property test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from toolmodal import bfcl
from toolmodal.bfcl import ast_check, standardize_string

AREA = {"name": "area", "parameters": {"type": "dict", "required": ["base", "height"],
        "properties": {"base": {"type": "integer"}, "height": {"type": "float"},
                       "unit": {"type": "string"},
                       "dims": {"type": "tuple", "items": {"type": "integer"}},
                       "opts": {"type": "dict", "properties": {}},
                       "flag": {"type": "boolean"}}}}
HYPOT = {"name": "hypot", "parameters": {"type": "dict", "required": ["x"],
         "properties": {"x": {"type": "integer"}}}}
ANSWER = [{"area": {"base": [10], "height": [5.0], "unit": ["units", ""], "dims": [[1, 2], ""],
                    "opts": [{"mode": ["fast", "quick"]}, ""], "flag": [True, ""]}}]


def c(name: str, **arguments) -> dict:
    return {"name": name, "arguments": arguments}


# (calls, category, valid), one comment per rule.
SIMPLE = [
    ([c("area", base=10, height=5.0)], "simple_python", True),  # optional params left out
    ([c("area", base=10, height=5)], "simple_python", True),  # int accepted for float
    ([c("area", base=10.0, height=5.0)], "simple_python", False),  # float not accepted for int
    ([c("area", base=True, height=5.0)], "simple_python", False),  # bool is not an int
    ([c("area", base=10)], "simple_python", False),  # required param missing
    ([c("area", base=10, height=5.0, colour="red")], "simple_python", False),  # unexpected
    ([c("area", base=10, height=5.0, unit="Units")], "simple_python", True),  # case-insensitive
    ([c("area", base=10, height=5.0, unit="u n-i_t.s")], "simple_python", True),  # punctuation
    ([c("area", base=10, height=5.0, unit="cm")], "simple_python", False),  # not accepted
    ([c("area", base=11, height=5.0)], "simple_python", False),  # wrong number
    ([c("area", base=10, height=5.0, dims=[1, 2])], "simple_python", True),  # tuple as list
    ([c("area", base=10, height=5.0, dims=[2, 1])], "simple_python", False),  # order matters
    ([c("area", base=10, height=5.0, opts={"mode": "Quick"})], "simple_python", True),  # dict
    ([c("area", base=10, height=5.0, opts={"speed": 1})], "simple_python", False),  # dict key
    ([c("area", base=10, height=5.0, flag=True)], "simple_python", True),  # boolean value
    ([c("area", base=10, height=5.0, flag="true")], "simple_python", False),  # str for bool
    ([c("hypot", x=10)], "simple_python", False),  # wrong function name
    ([], "simple_python", False),  # no call
    ([c("area", base=10, height=5.0)] * 2, "simple_python", False),  # exactly one call
]


@pytest.mark.parametrize(("calls", "category", "valid"), SIMPLE)
def test_simple_rules(calls, category, valid):
    assert ast_check([AREA], calls, ANSWER, category).valid is valid


PAR_ANSWER = [{"hypot": {"x": [3]}}, {"hypot": {"x": [4]}}, {"area": {"base": [1],
                                                                       "height": [2.0]}}]


@pytest.mark.parametrize(("calls", "category", "valid"), [
    ([c("hypot", x=4), c("area", base=1, height=2), c("hypot", x=3)], "parallel_multiple",
     True),  # any order
    ([c("hypot", x=3), c("hypot", x=4)], "parallel_multiple", False),  # one call missing
    ([c("hypot", x=3), c("hypot", x=3), c("area", base=1, height=2)], "parallel_multiple",
     False),  # one output cannot match two answers
])
def test_parallel_is_order_free(calls, category, valid):
    assert ast_check([AREA, HYPOT], calls, PAR_ANSWER, category).valid is valid


def test_multiple_picks_the_answers_function():
    answer = [{"hypot": {"x": [3]}}]
    assert ast_check([AREA, HYPOT], [c("hypot", x=3)], answer, "multiple").valid
    assert not ast_check([AREA, HYPOT], [c("area", base=3, height=1.0)], answer,
                         "multiple").valid


def test_irrelevance_passes_only_without_calls():
    assert ast_check([AREA], [], None, "irrelevance").valid
    assert not ast_check([AREA], [c("area", base=1, height=1.0)], None, "irrelevance").valid


def test_standardize_string_matches_bfcl():
    assert standardize_string("San Diego, CA") == "sandiegoca"
    assert standardize_string("it's A-B_c*d^e/f.g") == 'it"sabcdefg'


def test_string_given_for_int_is_a_variable_only_if_answer_is_a_string():
    fn = {"name": "f", "parameters": {"type": "dict", "required": ["n"],
                                      "properties": {"n": {"type": "integer"}}}}
    assert ast_check([fn], [c("f", n="count")], [{"f": {"n": ["count"]}}], "simple").valid
    assert not ast_check([fn], [c("f", n="count")], [{"f": {"n": [3]}}], "simple").valid


def _first_answer(truth: list[dict]) -> list[dict]:
    """A call list built from the first accepted value of each answer (no "" kept)."""
    calls = []
    for entry in truth:
        ((name, params),) = entry.items()
        args = {k: v[0] for k, v in params.items() if v[0] != ""}
        args = {k: ({kk: vv[0] for kk, vv in v.items()} if isinstance(v, dict) else v)
                for k, v in args.items()}
        calls.append({"name": name, "arguments": args})
    return list(reversed(calls))


@pytest.mark.parametrize("category", ["simple_python", "multiple", "parallel",
                                      "parallel_multiple"])
def test_sample_ground_truth_scores_perfectly(bfcl_dir: Path, category: str):
    questions = bfcl.load_questions(bfcl_dir / f"BFCL_v4_{category}.json")
    answers = bfcl.load_answers(bfcl_dir / "possible_answer" / f"BFCL_v4_{category}.json")
    predictions = {q.id: _first_answer(answers[q.id]) for q in questions}
    result = bfcl.score_questions(questions, answers, predictions)
    assert result["accuracy"] == 1.0, result["results"]
    empty = bfcl.score_questions(questions, answers, {q.id: [] for q in questions})
    assert empty["accuracy"] == 0.0


def test_missing_prediction_fails_and_bad_line_names_file(tmp_path: Path, bfcl_dir: Path):
    questions = bfcl.load_questions(bfcl_dir / "BFCL_v4_irrelevance.json")
    assert bfcl.score_questions(questions, {}, {})["accuracy"] == 0.0
    bad = tmp_path / "pred.jsonl"
    bad.write_text('{"id": "x", "calls": []}\nnot json\n')
    with pytest.raises(ValueError, match="pred.jsonl:2"):
        bfcl.predictions_by_id(bad)


values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
                      lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(st.text(max_size=4), inner, max_size=3), max_leaves=6)


@settings(max_examples=200, deadline=None)
@given(name=st.sampled_from(["area", "hypot", "other"]),
       args=st.dictionaries(st.sampled_from(["base", "height", "unit", "dims", "opts", "flag",
                                             "x", "zzz"]), values, max_size=5),
       category=st.sampled_from(["simple_python", "multiple", "parallel", "irrelevance"]))
def test_checker_never_crashes_on_any_call(name, args, category):
    calls = [{"name": name, "arguments": args}]
    answer = None if category == "irrelevance" else ANSWER
    result = ast_check([AREA, HYPOT], calls, answer, category)
    assert isinstance(result.valid, bool)
    json.dumps(result.error)
