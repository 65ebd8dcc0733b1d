"""Rendering request templates: a random request with its arguments (`render`), or a request
for given arguments (`render_given`), values written as a person writes them (`value_text`).

Deliberately left out: the template format, its checks and loading (`templates`).
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any

from toolmodal.datagen.templates import (
    MAX_EXPANSIONS,
    Choice,
    Fixed,
    Node,
    Slot,
    ToolTemplates,
    expand,
    fixed_value,
    is_item,
)
from toolmodal.datagen.values import (
    item_param,
    number_words,
    property_of,
    sample_value,
    surface_forms,
    words_of,
)
from toolmodal.schema import Param, Tool


def render(templates: ToolTemplates, tool: Tool, rng: random.Random) -> tuple[str, dict]:
    """One request: a template, its branches and slot values chosen at random.

    Returns:
        (request text, arguments) where the arguments are exactly the expansion's slots and
        annotations, in schema order.
    """
    text, args, _ = render_detail(templates, tool, rng)
    return text, args


def render_detail(templates: ToolTemplates, tool: Tool,
                  rng: random.Random) -> tuple[str, dict, frozenset[str]]:
    """Like `render`, also returning which arguments were fixed by an annotation."""
    nodes = rng.choice(templates.templates)
    args: dict[str, Any] = {}
    fixed: set[str] = set()
    text = _say(nodes, tool, templates.values, rng, args, fixed, {})
    order = [p.name for p in tool.parameters]
    return tidy(text), {k: args[k] for k in order if k in args}, frozenset(fixed)


def _say(nodes: tuple[Node, ...], tool: Tool, values: dict, rng: random.Random,
         args: dict, fixed: set, said: dict[str, str]) -> str:
    parts = []
    for node in nodes:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, Choice):
            parts.append(_say(rng.choice(node.branches), tool, values, rng, args, fixed, said))
        elif isinstance(node, Fixed):
            args[node.param] = fixed_value(node, tool.param(node.param))
            fixed.add(node.param)
            parts.append(_say(node.text, tool, values, rng, args, fixed, said))
        else:
            param = tool.param(node.name)
            if node.name not in args:
                args[node.name] = template_value(param, values.get(node.name), rng)
                said[node.name] = value_text(args[node.name], param, rng)
            parts.append(said[node.name])
    return "".join(parts)


def render_given(templates: ToolTemplates, tool: Tool, args: dict[str, Any],
                 rng: random.Random) -> tuple[str, frozenset[str]] | None:
    """A request for exactly `args` (slots said with these values), from a random expansion
    whose parameters are `args`' keys and whose annotations give `args`' values; None when no
    expansion fits. Returns (text, arguments fixed by an annotation)."""
    fitting = [e for e in expansions(templates) if _fits(e, tool, args)]
    if not fitting:
        return None
    chosen = rng.choice(fitting)
    said: dict[str, str] = {}
    parts = []
    for node in chosen:
        if isinstance(node, Slot):
            param = tool.param(node.name)
            said.setdefault(node.name, value_text(args[node.name], param, rng))
            parts.append(said[node.name])
        else:
            parts.append(node if isinstance(node, str) else node.text[0])
    fixed = frozenset(n.param for n in chosen if isinstance(n, Fixed))
    return tidy("".join(parts)), fixed


def _fits(expansion: tuple[Node, ...], tool: Tool, args: dict[str, Any]) -> bool:
    names = {n.name if isinstance(n, Slot) else n.param for n in expansion
             if not isinstance(n, str)}
    return names == set(args) and all(
        fixed_value(n, tool.param(n.param)) == args[n.param] for n in expansion
        if isinstance(n, Fixed))


def expansions(templates: ToolTemplates) -> list[tuple[Node, ...]]:
    """Every expansion of every template (alternations resolved, annotation text flattened),
    at most `MAX_EXPANSIONS` per template."""
    return _expansions_of(templates.templates)


@lru_cache(maxsize=1024)
def _expansions_of(parsed: tuple[tuple[Node, ...], ...]) -> list[tuple[Node, ...]]:
    return [e for nodes in parsed for e in expand(nodes)[:MAX_EXPANSIONS]]


def template_value(param: Param, choices: list | None, rng: random.Random) -> Any:
    """A value from the tool's `values:` list when it has one, else a generated one."""
    if not choices:
        return sample_value(param, rng)
    items = [v for v in choices if is_item(v, param)]
    if not items:
        return rng.choice(choices)
    whole = [v for v in choices if not is_item(v, param)]
    if whole and rng.random() < len(whole) / len(choices):
        return rng.choice(whole)
    return rng.sample(items, rng.randint(1, min(3, len(items))))


def value_text(value: Any, param: Param, rng: random.Random) -> str:
    """A value as a person writes it: dates in words, small numbers spelled, lists as
    "a, b and c", objects as "key value" pairs."""
    if isinstance(value, list):
        item = item_param(param)
        texts = [f"[{', '.join(value_text(v, item, rng) for v in x)}]" if isinstance(x, list)
                 else value_text(x, item, rng) for x in value]
        return texts[0] if len(texts) == 1 else ", ".join(texts[:-1]) + " and " + texts[-1]
    if isinstance(value, dict):
        return ", ".join(rng.choice(surface_forms(v, property_of(param, k)))
                         if isinstance(v, bool)  # "optional enabled"
                         else f"{words_of(k)} {value_text(v, property_of(param, k), rng)}"
                         for k, v in value.items())
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, (int, float)):
        spelled = number_words(value) if isinstance(value, int) and value <= 12 else None
        if spelled is not None and rng.random() < 0.5:
            return spelled
        plain = {str(value), f"{value:,}" if abs(value) >= 10000 else ""}  # no unit, no "1,990"
        return rng.choice([f for f in surface_forms(value, param) if f in plain])
    forms = surface_forms(value, param)
    if len(forms) > 1 and rng.random() < 0.8:  # a date in words, an enum without underscores
        return rng.choice(forms[1:])
    return forms[0]


def tidy(text: str) -> str:
    """Collapse spaces left by empty branches, drop spaces before punctuation, capitalise."""
    text = re.sub(r"\s+", " ", text).strip()
    text = re.sub(r" ([,.?!;:])(?=\s|$)", r"\1", text)
    return text[:1].upper() + text[1:]
