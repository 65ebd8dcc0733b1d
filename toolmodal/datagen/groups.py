"""Groups of requests: which kinds a group holds and which target tools its members call.

A group is what a deployed app sees between two changes of its tool set: several requests on
one offered tool list and one system prompt. `group_kinds` draws the members' kinds for a split
(a chain is a group of its own), `plan_targets` draws their target tools from the split's deck
(class balance, as for single rows) while the group has room among its offered tools, then lets
further members reuse the group's targets.

Deliberately left out: drafting, offering and rendering (see `examples` and `generate`).
"""

from __future__ import annotations

import random

from toolmodal.datagen.config import GenerationConfig
from toolmodal.datagen.examples import DraftError, Pool, repeatable
from toolmodal.datagen.repeats import RepeatRules

# kinds drawn per split family (joint and selection: config.joint_kinds / selection_kinds)
ARGUMENT_KINDS = {"single": 0.85, "parallel": 0.15}
TEST_KINDS = {"single": 0.6, "parallel": 0.2, "multiple": 0.2}
CHAIN_MEAN_ROWS = 2.5  # a chain has 2 or 3 steps


def group_kinds(split: str, rng: random.Random, config: GenerationConfig) -> list[str]:
    """The kinds of a group's members (["chain"] for a chain group)."""
    size = rng.randint(*config.group_sizes(split))
    if split == "test_chain":
        return ["chain"]
    if split == "test_irrelevance":
        return ["irrelevance"] * size
    if split.startswith("test"):
        weights = TEST_KINDS
    elif split.startswith("selection"):
        weights = config.selection_kinds
    elif split.startswith("arguments"):
        weights = ARGUMENT_KINDS
    else:
        if rng.random() < chain_group_share(config):
            return ["chain"]
        weights = {k: w for k, w in config.joint_kinds.items() if k != "chain"}
    return [pick(weights, rng) for _ in range(size)]


def chain_group_share(config: GenerationConfig) -> float:
    """Share of joint groups that are chains, so that chain *rows* get `joint_kinds["chain"]`
    (a chain has ~2.5 rows, another training group (min + max) / 2)."""
    share = config.joint_kinds["chain"]
    other = sum(config.group_sizes("joint_train")) / 2
    if share in (0.0, 1.0):
        return share
    return share * other / (share * other + (1 - share) * CHAIN_MEAN_ROWS)


def plan_targets(kinds: list[str], pool: Pool, rng: random.Random, n_tools: int,
                 rules: RepeatRules) -> list[tuple[str, list]]:
    """(kind, target tools) per member: new targets come from the deck while the group has room
    for them among `n_tools`, then members reuse the group's targets (kind kept when it can)."""
    chosen: list = []
    planned = []
    for kind in kinds:
        need = {"single": 1, "parallel": 1, "multiple": 2}.get(kind, 0)
        if need and len(chosen) + need <= n_tools:
            member = _draw_targets(kind, pool, rng, rules)
        elif need:
            kind, member = _reuse(kind, chosen, rng, rules)
        else:
            member = []
        chosen += [t for t in member if t not in chosen]
        planned.append((kind, member))
    return planned


def _draw_targets(kind: str, pool: Pool, rng: random.Random, rules: RepeatRules) -> list:
    if kind == "multiple":
        if len(pool.targets) < 2:
            raise DraftError("build:too_few_tools")
        first = pool.draw(rng)
        return [first, pool.draw(rng, exclude=first)]
    if kind == "parallel" and not any(repeatable(t, rules) for t in pool.targets):
        raise DraftError("build:no_tool_with_parameters")
    tool = pool.draw(rng)
    while kind == "parallel" and not repeatable(tool, rules):
        tool = pool.draw(rng)
    return [tool]


def _reuse(kind: str, chosen: list, rng: random.Random, rules: RepeatRules) -> tuple[str, list]:
    if kind == "multiple" and len(chosen) >= 2:
        return kind, rng.sample(chosen, 2)
    options = [t for t in chosen if repeatable(t, rules)]
    if kind == "parallel" and options:
        return kind, [rng.choice(options)]
    return "single", [rng.choice(chosen)]


def pick(weights: dict[str, float], rng: random.Random) -> str:
    """One key of `weights`, drawn in proportion to its weight."""
    names = sorted(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]
