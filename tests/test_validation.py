"""The validation gate: a clean generated dataset passes; each injected corruption is caught by
the expectation named for it; the report is self-contained; the data commands' exit codes."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from toolmodal.cli import main
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.config import TRAIN_SPLITS
from toolmodal.datagen.generate import rows_to_dataset
from toolmodal.schema import Catalogue
from toolmodal.validation import (
    DataValidationError,
    ValidationConfig,
    raise_on_failure,
    validate_dataset,
    write_report,
)

DATA = Path(__file__).parent / "data" / "datagen"


@pytest.fixture(scope="module")
def generated():
    catalogue = Catalogue.from_json((DATA / "catalogue.json").read_text())
    dataset, card = generate_dataset(catalogue, GenerationConfig(examples=300, seed=11))
    return {s: dataset[s].to_list() for s in dataset}, card


def _validate(splits: dict[str, list[dict]], card: dict):
    from datasets import DatasetDict

    dataset = DatasetDict({s: rows_to_dataset(rows) for s, rows in splits.items()})
    return validate_dataset(dataset, card, ValidationConfig())


def _first_call_row(rows):
    return next(r for r in rows if json.loads(r["expected_calls"]))


# Each corruption edits the splits in place; the value is the check that must fail.
def garbage_target(s, card):
    s["joint_train"][0]["completion"][0]["content"] = '<tool_call>{"name": broken'


def held_out_tool_in_training(s, card):
    names = {t["name"] for t in card["held_out_tools"]}
    held = [t for t in json.loads(_first_call_row(s["test_unseen"])["tools"]) if t["name"] in names]
    row = s["selection_train"][0]
    row["tools"] = json.dumps(json.loads(row["tools"]) + held[:1])


def duplicate_row(s, card):
    s["arguments_train"].append(copy.deepcopy(s["arguments_train"][0]) | {"id": "dup"})


def one_tool_dominates(s, card):
    source = _first_call_row(s["arguments_train"])
    rows = [r for split in TRAIN_SPLITS for r in s[split] if json.loads(r["expected_calls"])]
    for row in rows[: int(len(rows) * 0.7)]:
        for key in ("tools", "expected_calls", "completion"):
            row[key] = copy.deepcopy(source[key])


def too_long(s, card):
    s["joint_train"][1]["prompt"][1]["content"] += " filler" * 20000


def phase_missing(s, card):
    s["selection_train"], s["selection_validation"] = [], []


def all_irrelevance(s, card):
    for split in ("joint_train", "arguments_train"):
        for row in s[split]:
            row["kind"] = "irrelevance"


def one_variant_only(s, card):
    for split in TRAIN_SPLITS:
        for row in s[split]:
            row["prompt_variant"] = "concise"


def empty_query(s, card):
    s["test_seen"][0]["prompt"][1]["content"] = "   "


def wrong_argument_type(s, card):
    def first_string(row):
        calls = json.loads(row["expected_calls"])
        return bool(calls) and any(isinstance(v, str) for v in calls[0]["arguments"].values())

    row = next(r for r in s["arguments_train"] if first_string(r))
    calls = json.loads(row["expected_calls"])
    key = next(k for k, v in calls[0]["arguments"].items() if isinstance(v, str))
    calls[0]["arguments"][key] = 12345
    row["expected_calls"] = json.dumps(calls)


def unknown_phase(s, card):
    s["joint_validation"][0]["phase"] = "pretraining"


CORRUPTIONS = [
    (garbage_target, "targets_parse_and_validate"),
    (held_out_tool_in_training, "no_held_out_tool_in_training"),
    (duplicate_row, "no_duplicate_query_tools"),
    (one_tool_dominates, "tool_class_balance"),
    (too_long, "token_length_within_budget"),
    (phase_missing, "phase_share_selection"),
    (all_irrelevance, "irrelevance_share"),
    (one_variant_only, "prompt_variant_share"),
    (empty_query, "no_empty_queries"),
    (wrong_argument_type, "argument_values_of_declared_types"),
    (unknown_phase, "known_phases"),
]


def test_clean_dataset_passes(generated, tmp_path):
    splits, card = generated
    outcome = _validate(splits, card)
    assert outcome.success, [(c.name, c.observed) for c in outcome.checks if not c.success]
    assert len(outcome.checks) >= 14
    html_path, json_path = write_report(outcome, tmp_path)
    page = html_path.read_text()
    assert "PASSED" in page and "http://" not in page and "https://" not in page
    assert json.loads(json_path.read_text())["success"] is True


@pytest.mark.parametrize(("corrupt", "check"), CORRUPTIONS, ids=[c[1] for c in CORRUPTIONS])
def test_corruption_is_caught_by_its_expectation(generated, corrupt, check):
    splits, card = copy.deepcopy(generated)
    corrupt(splits, card)
    outcome = _validate(splits, card)
    failed = {c.name for c in outcome.checks if not c.success}
    assert not outcome.success and check in failed, failed
    with pytest.raises(DataValidationError, match=check):
        raise_on_failure(outcome, "report.html")


def test_generate_and_validate_commands(tmp_path, capsys, tiny_model_dir):
    out = tmp_path / "data"
    schemas = str(DATA / "schemas")
    assert main(["data", "generate", "--schemas", schemas, "--out", str(out),
                 "--examples", "200", "--seed", "2"]) == 0
    assert (out / "card.json").is_file() and (out / "distributions.png").is_file()
    assert main(["data", "generate", "--schemas", schemas, "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["data", "validate", str(out)]) == 0
    assert str(out / "report.html") in capsys.readouterr().out
    assert main(["data", "validate", str(out), "--naturalness-model", str(tiny_model_dir)]) == 1
    natural = json.loads((out / "report.json").read_text())  # a random tiny model: high NLL
    assert natural["failed"] == ["request_naturalness"]
    card = json.loads((out / "card.json").read_text())
    card["config"]["variant_share"] = 0.9  # the data no longer matches its config
    (out / "card.json").write_text(json.dumps(card))
    assert main(["data", "validate", str(out)]) == 1
    assert json.loads((out / "report.json").read_text())["failed"] == ["prompt_variant_share"]


def test_selection_stage_with_declining_rows_generates_and_passes():
    # Choosing no tool is a selection too: `selection_kinds` may hold irrelevance rows; the
    # gate's expected no-call share then counts them.
    catalogue = Catalogue.from_json((DATA / "catalogue.json").read_text())
    config = GenerationConfig(examples=300, seed=3, selection_kinds={
        "single": 0.5, "multiple": 0.2, "irrelevance": 0.3})
    dataset, card = generate_dataset(catalogue, config)
    declining = [r for r in dataset["selection_train"] if r["kind"] == "irrelevance"]
    assert declining and all(json.loads(r["expected_calls"]) == [] for r in declining)
    outcome = validate_dataset(dataset, card, ValidationConfig())
    assert outcome.success, [(c.name, c.observed) for c in outcome.checks if not c.success]


def test_answers_longer_than_the_evaluation_budget_fail_the_gate(generated, tiny_model_dir):
    # A gold answer the evaluation's max_new_tokens cannot hold cannot score: the gate counts
    # each test split's answers (+1 for the end of turn) and names the rows over the budget.
    from datasets import DatasetDict
    from transformers import AutoTokenizer

    from toolmodal.validation.answers import answer_tokens

    splits, card = copy.deepcopy(generated)
    dataset = DatasetDict({s: rows_to_dataset(rows) for s, rows in splits.items()})
    lengths = answer_tokens(dataset, AutoTokenizer.from_pretrained(str(tiny_model_dir)))
    assert set(lengths) == {"test_seen", "test_unseen", "test_chain", "test_irrelevance"}
    budget = max(n for rows in lengths.values() for _, n in rows)

    def gate(data, share):
        config = ValidationConfig(max_request_nll=None, max_pool_request_nll=None,
                                  max_answer_tokens=budget, answer_fit_share=share)
        outcome = validate_dataset(data, card, config, model_dir=tiny_model_dir)
        return next(c for c in outcome.checks if c.name == "answers_fit_generation_budget")

    assert gate(dataset, 1.0).success and gate(dataset, 1.0).observed == 1.0
    row = splits["test_unseen"][0]
    row["completion"][0]["content"] = "Sure. " * 50 + row["completion"][0]["content"]
    longer = DatasetDict({s: rows_to_dataset(rows) for s, rows in splits.items()})
    failed = gate(longer, 1.0)
    assert not failed.success
    assert failed.details["rows"][0].startswith(f"test_unseen/{row['id']} (")
    assert failed.details["splits"]["test_unseen"]["over"] == 1
    assert failed.observed == pytest.approx(1 - 1 / len(splits["test_unseen"]), abs=1e-4)
    assert gate(longer, 0.5).success   # one row over: within a looser share
