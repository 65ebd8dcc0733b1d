"""The user's request for a draft: from the tool's templates when it has them, else phrased
from its schema (`queries`).

Every function returns, with the text, which arguments the text states in words rather than as
a value (`[in Fahrenheit](units=imperial)`, `including air quality`), as (call index, parameter)
pairs: the semantic check (`verify.check_grounding`) takes those as stated and checks the rest.

Deliberately left out: which tools are asked for and offered (`examples`).
"""

from __future__ import annotations

import random
from typing import Any

from toolmodal.datagen import queries
from toolmodal.datagen.template_render import render_detail, render_given
from toolmodal.datagen.templates import ToolTemplates
from toolmodal.datagen.values import order_pairs, sample_arguments
from toolmodal.schema import Tool

Stated = frozenset[tuple[int, str]]


def draw_arguments(templates: ToolTemplates | None, tool: Tool, rng: random.Random,
                   optional_rate: float) -> dict[str, Any]:
    """Arguments of one call: those of a random template expansion when the tool has templates
    (so some requests leave optional ones out, as their templates do), else the required
    parameters plus each optional one with probability `optional_rate`; paired parameters then
    agree (`values.order_pairs`: start before end, min below max)."""
    if templates is not None:
        return order_pairs(tool.parameters, render_detail(templates, tool, rng)[1], rng)
    return sample_arguments(tool, rng, optional_rate)


def follow_up(templates: ToolTemplates | None, tool: Tool, param: str, rng: random.Random,
              optional_rate: float) -> tuple[str, dict[str, Any], frozenset[str]]:
    """A later step of a chain, whose `param` takes a value of the previous result: (clause,
    the arguments it says, those it says in words). The clause comes from the tool's follow-ups
    ("translate it into German"); without them it is "" and `queries.chain_query` phrases the
    step from the schema with drawn arguments."""
    clauses = templates.follow_up(param) if templates is not None else None
    if clauses is not None:
        return render_detail(clauses, tool, rng)
    args = sample_arguments(tool, rng, optional_rate)
    args.pop(param, None)
    return "", args, queries.stated_by_phrasing(args)


def sentence(templates: ToolTemplates | None, tool: Tool, args: dict[str, Any],
             rng: random.Random, index: int = 0) -> tuple[str, Stated]:
    """A complete request for one call with exactly `args`; `index` is the call's position
    in the draft (for the stated pairs)."""
    rendered = render_given(templates, tool, args, rng) if templates is not None else None
    if rendered is not None:
        text, fixed = rendered
    else:
        text, fixed = queries.single_query(tool, args, rng), queries.stated_by_phrasing(args)
    return text, frozenset((index, name) for name in fixed)


def joined(parts: list[tuple[str, Stated]], rng: random.Random) -> tuple[str, Stated]:
    """Several requests in one message (`... Also, ...`), stated pairs merged."""
    return (queries.join_requests([text for text, _ in parts], rng),
            frozenset().union(*(stated for _, stated in parts)))


def parallel_request(templates: ToolTemplates | None, tool: Tool, first: dict[str, Any],
                     second: dict[str, Any], rng: random.Random) -> tuple[str, Stated]:
    """Ask for the same tool twice: two template renders joined; when the second call fits no
    template, the first render and what changes (`... Then do the same for Lyon.`)."""
    if templates is None:
        stated = {(0, k) for k in queries.stated_by_phrasing(first)}
        stated |= {(1, k) for k in queries.stated_by_phrasing(second)}
        return queries.parallel_query(tool, first, second, rng), frozenset(stated)
    opening = sentence(templates, tool, first, rng, 0)
    rendered = render_given(templates, tool, second, rng)
    if rendered is not None:
        return joined([opening, (rendered[0], frozenset((1, k) for k in rendered[1]))], rng)
    again = queries.same_again(tool, first, second, rng)
    if again is None:
        return joined([opening, sentence(None, tool, second, rng, 1)], rng)
    # what the first request said in words holds for the second unless it changed
    kept = {(1, k) for i, k in opening[1] if first[k] == second[k]}
    kept |= {(1, k) for k in queries.stated_by_phrasing(second)}
    return opening[0] + " " + again, opening[1] | frozenset(kept)
