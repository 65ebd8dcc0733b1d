"""Generate the verified, split dataset from a catalogue: `generate_dataset`.

Rows come in groups, as a deployed app sees them: the requests of a group (2-6 by default; a
chain's steps) share one offered tool set, in one order, and one system prompt, and are adjacent
in their split with the same `group` value (training packs a group into one sequence, evaluation
reuses the tool block's KV cache). A group's targets are drawn from the split's deck first, then
the tools are offered around them, then each member is drafted (see `examples`) on those tools.
A group is optionally masked (one renaming for all its members), given a system-prompt variant,
each member rendered into the chat format (`toolmodal.chat.build_prompt`, targets with
`calls.format_output`) and verified (format, execution, semantic; then length and duplicates).
A member that fails is dropped and its reason counted; a group left below its split's minimum
size (`GenerationConfig.group_sizes`; or a chain missing a step) is dropped whole. The split is
filled until it has its rows, its last group cut short if needed. Every random choice comes from a
generator seeded by (seed, split, attempt), so the same seed and catalogue give the same dataset.

Deliberately left out: writing to disk (`toolmodal.commands.data`), the card's content
(`card.py`) and the validation suite (`toolmodal.validation`).
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from datasets import Dataset, DatasetDict, DatasetInfo, Features, List, Value

from toolmodal.calls import ToolCall, format_output
from toolmodal.chat import build_prompt
from toolmodal.datagen import examples, groups
from toolmodal.datagen.card import build_card
from toolmodal.datagen.config import DEFAULT_VARIANT, GenerationConfig, PromptVariant, load_variants
from toolmodal.datagen.curriculum import difficulty, leaf_count, value_depth
from toolmodal.datagen.examples import Draft, DraftError, Pool, chained_links
from toolmodal.datagen.executor import ExecutionError, result_message
from toolmodal.datagen.irrelevance import (
    Request,
    load_answers,
    load_requests,
    no_call_answer,
    split_requests,
)
from toolmodal.datagen.masking import mask_example
from toolmodal.datagen.pool import (
    DrawnPool,
    chain_links,
    load_pool,
    weighted_links,
    weighted_targets,
)
from toolmodal.datagen.reasoning import load_reasoning, reasoning_text
from toolmodal.datagen.repeats import RepeatRules, load_rules
from toolmodal.datagen.rows import count_tokens, estimate_tokens, pair_key, tool_key
from toolmodal.datagen.splits import hold_out, split_sizes
from toolmodal.datagen.teacher import Teacher
from toolmodal.datagen.templates import ToolTemplates, catalogue_templates
from toolmodal.datagen.verify import check_grounding, verify
from toolmodal.paths import project_path
from toolmodal.schema import Catalogue, Tool

_MESSAGES = List({"role": Value("string"), "content": Value("string")})
FEATURES = Features({
    "id": Value("string"), "phase": Value("string"), "kind": Value("string"),
    "prompt": _MESSAGES, "completion": _MESSAGES, "tools": Value("string"),
    "expected_calls": Value("string"), "difficulty": Value("int32"), "n_tools": Value("int32"),
    "category": Value("string"), "prompt_variant": Value("string"), "group": Value("string"),
})
SKIP_EXACT_BELOW = 0.5


@dataclass
class _Run:
    """Mutable state of one generation run."""

    config: GenerationConfig
    variants: list[PromptVariant]
    tokenizer: Any
    teacher: Teacher | None
    requests: dict[str, list[Request]]
    answers: dict
    rules: RepeatRules
    reasoning: dict[str, list[str]]
    keys: set[str] = field(default_factory=set)
    rejections: Counter = field(default_factory=Counter)
    masked: int = 0
    training_rows: int = 0
    variant_rows: int = 0
    tool_json: dict[str, tuple[Tool, str]] = field(default_factory=dict)


def generate_dataset(catalogue: Catalogue, config: GenerationConfig,
                     tokenizer: Any | None = None,
                     templates: dict[str, ToolTemplates] | None = None) -> tuple[DatasetDict, dict]:
    """Generate all splits and the dataset card.

    Args:
        catalogue: Ingested tools.
        config: Generation settings.
        tokenizer: Tokenizer with the chat template for the length check, or None for the
            characters / 4 estimate (see `rows.count_tokens`).
        templates: Request templates by tool name; None reads the `requests.yaml` beside the
            catalogue's schema files (`templates.catalogue_templates`), {} phrases every request
            from the schema.

    With `config.real_world_pool`, tools drawn from the public OpenAPI directory join the
    catalogue (`toolmodal.datagen.pool`): the held-out providers' tools with the held-out ones.

    Returns:
        The DatasetDict (splits per the dataset contract) and the card (a JSON-able dict).

    Raises:
        RuntimeError: When a split cannot be filled within `max_attempts` candidates per row.
        FileNotFoundError: The pool's directory is missing (and its `when_missing` is "fail").
    """
    start = time.perf_counter()
    seen, unseen = hold_out(catalogue, config.held_out_share, config.seed)
    templates = catalogue_templates(catalogue) if templates is None else templates
    drawn = None if config.real_world_pool is None else load_pool(config.real_world_pool,
                                                                  catalogue)
    if drawn is not None:
        seen, unseen = seen + drawn.seen, unseen + drawn.held_out
        catalogue = Catalogue(tools=(*catalogue.tools, *drawn.seen, *drawn.held_out))
    labels = project_path(config.requests_dir)
    train_requests, test_requests = split_requests(load_requests(labels / "irrelevant.yaml"))
    run = _Run(config, load_variants(project_path(config.system_prompts_dir)), tokenizer,
               Teacher.from_env() if config.teacher else None,
               {"train": train_requests, "test": test_requests},
               load_answers(labels / "no_call_answers.yaml"),
               load_rules(labels / "parallel_calls.yaml"),
               load_reasoning(labels / "reasoning.yaml"))
    pools = _pools(seen, unseen, list(catalogue.tools), templates, drawn, config)
    splits = {}
    for split, size in split_sizes(config).items():
        pool = pools[split if split.startswith("test") else "train"]
        splits[split] = _fill(split, size, pool, run)
    dataset = DatasetDict({name: rows_to_dataset(rows) for name, rows in splits.items()})
    card = build_card(splits, catalogue, unseen, config, run.rejections, run.masked,
                      time.perf_counter() - start, teacher_used=run.teacher is not None)
    card["length_check"] = "estimate" if tokenizer is None else "tokenizer"
    card["real_world_pool"] = None if drawn is None else drawn.summary()
    return dataset, card


def rows_to_dataset(rows: list[dict]) -> Dataset:
    """Rows to a Dataset through Arrow directly (twice as fast as `Dataset.from_dict`)."""
    table = pa.Table.from_pydict({col: [r[col] for r in rows] for col in FEATURES},
                                 schema=FEATURES.arrow_schema)
    return Dataset(table, info=DatasetInfo(features=FEATURES))


def _pools(seen: list, unseen: list, every: list, templates: dict, drawn: DrawnPool | None,
           config: GenerationConfig) -> dict[str, Pool]:
    """Held-out tools are targets only in test pools, so their templates feed only test sets.
    Tools of the pool's providers chain only within their provider (`pool.chain_links`).
    Beside a real-world pool, training and test_seen draw targets and chain links with the
    bundled ones repeated (`weighted_targets`, `weighted_links`: at most `max_target_share` go
    to pool tools)."""
    providers = drawn.providers if drawn is not None else []
    targets, links = seen, chained_links(chain_links(seen, providers), templates)
    if drawn is not None:
        share = config.real_world_pool.max_target_share
        targets = weighted_targets(seen, providers, share)
        links = weighted_links(links, providers, share)
    return {"train": Pool(targets, seen, links, templates=templates),
            "test_seen": Pool(targets, seen, links, templates=templates),
            "test_unseen": Pool(unseen, every, [], templates=templates),
            "test_chain": Pool(every, every,
                               chained_links(chain_links(every, providers), templates),
                               templates=templates),
            "test_irrelevance": Pool(unseen, every, [], templates=templates)}


def _fill(split: str, size: int, pool: Pool, run: _Run) -> list[dict]:
    rows: list[dict] = []
    limit = size * run.config.max_attempts + 20
    attempt = n_groups = 0
    while len(rows) < size:
        if attempt >= limit:
            raise RuntimeError(f"split {split}: kept {len(rows)} of {size} rows after {attempt} "
                               f"candidates; top rejections {run.rejections.most_common(3)}")
        rng = random.Random(f"{run.config.seed}:{split}:{attempt}")
        attempt += 1
        try:
            drafts = _draft_group(split, pool, rng, run)
        except DraftError as exc:
            run.rejections[str(exc)] += 1
            continue
        except ExecutionError:
            run.rejections["execution:rejected_call"] += 1
            continue
        kept = _render_group(split, drafts, rng, run)
        if kept is not None:  # the split's last group is cut to fit
            kept = kept[: size - len(rows)]
            group = f"{split}-g{n_groups:05d}"
            n_groups += 1
            rows += [r | {"id": f"{split}-{len(rows) + i:06d}", "group": group}
                     for i, r in enumerate(kept)]
    return rows


def _draft_group(split: str, pool: Pool, rng: random.Random, run: _Run) -> list[Draft]:
    """The drafts of one group: a chain's steps, or members sharing one offered tool list."""
    config = run.config
    n_tools = 1 if split.startswith("arguments") else rng.randint(config.min_tools,
                                                                   config.max_tools)
    kinds = groups.group_kinds(split, rng, config)
    if kinds == ["chain"]:
        return examples.chain(pool, rng, n_tools, 0.3)
    planned = groups.plan_targets(kinds, pool, rng, n_tools, run.rules)
    targets = list(dict.fromkeys(t for _, member in planned for t in member))
    offered = examples.offer(targets, pool.offer, n_tools, rng) if targets else None
    requests = run.requests["test" if split.startswith("test") else "train"]
    rate = {"selection": 0.15, "arguments": 0.5}.get(split.split("_")[0], 0.3)
    drafts = []
    for kind, member in planned:
        try:
            draft = _member(kind, member, offered, pool, rng, n_tools, rate, requests, run)
        except DraftError as exc:
            run.rejections[str(exc)] += 1
            continue
        offered = offered or draft.tools  # an all-irrelevance group takes its first draft's
        drafts.append(draft)
    return drafts


