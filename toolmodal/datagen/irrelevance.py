"""Requests no offered tool serves: the request pool, its train/test split, the serving check and
the no-call answers.

The pool (`data/requests/irrelevant.yaml`) lists each request with the tools or categories that
WOULD serve it (`served_by`) and the categories that look close but cannot (`near`, hard
negatives). A draft is rejected when an offered tool serves its request (`serving`), so an
irrelevance row is irrelevant by check, not by chance. A request meant for a catalogue tool that
is not offered (the other source of irrelevance rows) is served by that tool, every tool of its
category, every tool sharing a word of its name and the general-purpose tools (`general`).

The pool is split between training and test by a hash of each text, per kind (`split_requests`),
so no string is shared and adding a request never moves another. The answer follows the
system-prompt variant's `no_call` style (`data/requests/no_call_answers.yaml`).

Deliberately left out: choosing which tools are offered (`examples.offer`) and rendering.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from toolmodal.datagen.values import words_of
from toolmodal.schema import Tool

KINDS = ("small_talk", "writing", "knowledge", "advice", "unsupported", "near_miss")
TEST_EVERY = 4  # one request in four (per kind) is kept for the test split
STYLES = ("sentence", "few_words", "reason")
# serve almost any request for information: never offered beside a request meant for a tool
GENERAL_TOOLS = frozenset({"search_web", "search_news", "fetch_webpage"})


@dataclass(frozen=True)
class Request:
    """One request of the pool (see the module docstring)."""

    text: str
    kind: str
    served_by: frozenset[str]
    near: frozenset[str] = frozenset()
    reply: str = ""


@lru_cache(maxsize=4)
def load_requests(path: Path) -> tuple[Request, ...]:
    """Read the request pool.

    Raises:
        ValueError: An entry lacks a field, has an unknown kind, small talk lacks its reply, or a
            text appears twice; the message names the file and the entry.
    """
    entries = yaml.safe_load(Path(path).read_text(encoding="utf-8"))["requests"]
    requests, seen = [], set()
    for i, entry in enumerate(entries):
        where = f"{path}: request {i} ({entry.get('text')!r})"
        if entry.get("kind") not in KINDS or "served_by" not in entry or not entry.get("text"):
            raise ValueError(f"{where}: needs text, served_by and a kind among {KINDS}")
        if (entry["kind"] == "small_talk") != bool(entry.get("reply")):
            raise ValueError(f"{where}: small talk, and only small talk, has a reply")
        if entry["text"] in seen:
            raise ValueError(f"{where}: duplicate text")
        seen.add(entry["text"])
        requests.append(Request(entry["text"], entry["kind"], frozenset(entry["served_by"]),
                                frozenset(entry.get("near", [])), entry.get("reply", "")))
    return tuple(requests)


def split_requests(requests: tuple[Request, ...]) -> tuple[list[Request], list[Request]]:
    """(train, test): per kind, sorted by the hash of the text, every `TEST_EVERY`-th to test."""
    train, test = [], []
    for kind in KINDS:
        ranked = sorted((r for r in requests if r.kind == kind),
                        key=lambda r: hashlib.sha1(r.text.encode("utf-8")).hexdigest())
        for i, request in enumerate(ranked):
            (test if i % TEST_EVERY == TEST_EVERY - 1 else train).append(request)
    return train, test


def serves(tool: Tool, served_by: frozenset[str]) -> bool:
    """Does `tool` serve a request served by these tool names / categories?"""
    return tool.name in served_by or tool.category in served_by


def served_by_tool(source: Tool, tools: list[Tool]) -> frozenset[str]:
    """Who serves a request meant for `source`: it, its category, tools sharing a name word
    (`convert_units` for a `convert_currency` request) and the general-purpose tools."""
    words = _name_words(source.name)
    alike = {t.name for t in tools if not words.isdisjoint(_name_words(t.name))}
    return frozenset({source.name, source.category} | alike | GENERAL_TOOLS)


@lru_cache(maxsize=65536)
def _name_words(name: str) -> frozenset[str]:
    return frozenset(words_of(name).split())


def near_categories(request: Request, tools: list[Tool]) -> frozenset[str]:
    """Categories to offer first: `near` plus the categories of the tools that serve it."""
    return request.near | {t.category for t in tools if t.name in request.served_by}


def serving(tools: list[Tool], served_by: frozenset[str]) -> list[str]:
    """Names of the offered tools that serve the request (empty for a valid irrelevance row)."""
    return [t.name for t in tools if serves(t, served_by)]


@lru_cache(maxsize=4)
def load_answers(path: Path) -> dict:
    """Read the no-call answers; every style in `STYLES` needs `unserved` and `action` lists.

    Raises:
        ValueError: A style or a list is missing, naming the file.
    """
    answers = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    for style in STYLES:
        if not all(answers.get(style, {}).get(k) for k in ("unserved", "action")):
            raise ValueError(f"{path}: style {style!r} needs non-empty 'unserved' and 'action'")
    return answers


def no_call_answer(answers: dict, style: str, action: str, reply: str,
                   rng: random.Random) -> str:
    """The answer when no offered tool fits.

    Args:
        answers: `load_answers` output.
        style: The variant's `no_call` style.
        action: What a tool-meant request asks for ("" for a pool request).
        reply: A small-talk request's own reply ("" otherwise).
        rng: Source of the choice among phrasings.
    """
    table = answers[style]
    if reply:
        return table.get("reason_prefix", "") + reply
    if action:
        return rng.choice(table["action"]).format(action=action)
    return rng.choice(table["unserved"])


def answer_set(answers: dict, style: str, action: str, reply: str) -> set[str]:
    """Every answer `no_call_answer` can give for these arguments (for tests and checks)."""
    table = answers[style]
    if reply:
        return {table.get("reason_prefix", "") + reply}
    if action:
        return {a.format(action=action) for a in table["action"]}
    return set(table["unserved"])
