"""Draft examples of each kind: which tools are offered, what the user asks, which calls answer.

Kinds (the contract's `kind` column):
- single: one call; parallel: the same tool called twice with different arguments;
- multiple: two different tools called in one turn;
- chain: 2-3 calls where a later call uses a field of an earlier call's result (one draft per
  step, carrying the earlier calls and results);
- irrelevance: the offered tools cannot serve the request; the answer makes no call.

Offered tools are the target(s) plus distractors that look similar (same category or shared name
words first, then random ones), in random order. A draft is not yet verified or rendered: see
`toolmodal.datagen.generate`.

Deliberately left out: prompts, masking and verification (done on the draft afterwards).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from toolmodal.calls import ToolCall
from toolmodal.datagen import queries
from toolmodal.datagen.executor import execute
from toolmodal.datagen.values import sample_value, words_of
from toolmodal.schema import Param, Tool

LINK_TYPES = ("string", "integer", "number")
ID_WORDS = ("id", "ids", "path", "url", "code", "key", "number", "symbol", "reference")


@dataclass
class Draft:
    """An unrendered example (one step of a chain)."""

    kind: str
    query: str
    tools: list[Tool]
    calls: list[ToolCall]
    category: str
    history: list[tuple[ToolCall, Any]] = field(default_factory=list)
    chain_steps: int = 1
    no_call_action: str = ""


@dataclass(frozen=True)
class Link:
    """`dst.param` can take the value of field `field` of `src`'s result."""

    src: Tool
    field: str
    dst: Tool
    param: str


@dataclass
class Pool:
    """Tools a split may call (`targets`) and may offer (`offer`), plus their chain links.

    Targets are drawn from a shuffled deck (`draw`), so over a split every tool is called about
    equally often (class balance by construction, not by chance).
    """

    targets: list[Tool]
    offer: list[Tool]
    links: list[Link]
    deck: list[Tool] = field(default_factory=list, repr=False)

    def draw(self, rng: random.Random, exclude: Tool | None = None) -> Tool:
        """The next target of the deck (reshuffled when empty), skipping `exclude`."""
        if all(tool is exclude for tool in self.deck):
            self.deck += rng.sample(self.targets, len(self.targets))
        return self.deck.pop(max(i for i, tool in enumerate(self.deck) if tool is not exclude))


class DraftError(ValueError):
    """A draft that cannot be built from this pool (counted as a rejection)."""


def find_links(tools: list[Tool]) -> list[Link]:
    """All (result field -> parameter) links between tools whose names and types match."""
    links = []
    for src in tools:
        if src.returns is None or src.returns.type != "object":
            continue
        for out in src.returns.properties:
            links += [Link(src, out.name, dst, p.name) for dst in tools if dst.name != src.name
                      for p in dst.parameters
                      if _linkable(out, p, src.category == dst.category)]
    return links


def _linkable(out: Param, param: Param, same_category: bool) -> bool:
    """Same type and matching names; across categories only identifier-like fields link (a
    `date` or `location` passed between unrelated tools makes a nonsense chain)."""
    if out.type != param.type or out.type not in LINK_TYPES or param.enum:
        return False
    a, b = words_of(out.name), words_of(param.name)
    if not (a == b or (len(b) > 2 and a.endswith(" " + b)) or (len(a) > 2 and b.endswith(" " + a))):
        return False
    return same_category or a.split()[-1] in ID_WORDS


def sample_arguments(tool: Tool, rng: random.Random, optional_rate: float) -> dict[str, Any]:
    """Required parameters always, each optional one with probability `optional_rate`."""
    return {p.name: sample_value(p, rng) for p in tool.parameters
            if p.required or rng.random() < optional_rate}