def _member(kind: str, targets: list, offered: list | None, pool: Pool, rng: random.Random,
            n_tools: int, rate: float, requests: list[Request], run: _Run) -> Draft:
    """Draft one member on the group's `offered` tools (kept in their order)."""
    if kind == "irrelevance":
        return examples.irrelevance(pool, rng, n_tools, requests, offered)
    own = Pool(targets, offered, [], deck=list(reversed(targets)), templates=pool.templates)
    if kind == "parallel":
        draft = examples.parallel(own, rng, len(offered), rate, run.rules)
    else:
        build = {"single": examples.single, "multiple": examples.multiple}[kind]
        draft = build(own, rng, len(offered), rate)
    draft.tools = offered
    return draft


def _render_group(split: str, drafts: list[Draft], rng: random.Random,
                  run: _Run) -> list[dict] | None:
    """Render and verify the members of a group; None when fewer than the split's minimum
    group size (or, for a chain, not every step) pass."""
    if not drafts:
        return None
    training = not split.startswith("test")
    chain = drafts[0].kind == "chain"
    variant = _variant(training, rng, run)
    phase = split.rsplit("_", 1)[0] if training else "joint"
    if training and run.teacher is not None and not chain:
        drafts = [_paraphrase(d, rng, run) for d in drafts]
    masked = training and not chain and rng.random() < run.config.masking_probability
    unmasked = [(d.calls, d.tools) for d in drafts] if masked else [None] * len(drafts)
    if masked:
        drafts = _mask_group(drafts, rng)
    rows, keys = [], set()
    for draft, original in zip(drafts, unmasked, strict=True):
        think = variant.reasoning == "always" or (
            variant.reasoning == "optional" and phase == "joint"
            and rng.random() < run.config.reasoning_share)
        row, reason = _render(draft, phase, variant, think, rng, run, original)
        if reason is None and row["_key"] in keys:
            reason = "duplicate:query_tools"
        if reason is not None:
            run.rejections[reason] += 1
            continue
        keys.add(row.pop("_key"))
        rows.append(row)
    if len(rows) < (len(drafts) if chain else run.config.group_sizes(split)[0]):
        run.rejections["group:too_few_members"] += 1
        return None
    run.keys.update(keys)
    run.masked += len(rows) if masked else 0
    if training:
        run.training_rows += len(rows)
        run.variant_rows += len(rows) if variant.name != DEFAULT_VARIANT else 0
    return rows


