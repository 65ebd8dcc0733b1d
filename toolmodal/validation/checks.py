"""Per-row check columns over a generated DatasetDict, as one pandas DataFrame.

Each expectation of the suite looks at one column computed here, so a failure points at rows:
`target_ok` (the completion parses, equals `expected_calls`, and every call validates),
`args_typed` (every argument value has its declared JSON type), `held_out_in_training`,
`value_<check>` (the problems `values.value_problems` finds in the expected arguments: dates,
e-mails, URLs, phones, schema, ordered pairs; "" when none), `pair_key` (duplicate detection),
`tool_balance` (the row's tool count over the median tool count, training rows only;
real-world pool tools against their own median), `pool_request` (the row is of a pool
provider or calls a pool tool), `n_tokens`, the 0/1 share columns
(`is_selection`, `is_arguments`, `is_joint`, `is_irrelevance`, `is_variant`; NaN outside
training splits so means cover training rows only) and `query`.

Deliberately left out: pass/fail decisions (see `suite.py`).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
from datasets import DatasetDict

from toolmodal.calls import ToolCall, check_call, matches_type, parse_output
from toolmodal.datagen.config import DEFAULT_VARIANT, PHASES, TRAIN_SPLITS
from toolmodal.datagen.rows import count_tokens, pair_key, query_of, tool_key
from toolmodal.schema import Param, Tool
from toolmodal.validation.values import value_problems


def check_frame(dataset: DatasetDict, held_out: list[dict], tokenizer: Any | None,
                pool_providers: frozenset[str] = frozenset()) -> pd.DataFrame:
    """One row per example of every split, with the check columns described above.

    Args:
        dataset: The generated splits.
        held_out: The card's `held_out_tools` (name and description of each).
        tokenizer: Tokenizer with the chat template for `n_tokens`, or None for the estimate.
        pool_providers: Categories of the real-world pool's tools: their balance is taken
            against their own median (generation calls bundled tools more often on purpose,
            `RealWorldPool.max_target_share`).
    """
    held = {t["name"] for t in held_out} | {t["description"] for t in held_out if t["description"]}
    cache: dict[str, Tool] = {}
    records = [_record(row, split, split in TRAIN_SPLITS, held, cache)
               for split in dataset for row in dataset[split]]
    frame = pd.DataFrame.from_records(records)
    frame["n_tokens"] = count_tokens(list(frame["conversation"]), tokenizer)
    frame = frame.drop(columns=["conversation"])
    _add_shares(frame)
    source = frame["category"].isin(pool_providers)
    frame["tool_balance"] = pd.concat([_balance(frame.loc[source, "tool_identity"]),
                                       _balance(frame.loc[~source, "tool_identity"])])
    frame["pool_request"] = [bool(c & pool_providers) for c in frame.pop("categories")]
    return frame


def _record(row: dict, split: str, training: bool, held: set[str],
            cache: dict[str, Tool]) -> dict:
    tools = [_tool(t, cache) for t in json.loads(row["tools"])]
    expected = [ToolCall(c["name"], c["arguments"]) for c in json.loads(row["expected_calls"])]
    problems = value_problems(f"{split}/{row['id']}", expected, tools)
    return {f"value_{check}": "; ".join(found) for check, found in problems.items()} | {
        "split": split, "id": row["id"], "phase": row["phase"], "kind": row["kind"],
        "category": row["category"],
        "categories": frozenset({row["category"], *(t.category for t in tools
                                                    if t.name in {c.name for c in expected})}),
        "prompt_variant": row["prompt_variant"], "query": query_of(row["prompt"]),
        "target_ok": _target_ok(row["completion"][0]["content"], expected, tools),
        "args_typed": all(_typed(c, tools) for c in expected),
        "held_out_in_training": training and any(t.name in held or t.description in held
                                                 for t in tools),
        "pair_key": pair_key(row["prompt"], [tool_key(t.name, t.description) for t in tools]),
        "tool_identity": _identity(expected, tools) if training else None,
        "conversation": row["prompt"] + row["completion"], "training": training,
    }


def _tool(data: dict, cache: dict[str, Tool]) -> Tool:
    """Parse a tool once per distinct content (catalogue tools repeat across rows)."""
    key = json.dumps(data, sort_keys=True)
    if key not in cache:
        cache[key] = Tool(**data)
    return cache[key]


def _target_ok(completion: str, expected: list[ToolCall], tools: list[Tool]) -> bool:
    parsed = parse_output(completion)
    return parsed.ok and parsed.calls == expected and not any(
        check_call(c, tools) for c in parsed.calls)


def _typed(call: ToolCall, tools: list[Tool]) -> bool:
    tool = next((t for t in tools if t.name == call.name), None)
    if tool is None:
        return False
    names = {p.name: p for p in tool.parameters}
    return all(k in names and _value_typed(v, names[k]) for k, v in call.arguments.items())


def _value_typed(value: Any, param: Param) -> bool:
    if value is None and param.has_default and param.default is None:
        return True
    if not matches_type(value, param.type):
        return False
    if isinstance(value, list) and param.items is not None:
        return all(_value_typed(v, param.items) for v in value)
    if isinstance(value, dict) and param.properties:
        props = {p.name: p for p in param.properties}
        return all(k in props and _value_typed(v, props[k]) for k, v in value.items())
    return True


def _identity(expected: list[ToolCall], tools: list[Tool]) -> str | None:
    """Which tool a row trains (`rows.tool_key`: survives masking)."""
    if not expected:
        return None
    tool = next((t for t in tools if t.name == expected[0].name), None)
    return None if tool is None else tool_key(tool.name, tool.description)


def _add_shares(frame: pd.DataFrame) -> None:
    training = frame["training"]
    for phase in PHASES:
        frame[f"is_{phase}"] = (frame["phase"] == phase).astype(float).where(training)
    frame["is_irrelevance"] = (frame["kind"] == "irrelevance").astype(float).where(training)
    frame["is_variant"] = (frame["prompt_variant"] != DEFAULT_VARIANT).astype(float).where(
        training)


def _balance(identity: pd.Series) -> pd.Series:
    """Count of each row's tool over the median count (NaN for rows without a tool), indexed
    like `identity`."""
    counts = identity.dropna().value_counts()
    if counts.empty:
        return pd.Series(float("nan"), index=identity.index)
    return identity.map(counts) / float(counts.median())
