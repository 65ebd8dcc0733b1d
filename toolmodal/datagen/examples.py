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
from toolmodal.datagen import queries, user_requests, values
from toolmodal.datagen.executor import execute
from toolmodal.datagen.irrelevance import (
    Request,
    near_categories,
    served_by_tool,
    serves,
    serving,
)
from toolmodal.datagen.repeats import RepeatRules, check_repeat, must_differ
from toolmodal.datagen.template_render import template_value
from toolmodal.datagen.templates import ToolTemplates
from toolmodal.datagen.values import words_of
from toolmodal.schema import Param, Tool

LINK_TYPES = ("string", "integer", "number")
POOL_REQUEST_SHARE = 0.4  # irrelevance rows from the request pool; the rest are meant for a tool
MAX_ACTION_WORDS = 6
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
    no_call_reply: str = ""
    stated: frozenset[tuple[int, str]] = frozenset()  # (call, param) said in words: user_requests


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
    templates: dict[str, ToolTemplates] = field(default_factory=dict, repr=False)

    def draw(self, rng: random.Random, exclude: Tool | None = None) -> Tool:
        """The next target of the deck (reshuffled when empty), skipping `exclude`."""
        if all(tool is exclude for tool in self.deck):
            self.deck += rng.sample(self.targets, len(self.targets))
        return self.deck.pop(max(i for i, tool in enumerate(self.deck) if tool is not exclude))


class DraftError(ValueError):
    """A draft that cannot be built from this pool (counted as a rejection)."""


def chained_links(links: list[Link], templates: dict[str, ToolTemplates]) -> list[Link]:
    """The links whose destination takes a chained value in that parameter (a tool that lists
    follow-ups takes them in the listed parameters only: `ToolTemplates.takes_chained`)."""
    return [k for k in links
            if k.dst.name not in templates or templates[k.dst.name].takes_chained(k.param)]


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
    """Required parameters always, each optional one with probability `optional_rate`; paired
    parameters agree (`values.sample_arguments`)."""
    return values.sample_arguments(tool, rng, optional_rate)