def offer(targets: list[Tool], pool: list[Tool], n_tools: int, rng: random.Random,
          exclude: set[str] = frozenset()) -> list[Tool]:
    """Targets plus look-alike and random distractors, `n_tools` in all, shuffled."""
    names = {t.name for t in targets} | set(exclude)
    words = frozenset().union(*(name_words(t.name) for t in targets))
    cats = {t.category for t in targets}
    rest = [t for t in pool if t.name not in names]
    keyed = [(-(2 * (t.category in cats) + (not words.isdisjoint(name_words(t.name)))),
              rng.random(), t) for t in rest]
    keyed.sort(key=lambda k: (k[0], k[1]))
    wanted = max(0, n_tools - len(targets))
    similar = [k[2] for k in keyed[: wanted // 2]]
    others = [k[2] for k in keyed[wanted // 2:]]
    chosen = [*targets, *similar, *rng.sample(others, min(len(others), wanted - len(similar)))]
    rng.shuffle(chosen)
    return chosen


@lru_cache(maxsize=65536)
def name_words(name: str) -> frozenset[str]:
    """Words of a tool name, for finding look-alike distractors."""
    return frozenset(words_of(name).split())


def single(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float) -> Draft:
    """One call to one target tool."""
    tool = pool.draw(rng)
    args = sample_arguments(tool, rng, optional_rate)
    return Draft("single", queries.single_query(tool, args, rng), offer([tool], pool.offer,
                 n_tools, rng), [ToolCall(tool.name, args)], tool.category)


def parallel(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float) -> Draft:
    """The same tool twice; the second call changes one or two values."""
    if not any(t.parameters for t in pool.targets):
        raise DraftError("build:no_tool_with_parameters")
    tool = pool.draw(rng)
    while not tool.parameters:
        tool = pool.draw(rng)
    first = sample_arguments(tool, rng, optional_rate)
    second = dict(first)
    for key in rng.sample(sorted(first), min(len(first), rng.randint(1, 2))):
        second[key] = sample_value(tool.param(key), rng)
    if second == first:
        raise DraftError("build:no_variation")
    query = queries.parallel_query(tool, first, second, rng)
    calls = [ToolCall(tool.name, first), ToolCall(tool.name, second)]
    return Draft("parallel", query, offer([tool], pool.offer, n_tools, rng), calls,
                 tool.category)


def multiple(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float) -> Draft:
    """Two different tools in one turn."""
    if len(pool.targets) < 2:
        raise DraftError("build:too_few_tools")
    first = pool.draw(rng)
    tools = [first, pool.draw(rng, exclude=first)]
    args = [sample_arguments(t, rng, optional_rate) for t in tools]
    query = queries.joined_query([queries.request(t, a, rng) for t, a in zip(tools, args,
                                                                              strict=True)], rng)
    calls = [ToolCall(t.name, a) for t, a in zip(tools, args, strict=True)]
    return Draft("multiple", query, offer(tools, pool.offer, n_tools, rng), calls,
                 tools[0].category)


def irrelevance(pool: Pool, rng: random.Random, n_tools: int) -> Draft:
    """A request none of the offered tools serves: from an absent tool, or small talk."""
    if rng.random() < 0.3:
        query, action = queries.generic_request(rng)
        return Draft("irrelevance", query, offer([], pool.offer, n_tools, rng), [], "none",
                     no_call_action=action)
    source = rng.choice(pool.targets)
    words = name_words(source.name)
    unrelated = [t for t in pool.offer if t.category != source.category
                 and words.isdisjoint(name_words(t.name))]
    if not unrelated:
        raise DraftError("build:no_unrelated_tools")
    action = queries.action_phrase(source, rng)
    args = sample_arguments(source, rng, 0.3)
    query = queries.finish(action + queries.args_text(source, args, rng), rng)
    return Draft("irrelevance", query, offer([], unrelated, n_tools, rng), [], source.category,
                 no_call_action=action)


def chain(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float) -> list[Draft]:
    """A 2-3 step chain, one draft per step; each later call uses a field of the last result."""
    if not pool.links:
        raise DraftError("build:no_chain_links")
    links = [rng.choice(pool.links)]
    nxt = [k for k in pool.links if k.src.name == links[0].dst.name
           and k.dst.name != links[0].src.name]
    if nxt and rng.random() < 0.5:
        links.append(rng.choice(nxt))
    tools = [links[0].src] + [k.dst for k in links]
    stated = [sample_arguments(tools[0], rng, optional_rate)]
    calls = [ToolCall(tools[0].name, stated[0])]
    results = [execute(calls[0], tools)]
    for link in links:
        args = sample_arguments(link.dst, rng, optional_rate)
        args.pop(link.param, None)
        stated.append(dict(args))
        args[link.param] = results[-1][link.field]
        calls.append(ToolCall(link.dst.name, args))
        results.append(execute(calls[-1], tools))
    steps = [(tools[0], stated[0], "")] + [(k.dst, s, k.field)
                                           for k, s in zip(links, stated[1:], strict=True)]
    query = queries.chain_query(steps, rng)
    offered = offer(tools, pool.offer, n_tools, rng)
    history = list(zip(calls, results, strict=True))
    return [Draft("chain", query, offered, [calls[i]], tools[0].category, history[:i],
                  chain_steps=len(calls)) for i in range(len(calls))]
