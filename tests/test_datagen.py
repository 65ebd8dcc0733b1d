"""Data generation end to end on a 10-tool catalogue (tests/data/datagen): contract, determinism,
held-out tools, chains, irrelevance, masking, prompt variants, curriculum and the card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from toolmodal.calls import ToolCall, check_call, parse_output
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.card import plot_distributions
from toolmodal.datagen.config import TEST_SPLITS, TRAIN_SPLITS, load_variants
from toolmodal.datagen.curriculum import difficulty, order_by_difficulty, stage_by_difficulty
from toolmodal.paths import project_path
from toolmodal.schema import Catalogue, Tool

DATA = Path(__file__).parent / "data" / "datagen"
COLUMNS = {"id", "phase", "kind", "prompt", "completion", "tools", "expected_calls",
           "difficulty", "n_tools", "category", "prompt_variant", "group"}


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.from_json((DATA / "catalogue.json").read_text())


@pytest.fixture(scope="module")
def generated(catalogue):
    return generate_dataset(catalogue, GenerationConfig(examples=300, seed=3))


def _rows(dataset, splits=None):
    return [r for s in (splits or list(dataset)) for r in dataset[s]]


def test_contract_splits_and_columns(generated):
    dataset, card = generated
    assert set(dataset) == set(TRAIN_SPLITS) | set(TEST_SPLITS)
    for split in dataset:
        assert set(dataset[split].column_names) == COLUMNS
        assert len(dataset[split]) == card["splits"][split] > 0
    row = dataset["joint_train"][0]
    assert [m["role"] for m in row["prompt"][:2]] == ["system", "user"]
    assert row["completion"][0]["role"] == "assistant"


def test_every_target_parses_to_expected_calls_and_validates(generated):
    dataset, _ = generated
    for row in _rows(dataset):
        tools = [Tool(**t) for t in json.loads(row["tools"])]
        expected = [ToolCall(c["name"], c["arguments"]) for c in json.loads(row["expected_calls"])]
        parsed = parse_output(row["completion"][0]["content"])
        assert parsed.ok and parsed.calls == expected, row["id"]
        assert not any(check_call(c, tools) for c in expected), row["id"]
        assert row["n_tools"] == len(tools)


def test_same_seed_same_dataset_other_seed_differs(catalogue, generated):
    dataset, _ = generated
    again, _ = generate_dataset(catalogue, GenerationConfig(examples=300, seed=3))
    other, _ = generate_dataset(catalogue, GenerationConfig(examples=300, seed=4))
    for split in dataset:
        assert dataset[split].to_list() == again[split].to_list(), split
    assert dataset["joint_train"].to_list() != other["joint_train"].to_list()


def test_held_out_tools_only_in_test_splits(generated):
    dataset, card = generated
    held = {t["name"] for t in card["held_out_tools"]}
    assert len(held) == 2  # 25% of 10 tools
    for row in _rows(dataset, TRAIN_SPLITS):
        assert not held & {t["name"] for t in json.loads(row["tools"])}, row["id"]
    unseen_targets = {c["name"] for r in dataset["test_unseen"]
                      for c in json.loads(r["expected_calls"])}
    assert unseen_targets and unseen_targets <= held


def test_no_held_out_tools_is_refused_naming_the_field():
    with pytest.raises(ValueError, match="held_out_share"):
        GenerationConfig(held_out_share=0.0)


def test_phases_kinds_and_sizes(generated):
    dataset, _ = generated
    assert {r["phase"] for r in dataset["selection_train"]} == {"selection"}
    assert all(r["n_tools"] == 1 for r in dataset["arguments_train"])
    assert min(r["n_tools"] for r in dataset["selection_train"]) >= 3
    joint = {r["kind"] for r in dataset["joint_train"]}
    assert {"single", "parallel", "multiple", "chain", "irrelevance"} <= joint
    parallel = next(r for r in dataset["joint_train"] if r["kind"] == "parallel")
    calls = json.loads(parallel["expected_calls"])
    assert len(calls) == 2 and calls[0]["name"] == calls[1]["name"]
    assert calls[0]["arguments"] != calls[1]["arguments"]


def test_chain_steps_carry_history_and_use_earlier_results(generated):
    dataset, _ = generated
    later = [r for r in dataset["test_chain"] if len(r["prompt"]) > 2]
    assert later
    for row in later:
        roles = [m["role"] for m in row["prompt"]]
        assert roles[:2] == ["system", "user"] and roles[2:] == ["assistant", "tool"] * (
            (len(roles) - 2) // 2)
        result = json.loads(row["prompt"][-1]["content"])
        call = json.loads(row["expected_calls"])[0]
        used = [v for v in call["arguments"].values() if isinstance(v, (str, int, float))]
        assert set(used) & {v for v in result.values() if isinstance(v, (str, int, float))}
    first_steps = [r for r in dataset["test_chain"] if len(r["prompt"]) == 2]
    assert len(first_steps) >= 1


def test_irrelevance_rows_make_no_call_and_offer_no_source_tool(generated):
    dataset, _ = generated
    for row in dataset["test_irrelevance"]:
        assert json.loads(row["expected_calls"]) == []
        text = row["completion"][0]["content"]
        assert parse_output(text).calls == [] and text.strip()


def test_masked_rows_are_consistent(catalogue):
    config = GenerationConfig(examples=120, seed=5, masking_probability=1.0)
    dataset, card = generate_dataset(catalogue, config)
    names = {t.name for t in catalogue.tools}
    masked = [r for r in _rows(dataset, ["selection_train", "arguments_train"])
              if r["kind"] != "irrelevance"]
    assert card["masked_rows"] > 0 and masked
    for row in masked:
        tools = json.loads(row["tools"])
        assert not names & {t["name"] for t in tools}, row["id"]
        system = row["prompt"][0]["content"]
        call = json.loads(row["expected_calls"])[0]
        assert call["name"] in system and call["name"] in row["completion"][0]["content"]
    test_names = {t["name"] for r in dataset["test_seen"] for t in json.loads(r["tools"])}
    assert test_names <= names  # test splits are never masked


def test_prompt_variants_mixed_at_configured_share(generated):
    dataset, card = generated
    folder = project_path(GenerationConfig().system_prompts_dir)
    variants = {v.name: v for v in load_variants(folder)}
    assert len(variants) >= 5  # all_required was merged into default (same targets)
    training = _rows(dataset, TRAIN_SPLITS)
    share = sum(r["prompt_variant"] != "default" for r in training) / len(training)
    assert 0.1 < share < 0.3
    for row in training:
        variant = variants[row["prompt_variant"]]
        assert row["prompt"][0]["content"].startswith(variant.text)
        if variant.style == "python" and row["kind"] not in ("irrelevance",):
            assert "(" in row["completion"][0]["content"].split("<tool_call>")[1]
    assert all(r["prompt_variant"] == "default" for r in _rows(dataset, TEST_SPLITS))


def test_curriculum_difficulty_order_and_stages(generated):
    dataset, _ = generated
    assert difficulty(3, 1, 0, 1, 1) == 1
    assert difficulty(22, 5, 2, 2, 3) > difficulty(5, 2, 0, 1, 1)
    ordered = order_by_difficulty(dataset["selection_train"])
    levels = ordered["difficulty"]
    assert list(levels) == sorted(levels)
    stages = stage_by_difficulty(dataset["joint_train"], [2, 4])
    assert sum(len(s) for s in stages) == len(dataset["joint_train"])
    assert all(d <= 2 for d in stages[0]["difficulty"])
    assert all(d > 4 for d in stages[2]["difficulty"])


def test_card_counts_and_plot(generated, tmp_path):
    dataset, card = generated
    total = sum(len(dataset[s]) for s in dataset)
    assert card["rows"] == total == sum(card["phases"].values()) == sum(card["kinds"].values())
    assert sum(card["difficulty"].values()) == total
    assert set(card["categories"]) <= {"weather", "travel", "mail", "math", "files", "none"}
    assert card["rejected"] == sum(card["rejections"].values())
    png = plot_distributions(card, tmp_path / "d.png")
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_config_rejects_bad_shares():
    with pytest.raises(ValueError, match="phase_shares"):
        GenerationConfig(phase_shares={"selection": 0.5, "arguments": 0.2, "joint": 0.2})
    with pytest.raises(ValueError, match="unknown keys"):
        GenerationConfig(joint_kinds={"single": 1.0, "magic": 0.0})
    with pytest.raises(ValueError, match="selection_kinds: unknown keys .'chain'."):
        GenerationConfig(selection_kinds={"single": 0.8, "chain": 0.2})


def test_tools_with_list_or_object_defaults_generate(catalogue):
    """A tool whose default is a list (unhashable) is drawn like any other."""
    tools = list(catalogue.tools)
    tool = next(t for t in tools if any(p.type == "array" for p in t.parameters))
    param = next(p for p in tool.parameters if p.type == "array")
    listy = param.model_copy(update={"required": False, "default": [], "has_default": True})
    tools[tools.index(tool)] = tool.model_copy(update={"parameters": tuple(
        listy if p is param else p for p in tool.parameters)})
    dataset, _ = generate_dataset(catalogue.model_copy(update={"tools": tools}),
                                  GenerationConfig(examples=120, seed=5))
    offered = [r for s in dataset for r in dataset[s] if f'"name": "{tool.name}"' in r["tools"]]
    assert offered, f"{tool.name} (list default) never offered"