def _mask_group(drafts: list[Draft], rng: random.Random) -> list[Draft]:
    """One renaming for the whole group, so its members keep sharing one tool block."""
    calls = [c for d in drafts for c in d.calls]
    tools, renamed = mask_example(drafts[0].tools, calls, rng)
    out, start = [], 0
    for draft in drafts:
        end = start + len(draft.calls)
        out.append(Draft(draft.kind, draft.query, tools, renamed[start:end], draft.category,
                         no_call_action=draft.no_call_action, no_call_reply=draft.no_call_reply,
                         stated=draft.stated))
        start = end
    return out


def _variant(training: bool, rng: random.Random, run: _Run) -> PromptVariant:
    """The group's system prompt. Training groups take a non-default variant while the share of
    variant rows so far is below `variant_share` (a random draw per group would miss the share
    by far on small datasets: a group is up to `max_train_group_size` rows)."""
    default = next(v for v in run.variants if v.name == DEFAULT_VARIANT)
    others = [v for v in run.variants if v.name != DEFAULT_VARIANT]
    below = run.variant_rows < run.config.variant_share * (run.training_rows + 1)
    if training and others and below:
        return rng.choice(others)
    return default


def _render(draft: Draft, phase: str, variant: PromptVariant, think: bool, rng: random.Random,
            run: _Run, unmasked: tuple | None = None) -> tuple[dict, str | None]:
    names = [c.name for c in draft.calls]
    if draft.kind == "irrelevance":
        completion = no_call_answer(run.answers, variant.no_call, draft.no_call_action,
                                    draft.no_call_reply, rng)
    else:
        reasoning = reasoning_text(run.reasoning, draft.kind, names, rng,
                                   len(draft.history)) if think else ""
        completion = format_output(draft.calls, reasoning, style=variant.style)
    history = []
    for call, result in draft.history:
        history += [{"role": "assistant", "content": format_output([call], style=variant.style)},
                    {"role": "tool", "content": result_message(result)}]
    prompt = build_prompt(variant.text, draft.tools, draft.query, history)
    results_text = " ".join(m["content"] for m in history if m["role"] == "tool")
    reason = verify(completion, draft.calls, draft.tools, draft.query, results_text, unmasked,
                    draft.stated)
    messages = [*prompt, {"role": "assistant", "content": completion}]
    if reason is None and _too_long(messages, run):
        reason = "length:too_long"
    tools_json = "[" + ", ".join(_tool_json(t, run) for t in draft.tools) + "]"
    key = pair_key(prompt, [tool_key(t.name, t.description) for t in draft.tools])
    if reason is None and key in run.keys:  # within the group: see `_render_group`
        reason = "duplicate:query_tools"
    return _row(draft, phase, variant, prompt, completion, tools_json, key), reason


