"""Natural-language queries derived from a tool's schema, with many phrasings.

A query is assembled from an *action* (the tool description's first clause turned imperative, or
the tool name split into words), one *argument phrase* per value the call carries (the parameter
named by its description or its name, the value in one of its surface forms), and an opening and
closing drawn from many templates. Parallel, multi-tool and chain requests join these pieces.
The same module writes the short reasoning shown before calls and the no-call answer for
irrelevant requests.

Deliberately left out: any grammar model; phrasings that would hide a value (semantic
verification needs every value present in some surface form).
"""

from __future__ import annotations

import random
import re
from typing import Any

from toolmodal.datagen.values import item_param, property_of, surface_forms, words_of
from toolmodal.schema import Param, Tool

OPENERS = ["", "Please ", "Could you ", "Can you ", "I need you to ", "I'd like to ", "Help me ",
           "Quick one: ", "Hey, could you ", "I want to ", "Would you ", "Go ahead and ",
           "I'm trying to ", "Need to ", "Kindly "]
CLOSERS = [".", ".", "?", ", please.", ", thanks!", " for me.", " - thank you.", "!"]
ARG_TEMPLATES = ["{words} {v}", "with {words} {v}", "{words}: {v}", "where the {words} is {v}",
                 "setting {words} to {v}", "using {v} as the {words}", "{words} = {v}",
                 "{words} set to {v}"]
CONNECTORS = [" with ", ": ", " using ", ", ", " - ", " where "]
_PREPOSITIONS = ("in ", "for ", "at ", "with ", "using ", "where ", "setting ")
PLACE_TEMPLATES = ["in {v}", "for {v}", "at {v}"]
JOINERS = [" Also, ", " And then ", " After that, ", " Additionally, ", "; also ", " Plus, "]
_VERB_FIXES = {"returns": "return", "retrieves": "retrieve", "gets": "get", "fetches": "fetch",
               "searches": "search", "lists": "list", "creates": "create", "sends": "send",
               "computes": "compute", "calculates": "calculate", "converts": "convert",
               "finds": "find", "looks": "look", "updates": "update", "deletes": "delete",
               "reads": "read", "writes": "write", "translates": "translate", "checks": "check"}
_CUTS = (" for a given ", " for the given ", " for a ", " given ", " based on ", " by a ",
         " using a ", " with optional ")


def action_phrase(tool: Tool, rng: random.Random) -> str:
    """What the tool does as an imperative phrase, from its description or its name."""
    first = re.split(r"[.:;(\n]", tool.description.strip(), maxsplit=1)[0].strip()
    if first and rng.random() < 0.7:
        words = first.split()
        words[0] = _VERB_FIXES.get(words[0].lower(), words[0].lower())
        phrase = " ".join(words)
        for cut in _CUTS:
            head = phrase.split(cut)[0]
            if cut in phrase and len(head.split()) >= 3:  # "convert a" says nothing
                phrase = head
        return phrase
    return words_of(tool.name)


def param_label(param: Param, rng: random.Random) -> str:
    """How a query names a parameter: its split name or a short clause of its description."""
    clause = re.split(r"[.,:;(\"']", param.description.strip(), maxsplit=1)[0].strip()
    if clause and len(clause.split()) <= 6 and rng.random() < 0.5:
        label = clause[0].lower() + clause[1:]
        return re.sub(r"^(the|a|an) ", "", label)
    return words_of(param.name)


def arg_phrase(param: Param, value: Any, rng: random.Random) -> str:
    """A phrase that carries `value` for `param` in one of its surface forms."""
    if isinstance(value, list):
        item = item_param(param)
        items = [_item_text(item, v, rng) for v in value]
        joined = ", ".join(items[:-1]) + " and " + items[-1] if len(items) > 1 else items[0]
        return rng.choice(ARG_TEMPLATES).format(words=param_label(param, rng), v=joined)
    if isinstance(value, dict):
        inner = [arg_phrase(property_of(param, k), v, rng) for k, v in value.items()]
        return f"{param_label(param, rng)} with " + ", ".join(inner)
    if isinstance(value, bool):
        return rng.choice(surface_forms(value, param))
    text = _scalar_text(param, value, rng)
    if _is_place(param) and rng.random() < 0.6:
        return rng.choice(PLACE_TEMPLATES).format(v=text)
    return rng.choice(ARG_TEMPLATES).format(words=param_label(param, rng), v=text)


def _item_text(item: Param, value: Any, rng: random.Random) -> str:
    if isinstance(value, dict):
        inner = [arg_phrase(property_of(item, k), v, rng) for k, v in value.items()]
        return "(" + ", ".join(inner) + ")"
    if isinstance(value, list):
        return "[" + ", ".join(_item_text(item_param(item), v, rng) for v in value) + "]"
    return _scalar_text(item, value, rng)


def _scalar_text(param: Param, value: Any, rng: random.Random) -> str:
    text = rng.choice(surface_forms(value, param))
    if isinstance(value, str) and " " in text and rng.random() < 0.3 and not param.enum:
        return f'"{text}"'
    return text


