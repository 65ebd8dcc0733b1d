"""Labels and groups of generated data: irrelevance rows never offer a tool that serves their
request, the request pools are split train/test, no-call answers follow the system-prompt
variant, repeated calls make sense, and rows come in groups sharing tools and system prompt."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest

from toolmodal.calls import ToolCall
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen import examples as ex
from toolmodal.datagen.config import DEFAULT_VARIANT, TEST_SPLITS, TRAIN_SPLITS, load_variants
from toolmodal.datagen.examples import DraftError, Pool
from toolmodal.datagen.irrelevance import (
    GENERAL_TOOLS,
    KINDS,
    Request,
    load_answers,
    load_requests,
    split_requests,
)
from toolmodal.datagen.reasoning import load_reasoning, reasoning_text
from toolmodal.datagen.repeats import check_repeat, load_rules
from toolmodal.ingest import load_catalogue
from toolmodal.paths import project_path

LABELS = project_path("data/requests")
REQUESTS = load_requests(LABELS / "irrelevant.yaml")
BY_TEXT = {r.text: r for r in REQUESTS}


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue([project_path("data/tool_schemas")])


CONFIG = GenerationConfig(examples=400, seed=11, variant_share=1.0, masking_probability=0.3,
                          min_group_size=3, max_group_size=4, min_train_group_size=5,
                          max_train_group_size=6)


@pytest.fixture(scope="module")
def generated(catalogue):
    """Every training row under a non-default variant (all answer styles show up); masked
    groups included (they must keep sharing one tool block)."""
    return generate_dataset(catalogue, CONFIG)[0]


def _rows(dataset, splits):
    return [(s, r) for s in splits for r in dataset[s]]


def _query(row) -> str:
    return next(m["content"] for m in row["prompt"] if m["role"] == "user")


def test_pool_is_large_varied_and_split_without_shared_strings():
    train, test = split_requests(REQUESTS)
    assert len(REQUESTS) >= 150
    assert not {r.text for r in train} & {r.text for r in test}
    assert len(train) + len(test) == len(REQUESTS)
    for kind in KINDS:  # every kind on both sides
        assert any(r.kind == kind for r in train) and any(r.kind == kind for r in test), kind
    assert split_requests(REQUESTS) == (train, test)  # deterministic, seed-independent


def test_pool_names_only_bundled_tools_and_categories(catalogue):
    names = {t.name for t in catalogue.tools} | set(catalogue.categories)
    for request in REQUESTS:
        assert request.served_by | request.near <= names, request.text


def test_irrelevance_rows_never_offer_a_serving_tool(generated):
    rows = [(s, r) for s, r in _rows(generated, list(generated)) if r["kind"] == "irrelevance"]
    assert len(rows) > 20
    from_pool = 0
    for split, row in rows:
        offered = json.loads(row["tools"])  # masked tools keep their category
        names, categories = {t["name"] for t in offered}, {t["category"] for t in offered}
        request = BY_TEXT.get(_query(row))
        if request is not None:  # a pool request: none of its serving tools or categories
            from_pool += 1
            assert not (names | categories) & request.served_by, (split, row["id"])
        else:  # meant for a tool of `category`: nothing of that category, no web search
            assert row["category"] not in categories, (split, row["id"])
            assert not GENERAL_TOOLS & names, (split, row["id"])
    assert 0 < from_pool < len(rows)


def test_hard_negatives_offer_neighbours_but_not_the_serving_tool(catalogue):
    request = BY_TEXT["What does the word serendipity mean?"]
    pool = Pool(catalogue.tools, catalogue.tools, [])
    offers = []
    for seed in range(20):
        rng = random.Random(seed)
        rng.random = lambda: 0.0  # always a pool request
        offers.append({t.name for t in ex.irrelevance(pool, rng, 6, [request]).tools})
    assert all("lookup_dictionary_entry" not in o and "search_web" not in o for o in offers)
    assert all(o & {"translate_text", "transliterate_text"} for o in offers)


def test_the_check_rejects_a_draft_offering_a_serving_tool(catalogue, monkeypatch):
    tools = {t.name: t for t in catalogue.tools}
    request = Request("What does the word serendipity mean?", "near_miss",
                      frozenset({"lookup_dictionary_entry"}))
    rng = random.Random(0)
    rng.random = lambda: 0.0
    offered = [tools["translate_text"], tools["lookup_dictionary_entry"]]
    with pytest.raises(DraftError, match="build:no_unserved_request"):
        ex.irrelevance(Pool([], catalogue.tools, []), rng, 2, [request], offered)
    # the offer leaves serving tools out; were it to slip one in, the check catches it
    monkeypatch.setattr(ex, "offer", lambda *args, **kwargs: offered)
    with pytest.raises(DraftError, match="label:irrelevance_offers_serving_tool"):
        ex.irrelevance(Pool([], catalogue.tools, []), rng, 2, [request])


def test_training_and_test_irrelevance_share_no_request(generated):
    def queries(splits):
        return {_query(r) for _, r in _rows(generated, splits) if r["kind"] == "irrelevance"}

    assert queries(TRAIN_SPLITS) and queries(TEST_SPLITS)
    assert not queries(TRAIN_SPLITS) & queries(TEST_SPLITS)


def _answer_patterns(style: str) -> list[re.Pattern]:
    table = load_answers(LABELS / "no_call_answers.yaml")[style]
    texts = table["unserved"] + table["action"]
    patterns = [re.escape(t).replace(re.escape("{action}"), ".+") for t in texts]
    patterns += [re.escape(table.get("reason_prefix", "")) + re.escape(r.reply)
                 for r in REQUESTS if r.reply]
    return [re.compile(p + "$") for p in patterns]


def test_no_call_answers_follow_the_variant(generated):
    variants = {v.name: v for v in load_variants(project_path(CONFIG.system_prompts_dir))}
    seen_styles = set()
    for _, row in _rows(generated, TRAIN_SPLITS):
        if row["kind"] != "irrelevance":
            continue
        style = variants[row["prompt_variant"]].no_call
        answer = row["completion"][0]["content"]
        assert any(p.match(answer) for p in _answer_patterns(style)), (style, answer)
        if style == "few_words" and _query(row) not in BY_TEXT:
            assert len(answer.split()) <= 5, answer
        seen_styles.add(style)
    assert {"few_words", "reason", "sentence"} <= seen_styles


def test_the_first_word_is_the_decision(generated):
    """A no-call answer opens with "No" (small-talk replies aside) and a call row never does, not
    even its reasoning line: the no-call side has one opening, apart from the call token's."""
    replies = {r.reply for r in REQUESTS if r.reply}
    openings = {"no_call": set(), "call": set()}
    for _, row in _rows(generated, TRAIN_SPLITS):
        answer = row["completion"][0]["content"]
        if row["kind"] == "irrelevance" and answer not in replies:
            openings["no_call"].add(answer.split()[0])
        elif row["kind"] != "irrelevance":
            openings["call"].add(answer.split()[0])
    assert openings["no_call"] == {"No"}
    assert "No" not in openings["call"] and len(openings["call"]) > 1  # reasoning lines present


