"""Read BFCL question/answer files and score calls with BFCL's AST checker semantics (Python).

Follows `bfcl_eval/eval_checker/ast_eval/ast_checker.py` (gorilla, BFCL v4) for the Python
language, rule for rule: the function name must match; required parameters must be present;
a parameter missing from the function or from the possible answer is unexpected; `""` among the
accepted values marks a parameter as optional; types are checked strictly (bool is not int) with
an int accepted for a float and tuples read as lists; strings (also inside lists and dicts) are
compared after `standardize_string` (drop spaces and `,./-_*^`, lowercase, ' -> "); a value of
the possible answer's type instead of the declared type counts as a "variable" and must then be
among the accepted values verbatim; categories with "parallel" in their name match calls
order-free (greedy, first valid match, as BFCL), "multiple" and simple categories need exactly
one call, and "irrelevance" passes exactly when no call is made (as BFCL, an output that does not
parse as a call counts as none; `toolmodal.eval_metrics` counts such an attempt as a call).

Deliberately left out: Java/JavaScript type conversion, multi-turn and live/executable
categories, model-specific name mangling (dots to underscores), and prompting (see
`toolmodal.evaluate`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PYTHON_TYPES: dict[str, type] = {
    "string": str, "integer": int, "float": float, "boolean": bool, "array": list,
    "tuple": list, "dict": dict, "any": str,
}
NESTED_TYPES = ("array", "tuple")


@dataclass(frozen=True)
class Question:
    """One BFCL question: its id, category, chat turn and offered functions (raw BFCL dicts)."""

    id: str
    category: str
    messages: list[dict]
    functions: list[dict]


@dataclass(frozen=True)
class CheckResult:
    """Verdict of the AST checker; `error_type` uses BFCL's names (e.g. "value_error:string")."""

    valid: bool
    error: str = ""
    error_type: str = ""


OK = CheckResult(valid=True)


def read_jsonl(path: Path) -> list[dict]:
    """Read a JSON Lines file; a bad line raises naming the file and line number."""
    rows = []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not JSON: {exc}") from exc
    return rows


def category_of(question_id: str) -> str:
    """BFCL category from an id like "parallel_multiple_12" -> "parallel_multiple"."""
    return question_id.rsplit("_", 1)[0]


def load_questions(path: Path) -> list[Question]:
    """Read a BFCL question file (single-turn: the first turn of each record is used)."""
    questions = []
    for row in read_jsonl(path):
        if len(row["question"]) != 1:
            raise ValueError(f"{path}: {row['id']} has {len(row['question'])} turns; "
                             "multi-turn categories are not supported")
        questions.append(Question(id=row["id"], category=category_of(row["id"]),
                                  messages=row["question"][0], functions=row["function"]))
    return questions


def load_answers(path: Path) -> dict[str, list[dict]]:
    """Read a possible_answer file: id -> ground truth list of {func_name: {param: [values]}}."""
    return {row["id"]: row["ground_truth"] for row in read_jsonl(path)}


def standardize_string(text: str) -> str:
    """BFCL's normalisation: drop spaces and ,./-_*^, lowercase, single to double quotes."""
    return re.sub(r"[ ,./\-_*^]", "", text).lower().replace("'", '"')


def _std(value: Any) -> Any:
    return standardize_string(value) if isinstance(value, str) else value


def ast_check(functions: list[dict], calls: list[dict], ground_truth: list[dict] | None,
              category: str) -> CheckResult:
    """Check predicted calls against BFCL's possible answers.

    Args:
        functions: The question's function descriptions (BFCL format).
        calls: Predicted calls as [{"name": ..., "arguments": {...}}].
        ground_truth: Possible answers ([{func_name: {param: [accepted, ...]}}]); None for
            irrelevance.
        category: BFCL category, e.g. "simple_python", "parallel_multiple", "irrelevance".
    """
    if "irrelevance" in category:
        if calls:
            return CheckResult(False, f"made {len(calls)} call(s)", "irrelevance:called")
        return OK
    if ground_truth is None:
        raise ValueError(f"category {category!r} needs a possible answer")
    outputs = [{c["name"]: c["arguments"]} for c in calls]
    if len(outputs) != len(ground_truth):
        return CheckResult(False, f"expected {len(ground_truth)} call(s), got {len(outputs)}",
                           "wrong_count")
    if "parallel" in category:
        return _parallel_no_order(functions, outputs, ground_truth)
    if "multiple" in category:
        name = next(iter(ground_truth[0]))
        return simple_check(_find(functions, name), outputs[0], ground_truth[0])
    return simple_check(functions[0], outputs[0], ground_truth[0])


def _find(functions: list[dict], name: str) -> dict:
    for function in functions:
        if function["name"] == name:
            return function
    raise ValueError(f"possible answer names {name!r}, which is not among the functions")


def _parallel_no_order(functions: list[dict], outputs: list[dict],
                       ground_truth: list[dict]) -> CheckResult:
    matched: set[int] = set()
    for answer in ground_truth:
        function = _find(functions, next(iter(answer)))
        result = CheckResult(False, "no candidate left", "cannot_find_match")
        for index, output in enumerate(outputs):
            if index in matched:
                continue
            result = simple_check(function, output, answer)
            if result.valid:
                matched.add(index)
                break
        if not result.valid:
            return CheckResult(False, f"no match for {next(iter(answer))}: {result.error}",
                               "parallel:cannot_find_match")
    return OK