def _is_place(param: Param) -> bool:
    return bool(re.search(r"\b(city|location|place|destination)\b", words_of(param.name)))


def args_text(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """All argument phrases of one call, joined, in a shuffled order."""
    phrases = [arg_phrase(tool.param(k), v, rng) for k, v in arguments.items()]
    rng.shuffle(phrases)
    if not phrases:
        return ""
    lead = " " if phrases[0].startswith(_PREPOSITIONS) else rng.choice(CONNECTORS)
    if len(phrases) == 1:
        return lead + phrases[0]
    return lead + ", ".join(phrases[:-1]) + rng.choice([" and ", ", ", "; "]) + phrases[-1]


def request(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """A one-call request without opener or closer: `get the weather in Oslo with units metric`."""
    return action_phrase(tool, rng) + args_text(tool, arguments, rng)


def single_query(tool: Tool, arguments: dict[str, Any], rng: random.Random) -> str:
    """A complete query asking for one call."""
    return finish(request(tool, arguments, rng), rng)


def finish(body: str, rng: random.Random) -> str:
    """Add an opener and closer and fix capitalisation."""
    opener = rng.choice(OPENERS)
    closer = rng.choice(CLOSERS)
    if closer == "?" and not opener.strip().endswith(("you", "you ")):
        closer = "."
    text = (opener + body).strip() + closer
    return text[0].upper() + text[1:]


def parallel_query(tool: Tool, first: dict[str, Any], second: dict[str, Any],
                   rng: random.Random) -> str:
    """Ask for the same tool twice: the second part names only what differs."""
    changed = {k: v for k, v in second.items() if first.get(k) != v}
    if rng.random() < 0.5 and set(first) == set(second):
        tail = args_text(tool, changed, rng)
        return finish(request(tool, first, rng) + ", and do the same" + tail, rng)
    return finish(request(tool, first, rng), rng) + rng.choice(JOINERS) + \
        request(tool, second, rng) + "."


def joined_query(parts: list[str], rng: random.Random) -> str:
    """Join several one-call requests into one message."""
    text = finish(parts[0], rng)
    for part in parts[1:]:
        text += rng.choice(JOINERS) + part + "."
    return text


def chain_query(steps: list[tuple[Tool, dict[str, Any], str]], rng: random.Random) -> str:
    """Ask for a chain: each later step says which field of the previous result it uses.

    Args:
        steps: (tool, arguments stated in the query, linked field or "" for the first step).
    """
    text = "First " + request(steps[0][0], steps[0][1], rng)
    for i, (tool, args, field) in enumerate(steps[1:], start=1):
        link = rng.choice([f"using the {words_of(field)} from that result",
                           f"with the {words_of(field)} it returns",
                           f"based on the returned {words_of(field)}"])
        word = "finally" if i == len(steps) - 1 and i > 1 else "then"
        text += f", {word} {action_phrase(tool, rng)} {link}{args_text(tool, args, rng)}"
    return text + rng.choice([".", ", please.", "."])


def reasoning_text(kind: str, names: list[str], rng: random.Random, step: int = 0) -> str:
    """A one-sentence plan shown before the calls."""
    if kind == "chain" and step > 0:
        return f"The previous result gives what {names[0]} needs, so I'll call it next. "
    if kind == "chain":
        return f"This needs several steps; I'll start with {names[0]}. "
    if kind == "parallel":
        return f"Two separate requests for {names[0]}, so I'll call it twice. "
    if kind == "multiple":
        return f"This needs {' and '.join(names)}. "
    return rng.choice([f"{names[0]} matches this request. ", f"I'll use {names[0]} for this. ",
                       f"The right tool here is {names[0]}. "])


def no_call_answer(action: str, rng: random.Random) -> str:
    """The short answer when no offered tool fits (`action` is "" for small talk)."""
    if not action:
        return rng.choice(["None of the available tools is needed or able to help with this, "
                           "so I won't call any.", "No tool fits this request.",
                           "This isn't something the provided tools can do."])
    return rng.choice([
        f"None of the available tools can {action}, so I can't do this with a tool call.",
        f"No tool here fits: nothing offered can {action}.",
        "I can't help with that using the tools I have; none of them applies.",
        f"Sorry, there is no tool to {action} among the ones provided.",
    ])


GENERIC_REQUESTS = [
    "Tell me a joke about penguins.", "Write a haiku about autumn leaves.",
    "Explain what a black hole is in simple terms.", "What does the word serendipity mean?",
    "Can you recommend a good fantasy novel?", "Summarize the plot of Hamlet in two sentences.",
    "Suggest a name for my new puppy.", "How do I apologise to a friend?",
    "Give me three tips for better sleep.", "What should I cook with leftover rice?",
    "Write a short poem about nostalgia.", "Invent a riddle about time.",
    "Hi! How are you today?", "Thanks, that's all for now.",
]


def generic_request(rng: random.Random) -> tuple[str, str]:
    """A request no tool serves (small talk, writing); returns (query, "")."""
    return rng.choice(GENERIC_REQUESTS), ""
