"""Strings that match a parameter's regex `pattern`, drawn by walking the parsed regex.

Python's own regex parser (`re._parser`) turns the pattern into a tree of literals, classes,
repeats, groups and branches; `sample_pattern` walks it and draws one character or branch at
each node. Unbounded repeats are capped at a few repetitions. Realistic candidates (country and
currency codes, airports...) are preferred when one of them matches.

Deliberately left out: lookarounds and backreferences (the draw may then miss the pattern; the
format check rejects it and the rejection is counted).
"""

from __future__ import annotations

import random
import re
import string
from re import _constants as C  # noqa: N812 - the regex parser's opcode names
from re import _parser as parser

ALPHABET = string.ascii_letters + string.digits + "_-."
MAX_UNBOUNDED = 3


def sample_pattern(pattern: str, rng: random.Random, tiers: list[list[str]]) -> str:
    """A string that fully matches `pattern`, preferring candidates from the first tier that has
    a match.

    Raises:
        re.error: When the pattern does not compile (ingestion should have rejected it).
    """
    compiled = re.compile(pattern)
    for candidates in tiers:
        matching = [c for c in candidates if compiled.fullmatch(c)]
        if matching:
            return rng.choice(matching)
    return "".join(_walk(parser.parse(pattern), rng))


def _walk(nodes: list, rng: random.Random) -> list[str]:
    out: list[str] = []
    for op, arg in nodes:
        if op is C.LITERAL:
            out.append(chr(arg))
        elif op is C.IN:
            out.append(_pick_class(arg, rng))
        elif op is C.ANY:
            out.append(rng.choice(string.ascii_lowercase))
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT):
            low, high, sub = arg
            high = low + MAX_UNBOUNDED if high is C.MAXREPEAT else min(high, low + MAX_UNBOUNDED)
            for _ in range(rng.randint(low, max(low, high))):
                out += _walk(sub, rng)
        elif op is C.SUBPATTERN:
            out += _walk(arg[-1], rng)
        elif op is C.BRANCH:
            out += _walk(rng.choice(arg[1]), rng)
        elif op is C.CATEGORY:
            out.append(_category(arg, rng))
    return out


def _pick_class(items: list, rng: random.Random) -> str:
    negate = any(op is C.NEGATE for op, _ in items)
    allowed = set()
    for op, arg in items:
        if op is C.LITERAL:
            allowed.add(chr(arg))
        elif op is C.RANGE:
            allowed.update(chr(c) for c in range(arg[0], arg[1] + 1))
        elif op is C.CATEGORY:
            allowed.update(_category_chars(arg))
    pool = sorted(set(ALPHABET) - allowed) if negate else sorted(allowed)
    return rng.choice(pool or list(ALPHABET))


def _category_chars(category: object) -> str:
    if category is C.CATEGORY_DIGIT:
        return string.digits
    if category is C.CATEGORY_SPACE:
        return " "
    if category is C.CATEGORY_WORD:
        return string.ascii_letters + string.digits + "_"
    return string.ascii_lowercase


def _category(category: object, rng: random.Random) -> str:
    return rng.choice(_category_chars(category))