def test_every_variant_differs_from_the_default_in_its_targets():
    """all_required asked for what the default already does (same targets): merged into it."""
    variants = load_variants(project_path(GenerationConfig().system_prompts_dir))
    default = next(v for v in variants if v.name == DEFAULT_VARIANT)
    for variant in variants:
        if variant.name != DEFAULT_VARIANT:
            behaviour = (variant.style, variant.reasoning, variant.no_call)
            assert behaviour != (default.style, default.reasoning, default.no_call), variant.name
    concise = next(v for v in variants if v.name == "concise")
    assert concise.no_call == "few_words"


RULES = load_rules(LABELS / "parallel_calls.yaml")


@pytest.mark.parametrize(("name", "first", "second", "reason"), [
    # same source moved twice: the second move has nothing to move
    ("move_file", {"source": "a.txt", "destination": "b/"}, {"source": "a.txt",
                                                               "destination": "c/"},
     "label:same_resource_twice"),
    # two deletions of one path
    ("delete_file", {"path": "x.log"}, {"path": "x.log", "recursive": True},
     "label:same_required_arguments"),
    # identical calls
    ("get_current_weather", {"location": "Oslo"}, {"location": "Oslo"}, "label:identical_calls"),
    # only an option changes: not two requests
    ("get_current_weather", {"location": "Oslo", "units": "metric"},
     {"location": "Oslo", "units": "imperial"}, "label:same_required_arguments"),
    # a setting twice: the second undoes the first
    ("set_chat_status", {"presence": "away"}, {"presence": "online"}, "label:tool_never_repeated"),
    # overlapping message lists moved twice
    ("move_emails", {"message_ids": ["m1", "m2"], "destination": "A"},
     {"message_ids": ["m2"], "destination": "B"}, "label:same_resource_twice"),
    # two cities: fine
    ("get_current_weather", {"location": "Oslo"}, {"location": "Lima"}, None),
    # two files moved onto one destination: the second overwrites the first
    ("move_file", {"source": "a.txt", "destination": "b.txt"}, {"source": "c.txt",
                                                                  "destination": "b.txt"},
     "label:same_resource_twice"),
    # two files, two destinations: fine
    ("move_file", {"source": "a.txt", "destination": "b.txt"}, {"source": "c.txt",
                                                                  "destination": "d.txt"}, None),
])
def test_repeat_rules(catalogue, name, first, second, reason):
    tool = next(t for t in catalogue.tools if t.name == name)
    assert check_repeat(tool, [ToolCall(name, first), ToolCall(name, second)], RULES) == reason