def offer(targets: list[Tool], pool: list[Tool], n_tools: int, rng: random.Random,
          exclude: set[str] = frozenset(), near: frozenset[str] = frozenset()) -> list[Tool]:
    """Targets plus look-alike and random distractors, `n_tools` in all, shuffled.

    Look-alikes share a category with a target or one of `near` (hard negatives), or a word of
    a target's name; about half the distractors are look-alikes.
    """
    names = {t.name for t in targets} | set(exclude)
    words = frozenset().union(*(name_words(t.name) for t in targets))
    cats = {t.category for t in targets} | near
    rest = [t for t in pool if t.name not in names]
    keyed = [(-(2 * (t.category in cats) + (not words.isdisjoint(name_words(t.name)))),
              rng.random(), t) for t in rest]
    keyed.sort(key=lambda k: (k[0], k[1]))
    wanted = max(0, n_tools - len(targets))
    similar = [k[2] for k in keyed[: wanted // 2 if targets else (wanted + 1) // 2]]
    others = [k[2] for k in keyed[len(similar):]]
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
    templates = pool.templates.get(tool.name)
    args = user_requests.draw_arguments(templates, tool, rng, optional_rate)
    query, stated = user_requests.sentence(templates, tool, args, rng)
    return Draft("single", query, offer([tool], pool.offer, n_tools, rng),
                 [ToolCall(tool.name, args)], tool.category, stated=stated)


def repeatable(tool: Tool, rules: RepeatRules) -> bool:
    """Can `tool` be called twice in one turn (it has parameters, the rules allow it)?"""
    return bool(tool.parameters) and tool.name not in rules.never


def parallel(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float,
             rules: RepeatRules) -> Draft:
    """The same tool twice; the second call changes a required value, every value the rules
    say must differ (`repeats`), and sometimes one more. Checked by `repeats.check_repeat`."""
    if not any(repeatable(t, rules) for t in pool.targets):
        raise DraftError("build:no_tool_with_parameters")
    tool = pool.draw(rng)
    while not repeatable(tool, rules):
        tool = pool.draw(rng)
    templates = pool.templates.get(tool.name)
    first = user_requests.draw_arguments(templates, tool, rng, optional_rate)
    required = sorted(p.name for p in tool.parameters if p.required)
    keys = set(must_differ(tool, rules))
    if not keys & set(required):  # without required ones, a switch alone is not a new request
        options = required or sorted(p.name for p in tool.parameters if p.type != "boolean")
        keys.add(rng.choice(options or sorted(p.name for p in tool.parameters)))
    if first and rng.random() < 0.3:
        keys.add(rng.choice(sorted(first)))
    second = dict(first)
    choices = templates.values if templates is not None else {}
    for key in sorted(keys):  # from the tool's `values:` list, as its first call's values are
        second[key] = template_value(tool.param(key), choices.get(key), rng)
    second = values.order_pairs(tool.parameters, second, rng)
    calls = [ToolCall(tool.name, first), ToolCall(tool.name, second)]
    reason = check_repeat(tool, calls, rules)
    if reason is not None:
        raise DraftError(reason)
    query, stated = user_requests.parallel_request(templates, tool, first, second, rng)
    return Draft("parallel", query, offer([tool], pool.offer, n_tools, rng), calls,
                 tool.category, stated=stated)


def multiple(pool: Pool, rng: random.Random, n_tools: int, optional_rate: float) -> Draft:
    """Two different tools in one turn."""
    if len(pool.targets) < 2:
        raise DraftError("build:too_few_tools")
    first = pool.draw(rng)
    tools = [first, pool.draw(rng, exclude=first)]
    args = [user_requests.draw_arguments(pool.templates.get(t.name), t, rng, optional_rate)
            for t in tools]
    query, stated = user_requests.joined(
        [user_requests.sentence(pool.templates.get(t.name), t, a, rng, i)
         for i, (t, a) in enumerate(zip(tools, args, strict=True))], rng)
    calls = [ToolCall(t.name, a) for t, a in zip(tools, args, strict=True)]
    return Draft("multiple", query, offer(tools, pool.offer, n_tools, rng), calls,
                 tools[0].category, stated=stated)


def irrelevance(pool: Pool, rng: random.Random, n_tools: int, requests: list[Request],
                offered: list[Tool] | None = None) -> Draft:
    """A request none of the offered tools serves: from the request pool (small talk, writing,
    knowledge, near misses...) or meant for a pool target that is not offered.

    Args:
        pool: Targets are the tools a tool-meant request may come from; `offer` the tools that
            may be offered.
        rng: Source of every choice.
        n_tools: Tools to offer when `offered` is None.
        requests: The split's share of the request pool (`irrelevance.split_requests`).
        offered: The group's tools, fixed; None to choose them (hard negatives first).

    Raises:
        DraftError: No request fits, or (the check) an offered tool serves the request.
    """
    sources = _sources(pool, offered)
    if not sources or rng.random() < POOL_REQUEST_SHARE:
        request = _pick_request(requests, offered, pool.offer, rng)
        served, near = request.served_by, near_categories(request, pool.offer)
        query, action, reply, category = request.text, "", request.reply, "none"
    else:
        source = rng.choice(sources)
        served, near = served_by_tool(source, pool.offer), frozenset()
        templates = pool.templates.get(source.name)
        args = user_requests.draw_arguments(templates, source, rng, 0.3)
        query = user_requests.sentence(templates, source, args, rng)[0]
        action, reply, category = _short_action(source), "", source.category
    if offered is None:
        unrelated = [t for t in pool.offer if not serves(t, served)]
        offered = offer([], unrelated, n_tools, rng, near=near)
    if not offered:
        raise DraftError("build:no_unrelated_tools")
    if serving(offered, served):
        raise DraftError("label:irrelevance_offers_serving_tool")
    return Draft("irrelevance", query, offered, [], category, no_call_action=action,
                 no_call_reply=reply)


def _short_action(tool: Tool) -> str:
    """What a request for `tool` asks, short enough for a no-call answer ("reserve a room")."""
    phrase = queries.action_phrase(tool)
    return phrase if len(phrase.split()) <= MAX_ACTION_WORDS else words_of(tool.name)


def _pick_request(requests: list[Request], offered: list[Tool] | None, tools: list[Tool],
                  rng: random.Random) -> Request:
    """Any request, or one the fixed `offered` tools do not serve (a hard negative, whose near
    categories are offered, half the time when there is one)."""
    if offered is None:
        return rng.choice(requests)
    fitting = [r for r in requests if not serving(offered, r.served_by)]
    if not fitting:
        raise DraftError("build:no_unserved_request")
    cats = {t.category for t in offered}
    hard = [r for r in fitting if near_categories(r, tools) & cats]
    return rng.choice(hard if hard and rng.random() < 0.5 else fitting)


def _sources(pool: Pool, offered: list[Tool] | None) -> list[Tool]:
    """Targets whose requests none of the fixed `offered` tools serves (all when not fixed)."""
    if offered is None:
        return pool.targets
    return [t for t in pool.targets if not serving(offered, served_by_tool(t, pool.offer))]


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
    first = pool.templates.get(tools[0].name)
    opening_args = user_requests.draw_arguments(first, tools[0], rng, optional_rate)
    calls = [ToolCall(tools[0].name, opening_args)]
    results = [execute(calls[0], tools)]
    steps = [(tools[0], opening_args, "", "")]
    in_words = []
    for link in links:
        clause, said_args, words = user_requests.follow_up(
            pool.templates.get(link.dst.name), link.dst, link.param, rng, optional_rate)
        steps.append((link.dst, said_args, link.field, clause))
        in_words.append(words)
        args = {**said_args, link.param: results[-1][link.field]}
        if not values.pairs_in_order(link.dst.parameters, args):  # an end date before the start
            raise DraftError("label:chain_pair_order")
        calls.append(ToolCall(link.dst.name, args))
        results.append(execute(calls[-1], tools))
    opening, said = user_requests.sentence(first, tools[0], opening_args, rng) if first else (
        "", {(0, k) for k in queries.stated_by_phrasing(opening_args)})
    query = queries.chain_query(steps, rng, first=opening)
    offered = offer(tools, pool.offer, n_tools, rng)
    history = list(zip(calls, results, strict=True))
    said_by_step = [frozenset(said)] + [frozenset((0, k) for k in words) for words in in_words]
    return [Draft("chain", query, offered, [calls[i]], tools[0].category, history[:i],
                  chain_steps=len(calls), stated=said_by_step[i]) for i in range(len(calls))]