def _too_long(messages: list[dict], run: _Run) -> bool:
    """Over the context budget? With a tokenizer, rows whose estimate is under half the budget
    skip the (slow) exact count: the estimate was never below 0.58x the real count measured on
    generated rows (digit-heavy rows are the worst)."""
    estimate = estimate_tokens(messages)
    if run.tokenizer is None:
        return estimate > run.config.max_tokens
    if estimate < run.config.max_tokens * SKIP_EXACT_BELOW:
        return False
    return count_tokens([messages], run.tokenizer)[0] > run.config.max_tokens


def _row(draft: Draft, phase: str, variant: PromptVariant, prompt: list[dict], completion: str,
         tools_json: str, key: str) -> dict:
    values = [v for c in draft.calls for v in c.arguments.values()]
    level = difficulty(len(draft.tools), sum(leaf_count(v) for v in values),
                       max((value_depth(v) for v in values), default=0),
                       max(len(draft.calls), 1), draft.chain_steps)
    return {"phase": phase, "kind": draft.kind, "prompt": prompt,
            "completion": [{"role": "assistant", "content": completion}], "tools": tools_json,
            "expected_calls": json.dumps([_call_json(c) for c in draft.calls],
                                         ensure_ascii=False),
            "difficulty": level, "n_tools": len(draft.tools), "category": draft.category,
            "prompt_variant": variant.name, "_key": key}


def _tool_json(tool: Tool, run: _Run) -> str:
    """JSON of one tool, cached for catalogue tools (masked copies are new objects)."""
    cached = run.tool_json.get(tool.name)
    if cached is not None and cached[0] is tool:
        return cached[1]
    text = json.dumps(tool.model_dump(mode="json"), ensure_ascii=False)
    run.tool_json[tool.name] = (tool, text)
    return text


def _call_json(call: ToolCall) -> dict:
    return {"name": call.name, "arguments": call.arguments}


def _paraphrase(draft: Draft, rng: random.Random, run: _Run) -> Draft:
    """Send the query to the teacher; keep the paraphrase only if every value stays grounded."""
    if rng.random() >= run.config.teacher_share:
        return draft
    text = run.teacher.paraphrase(draft.query)
    if text is None or check_grounding(draft.calls, draft.tools, text,
                                       stated=draft.stated) is not None:
        run.rejections["teacher:ungrounded_paraphrase"] += 1
        return draft
    return Draft(draft.kind, text, draft.tools, draft.calls, draft.category, draft.history,
                 draft.chain_steps, draft.no_call_action, draft.no_call_reply, draft.stated)