def test_rules_name_real_parameters(catalogue):
    tools = {t.name: t for t in catalogue.tools}
    for name, params in RULES.distinct.items():
        assert set(params) <= {p.name for p in tools[name].parameters}, name
    assert RULES.never <= set(tools)


def test_generated_parallel_calls_are_never_duplicates(generated, catalogue):
    tools = {t.name: t for t in catalogue.tools}
    parallel = [r for _, r in _rows(generated, list(generated)) if r["kind"] == "parallel"]
    assert parallel
    for row in parallel:
        calls = [ToolCall(c["name"], c["arguments"]) for c in json.loads(row["expected_calls"])]
        if calls[0].name not in tools:  # masked: the same check ran before renaming
            continue
        assert check_repeat(tools[calls[0].name], calls, RULES) is None, row["id"]


def _groups(split_rows: list[dict]) -> list[list[dict]]:
    groups: list[list[dict]] = []
    for row in split_rows:
        if groups and groups[-1][0]["group"] == row["group"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    return groups


def test_groups_are_adjacent_share_tools_and_prompt_and_have_the_configured_sizes(generated,
                                                                                 catalogue):
    dataset = generated
    for split in dataset:
        rows = list(dataset[split])
        groups = _groups(rows)
        assert len({g[0]["group"] for g in groups}) == len(groups), split  # adjacent
        for i, group in enumerate(groups):
            assert len({r["tools"] for r in group}) == 1, group[0]["id"]
            assert len({r["prompt"][0]["content"] for r in group}) == 1, group[0]["id"]
            assert len({r["prompt_variant"] for r in group}) == 1, group[0]["id"]
            if group[0]["kind"] == "chain":
                assert {r["kind"] for r in group} == {"chain"}
                assert len(group) <= 3 or i == len(groups) - 1
            elif i < len(groups) - 1:  # the split's last group may be cut to fit
                low, high = (3, 4) if split.startswith("test") else (5, 6)
                assert low <= len(group) <= high, (split, group[0]["group"], len(group))
    assert all(len(_groups(list(dataset[s]))) < len(dataset[s]) for s in dataset
               if len(dataset[s]) > 4)
    names = {t.name for t in catalogue.tools}
    masked = [r for s in TRAIN_SPLITS for r in dataset[s]
              if not names & {t["name"] for t in json.loads(r["tools"])}]
    assert masked  # masked groups were checked above too: one renaming per group


def test_group_sizes_config_is_checked():
    with pytest.raises(ValueError, match="min_group_size"):
        GenerationConfig(min_group_size=5, max_group_size=3)
    with pytest.raises(ValueError, match="min_train_group_size=7 > max_train_group_size=6"):
        GenerationConfig(min_train_group_size=7)  # max falls back to max_group_size (6)
    assert GenerationConfig(max_train_group_size=9).group_sizes("joint_train") == (2, 9)
    assert GenerationConfig(max_train_group_size=9).group_sizes("test_seen") == (2, 6)


def test_small_talk_answers_are_replies(generated):
    for _, row in _rows(generated, list(generated)):
        request = BY_TEXT.get(_query(row))
        if row["kind"] == "irrelevance" and request is not None and request.reply:
            assert row["completion"][0]["content"].endswith(request.reply)


def test_request_pool_errors_name_the_entry(tmp_path: Path):
    path = tmp_path / "irrelevant.yaml"
    path.write_text("requests:\n  - {text: 'Hi', kind: small_talk, served_by: []}\n")
    with pytest.raises(ValueError, match="request 0 .*reply"):
        load_requests(path)
    path.write_text("requests:\n  - {text: 'Hi', kind: chit_chat, served_by: []}\n")
    with pytest.raises(ValueError, match="kind"):
        load_requests(path)


def test_reasoning_lines_come_from_the_data_file():
    lines = load_reasoning(project_path("data/requests/reasoning.yaml"))
    rng = random.Random(0)
    assert reasoning_text(lines, "multiple", ["a", "b"], rng) == "This needs a and b. "
    assert reasoning_text(lines, "chain", ["a"], rng, step=1) == lines["chain_next"][0].format(
        tool="a") + " "
    assert {reasoning_text(lines, "single", ["get_x"], rng) for _ in range(30)} == {
        line.format(tool="get_x") + " " for line in lines["single"]}


def test_reasoning_file_errors_name_the_file_and_kind(tmp_path: Path):
    path = tmp_path / "reasoning.yaml"
    path.write_text("single: ['{tool} fits.']\nparallel: []\nsolo: ['x']\n")
    with pytest.raises(ValueError) as caught:
        load_reasoning(path)
    message = str(caught.value)
    assert str(path) in message and "'parallel'" in message and "'solo'" in message, message