def simple_check(function: dict, output: dict, answer: dict) -> CheckResult:
    """BFCL's simple_function_checker for one call ({name: args}) against one answer."""
    accepted = next(iter(answer.values()))
    name = function["name"]
    if name not in output:
        return CheckResult(False, f"function {name!r} not called", "wrong_func_name")
    args = output[name]
    properties = function["parameters"]["properties"]
    for param in function["parameters"].get("required", []):
        if param not in args:
            return CheckResult(False, f"missing required parameter {param!r}",
                               "missing_required")
    for param, value in args.items():
        if param not in properties or param not in accepted:
            return CheckResult(False, f"unexpected parameter {param!r}", "unexpected_param")
        result = _check_param(name, param, value, properties[param], accepted[param])
        if not result.valid:
            return result
    for param, values in accepted.items():
        if param not in args and "" not in values:
            return CheckResult(False, f"optional parameter {param!r} not provided and not "
                               "marked optional", "missing_optional")
    return OK


def _check_param(function: str, param: str, value: Any, details: dict,
                 accepted: list) -> CheckResult:
    declared = details["type"]
    if declared not in PYTHON_TYPES:
        raise ValueError(f"{function}.{param}: unknown BFCL type {declared!r}")
    expected = PYTHON_TYPES[declared]
    nested = None
    if declared in NESTED_TYPES:
        if "items" not in details:
            raise ValueError(f"{function}.{param}: {declared} without 'items'")
        nested = PYTHON_TYPES[details["items"]["type"]]
    if declared == "tuple" and isinstance(value, tuple):
        value = list(value)
    if declared == "float" and type(value) is int:
        value = float(value)
    type_ok, is_variable = _type_check(value, accepted, expected, nested)
    if not type_ok:
        return CheckResult(False, f"{param!r}: expected {declared}, got {type(value).__name__} "
                           f"{value!r}", "type_error")
    if not is_variable:
        if expected is dict:
            return _dict_check(param, value, accepted)
        if expected is list and nested is dict:
            return _list_dict_check(param, value, accepted)
        if expected is str:
            return _value_in(param, _std(value), [_std(a) for a in accepted if isinstance(a, str)],
                             "value_error:string")
        if expected is list:
            return _value_in(param, [_std(v) for v in value],
                             [[_std(x) for x in option] for option in accepted],
                             "value_error:list/tuple")
    return _value_in(param, value, accepted, "value_error:others")


def _value_in(param: str, value: Any, accepted: list, error_type: str) -> CheckResult:
    if value in accepted:
        return OK
    return CheckResult(False, f"invalid value for {param!r}: {value!r}, expected one of "
                       f"{accepted}", error_type)


def _answer_type(accepted: list) -> type | None:
    return next((type(a) for a in accepted if a != ""), None)


def _type_check(value: Any, accepted: list, expected: type,
                nested: type | None) -> tuple[bool, bool]:
    """BFCL's type_checker: (valid, is_variable), nested checks one level deep."""
    answer_type = _answer_type(accepted)
    is_variable = answer_type is not None and answer_type is not expected
    if type(value) is expected:
        if nested is None:
            return True, is_variable
        for option in accepted:
            if not isinstance(option, list) or all(
                    _type_check(item, option, nested, None)[0] for item in value):
                return True, is_variable
    if answer_type is not None and type(value) is answer_type:
        return True, True
    return False, False


def _dict_check(param: str, value: dict, accepted: list) -> CheckResult:
    result = CheckResult(False, f"{param!r}: no accepted dict", "dict_checker:unclear")
    for option in accepted:
        if option == "":
            continue
        result = _one_dict(param, value, option)
        if result.valid:
            return OK
    return result


def _one_dict(param: str, value: dict, option: dict) -> CheckResult:
    for key, item in value.items():
        if key not in option:
            return CheckResult(False, f"{param!r}: unexpected dict key {key!r}",
                               "value_error:dict_key")
        if _std(item) not in [_std(a) for a in option[key]]:
            return CheckResult(False, f"{param!r}: invalid value for {key!r}: {item!r}",
                               "value_error:dict_value")
    for key, values in option.items():
        if key not in value and "" not in values:
            return CheckResult(False, f"{param!r}: missing dict key {key!r}",
                               "value_error:dict_key")
    return OK


def _list_dict_check(param: str, value: list, accepted: list) -> CheckResult:
    result = CheckResult(False, f"{param!r}: no accepted list of dicts", "list_dict:unclear")
    for option in accepted:
        if len(value) != len(option):
            result = CheckResult(False, f"{param!r}: wrong number of dicts",
                                 "value_error:list_dict_count")
            continue
        results = [_one_dict(param, v, o) for v, o in zip(value, option, strict=True)]
        bad = next((r for r in results if not r.valid), None)
        if bad is None:
            return OK
        result = bad
    return result


def predictions_by_id(path: Path) -> dict[str, list[dict]]:
    """Read a predictions file written by `toolmodal predict`: id -> calls."""
    return {row["id"]: row["calls"] for row in read_jsonl(path)}


def score_questions(questions: list[Question], answers: dict[str, list[dict]],
                    predictions: dict[str, list[dict]]) -> dict[str, Any]:
    """Score every question; a question without a prediction counts as failed.

    Returns:
        {"accuracy", "correct", "total", "results": {id: {"valid", "error", "error_type"}}}.
    """
    results = {}
    for q in questions:
        truth = answers.get(q.id)
        if truth is None and "irrelevance" not in q.category:
            raise ValueError(f"no possible answer for {q.id}")
        if q.id not in predictions:
            results[q.id] = CheckResult(False, "no prediction", "missing_prediction")
            continue
        results[q.id] = ast_check(q.functions, predictions[q.id], truth, q.category)
    correct = sum(r.valid for r in results.values())
    return {"accuracy": correct / len(questions) if questions else 0.0, "correct": correct,
            "total": len(questions),
            "results": {k: {"valid": r.valid, "error": r.error, "error_type": r.error_type}
                        for k, r in results.items()}}
