"""Requests for tools without request templates, phrased from the schema and a phrasing file.

A request is an *opener*, an *action* (the tool description's first clause cut to a verb and its
object: "get a daily weather forecast"), one *argument phrase* per value the call carries ("for
Cusco", "for the next 3 days", "with the units set to imperial") and a *closer*. Parameters are
named by their name's words only, never by fragments of their description. Openers, closers,
joiners, the action's cut words and the argument phrasings are human-written data in
`data/requests/phrasing.yaml`. Tools with templates (`toolmodal.datagen.templates`) don't come
here. Parallel, multi-tool and chain requests join whole sentences.

Deliberately left out: any grammar model; phrasings that would hide a value (semantic
verification needs every value present in some surface form; booleans are stated in words and
exempted, see `stated_by_phrasing`).
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any

import yaml

from toolmodal.datagen.template_render import value_text
from toolmodal.datagen.values import date_format, unit_of, words_of
from toolmodal.paths import project_path
from toolmodal.schema import Param, Tool

PHRASING_FILE = "data/requests/phrasing.yaml"
_LATER = ("with ",)
MAX_NAME_ACTION_WORDS = 4  # longer names are paths or jargon ("get case rest services get ...")
_LAST = ("saying ", "including ", "and include ", "without ", "leaving out ", "limited ")


@lru_cache(maxsize=1)
def phrasing() -> dict:
    """The phrasing data (read once)."""
    return yaml.safe_load(project_path(PHRASING_FILE).read_text(encoding="utf-8"))


def action_phrase(tool: Tool, rng: random.Random | None = None) -> str:
    """What the tool does as a lower-case imperative phrase: `get a daily weather forecast`.

    `rng` is unused (kept for callers that pass one): the action of a tool is always the same.
    """
    return _action(tool.name, tool.description)


def has_action(name: str, description: str) -> bool:
    """Whether a request can say what a tool does: its description starts with a verb, or its
    name is a short verb phrase (`getProjectStatus`, not `post_payments_transId_void`)."""
    if _described_action(description) is not None:
        return True
    words = _label(name).split()
    return 2 <= len(words) <= MAX_NAME_ACTION_WORDS and words[0] in phrasing()["verbs"]


@lru_cache(maxsize=4096)
def _action(name: str, description: str) -> str:
    return _described_action(description) or _label(name)


@lru_cache(maxsize=4096)
def _described_action(description: str) -> str | None:
    """The description's first clause cut to a verb and its object, or None when it does not
    start with a verb of the phrasing file."""
    data = phrasing()
    text = re.sub(r"\s*\([^)]*\)", "", description.strip())
    first = re.split(r"[.:;\n](?:\s|$)", text, maxsplit=1)[0].strip()
    words = first.split()
    if words:
        words[0] = data["verb_fixes"].get(words[0].lower(), words[0].lower())
    if not words or words[0] not in data["verbs"]:
        return None
    cuts = set(data["cut_words"])
    for i, word in enumerate(words):
        if i >= 3 and word in cuts:
            words = words[:i]
            break
        if i >= 3 and word.endswith(","):
            words = words[:i + 1]
            words[-1] = words[-1].rstrip(",")
            break
    phrase = " " + " ".join(words) + " "
    for cut in data["cut_phrases"]:
        phrase = phrase.split(f" {cut} ")[0] + " "
    for drop in data["drop_words"]:
        phrase = phrase.replace(f" {drop} ", " ")
    for third, first in data["person"].items():
        phrase = phrase.replace(f" {third} ", f" {first} ")
    return phrase.strip()


@lru_cache(maxsize=4096)
def _label(name: str) -> str:
    """A parameter or tool name in words, short names spelled out: `max_results` ->
    `maximum results`."""
    spelled = [phrasing()["abbreviations"].get(w, w) for w in words_of(name).split()]
    return " ".join(w for w in spelled if w) or words_of(name) or name


def _rule(param: Param) -> dict:
    """The first argument rule of the phrasing file that fits `param`."""
    label = _label(param.name)
    for rule in phrasing()["arguments"]:
        when = rule["when"]
        kind = "enum" if param.enum else param.type
        if "type" in when and when["type"] not in (kind, param.type):
            continue
        if "date" in when and when["date"] != (date_format(param) is not None):
            continue
        if "name" in when and not re.search(when["name"], label):
            continue
        return rule
    raise ValueError(f"{PHRASING_FILE}: no argument rule fits parameter {param.name!r} "
                     f"(the last rule should have `when: {{}}`)")


def arg_phrase(param: Param, value: Any, rng: random.Random) -> str:
    """A phrase that carries `value` for `param`: `for Cusco`, `with the units set to imperial`."""
    rule = _rule(param)
    label = _label(param.name)
    match = re.search(rule["when"].get("name", "^"), label)
    rest = (label[:match.start()] + label[match.end():]).strip() or "results"
    if isinstance(value, bool):
        return rng.choice(rule["true" if value else "false"]).format(label=label, rest=rest)
    text = value_text(value, param, rng)
    unit = unit_of(param) if isinstance(value, (int, float)) else None
    if unit is not None:
        text = f"{value} {rng.choice(unit[1])}"
        units = {unit[0], *(u.rstrip("s") for u in unit[1])}
        label = " ".join(w for w in label.split() if w.rstrip("s") not in units) or label
    if label.split()[-1] in text.lower().split():  # color=color: "with color", not "color color"
        return f"with {text}"
    return rng.choice(rule["say"]).format(v=text, label=label, rest=rest)


def args_text(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """All argument phrases of one call, with a leading space: place and time first, then one
    `with a, b and c`, then quoted texts and inclusions."""
    phrases = [arg_phrase(tool.param(k), v, rng) for k, v in arguments.items()]
    rng.shuffle(phrases)
    first = [p for p in phrases if not p.startswith(_LATER + _LAST)]
    withs = [p.removeprefix("with ") for p in phrases if p.startswith(_LATER)]
    last = [p for p in phrases if p.startswith(_LAST)]
    parts = first + ([f"with {and_list(withs)}"] if withs else []) + last
    return "".join(" " + p for p in parts)


def and_list(items: list[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def request(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """A one-call request without opener or closer: `get the weather for Oslo`."""
    return action_phrase(tool, rng) + args_text(tool, arguments, rng)


def single_query(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """A complete request for one call."""
    return finish(request(tool, arguments, rng), rng)


def stated_by_phrasing(arguments: dict[str, Any]) -> frozenset[str]:
    """Arguments this module states in words rather than as a value (booleans: `including air
    quality`), which the semantic check takes as stated."""
    return frozenset(k for k, v in arguments.items() if isinstance(v, bool))


def finish(body: str, rng: random.Random) -> str:
    """Add an opener and a matching closer (a question gets `?`) and capitalise."""
    data = phrasing()
    mood = "question" if rng.random() < 0.4 else "statement"
    closer = rng.choice(data["closers"][mood])
    if mood == "statement" and body.rstrip('"')[-1:] in ".?!":  # a value brings its own stop
        closer = closer.lstrip(".?,") or ""
    text = rng.choice(data["openers"][mood]) + body + closer
    return text[0].upper() + text[1:]


def join_requests(sentences: list[str], rng: random.Random) -> str:
    """Several complete requests in one message: `... Also, get ...`."""
    text = sentences[0]
    for sentence in sentences[1:]:
        text += " " + rng.choice(phrasing()["joiners"]) + lower_first(sentence)
    return text


def lower_first(sentence: str) -> str:
    """Lower-case the first letter unless the first word is `I...` or an acronym."""
    first = sentence.split(" ", 1)[0]
    if first == "I" or first.startswith("I'") or first[1:2].isupper():
        return sentence
    return sentence[:1].lower() + sentence[1:]


def parallel_query(tool: Tool, first: dict[str, Any], second: dict[str, Any],
                   rng: random.Random) -> str:
    """Ask for the same tool twice: `... Then do the same for Lyon.` names only what differs."""
    again = same_again(tool, first, second, rng) if rng.random() < 0.5 else None
    if again is not None:
        return single_query(tool, first, rng) + " " + again
    return join_requests([single_query(tool, first, rng), single_query(tool, second, rng)], rng)


def same_again(tool: Tool, first: dict[str, Any], second: dict[str, Any],
               rng: random.Random) -> str | None:
    """`Then do the same for Lyon.`: the second call said as what changes; None when it drops
    an argument of the first (that cannot be said this way)."""
    if not set(first) <= set(second):
        return None
    changed = {k: v for k, v in second.items() if first.get(k) != v}
    return rng.choice(phrasing()["same_again"]).format(args=args_text(tool, changed, rng).strip())


def chain_query(steps: list[tuple[Tool, dict[str, Any], str, str]], rng: random.Random,
                first: str = "") -> str:
    """Ask for a chain: each later step is its follow-up clause ("then translate it into
    German"), or, without one, its action and which field of the previous result it uses.

    Args:
        steps: (tool, arguments stated in the query, linked field or "" for the first step,
            the step's follow-up clause or "").
        first: The first step's request as a sentence (from its templates), or "" to phrase it.
    """
    data = phrasing()
    parts = []
    for i, (tool, args, field, clause) in enumerate(steps[1:], start=1):
        word = "finally" if i == len(steps) - 1 and i > 1 else "then"
        if clause:
            parts.append(f"{word} {lower_first(clause)}")
            continue
        link = rng.choice(data["chain_links"]).format(field=_label(field))
        parts.append(f"{word} {action_phrase(tool)} {link}{args_text(tool, args, rng)}")
    if first:
        return _full_stop(first) + " " + " ".join(_full_stop(p[0].upper() + p[1:])
                                                   for p in parts)
    opener = rng.choice(data["chain_first"])
    text = _full_stop(opener + request(steps[0][0], steps[0][1], rng) + ", " + ", ".join(parts))
    return text[0].upper() + text[1:]


def _full_stop(sentence: str) -> str:
    """`sentence` ending in one stop (a value may end it already: "... start without me.")."""
    return sentence if sentence.endswith((".", "?", "!")) else sentence + "."
