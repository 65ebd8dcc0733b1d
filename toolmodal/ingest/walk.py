"""Bookkeeping of one `Converter` walking a document: the node budget and the `$ref` memo.

Large documents (the Microsoft Graph OpenAPI descriptions: 2,600 schemas, 11,000 operations)
name the same few hundred schemas over and over; expanding each afresh every time costs minutes.
How a `$ref` expands depends on where it is met only through the bounds of
`toolmodal.ingest.jsonschema` (a cycle with the chain above it, the `$ref` chain and nesting
depth limits, the node budget). So an expansion in which no bound fired and nothing was noted is
recorded with what it used (nodes built, depth and chain length reached, `$ref`s resolved), and
it is reused wherever none of those bounds would fire either: the result is exactly what
expanding it again would give. Left out: memoising an expansion in which a bound fired (it
depends on the path to it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from toolmodal.schema import Param


class Expansion(NamedTuple):
    """A `$ref` expanded with no bound firing, and what it used, relative to where it was met."""

    param: Param
    nodes: int  # Params built
    deepest: int  # nesting levels below the $ref
    longest: int  # $refs added to the chain by the longest chain checked inside
    refs: frozenset[str]  # every $ref resolved inside


class Mark(NamedTuple):
    """The walk's state when an expansion starts."""

    nodes: int
    stops: int
    deepest: int
    longest: int
    resolved: int
    notes: int
    depth: int
    chain: int


@dataclass
class Walk:
    """The mutable state of a (frozen) `Converter`.

    Attributes:
        nodes: Params built by the current `Converter.param` call (the budget's count).
        stops: Bounds that fired so far (an expansion during which one fires is not recorded).
        deepest: Greatest nesting depth entered so far.
        longest: Greatest `$ref` chain length checked so far.
        resolved: The `$ref`s resolved by the current `Converter.param` call, in order.
        memo: Recorded expansions by `$ref` node (the ref and any keywords beside it).
    """

    nodes: int = 0
    stops: int = 0
    deepest: int = 0
    longest: int = 0
    resolved: list[str] = field(default_factory=list)
    memo: dict[tuple[str, str], Expansion] = field(default_factory=dict)

    def restart(self) -> None:
        """Start the walk of one parameter (the memo is kept: it holds for the whole document)."""
        self.nodes = self.stops = self.deepest = self.longest = 0
        self.resolved.clear()

    def mark(self, depth: int, chain: int, notes: int) -> Mark:
        """Start an expansion at `depth` below a `$ref` chain of length `chain`."""
        mark = Mark(self.nodes, self.stops, self.deepest, self.longest, len(self.resolved),
                    notes, depth, chain)
        self.deepest, self.longest = depth, chain
        return mark

    def record(self, key: tuple[str, str], mark: Mark, param: Param, notes: int) -> None:
        """End the expansion begun at `mark`; keep it in the memo when nothing fired in it."""
        if self.stops == mark.stops and notes == mark.notes:
            self.memo[key] = Expansion(param, self.nodes - mark.nodes, self.deepest - mark.depth,
                                       self.longest - mark.chain,
                                       frozenset(self.resolved[mark.resolved:]))
        self.deepest = max(self.deepest, mark.deepest)
        self.longest = max(self.longest, mark.longest)

    def reuse(self, key: tuple[str, str], depth: int, refs: tuple[str, ...], budget: int,
              max_depth: int, max_chain: int) -> Param | None:
        """The recorded expansion of `key` if no bound would fire in it here, else None."""
        known = self.memo.get(key)
        if (known is None or self.nodes + known.nodes >= budget
                or depth + known.deepest > max_depth
                or len(refs) + known.longest >= max_chain
                or any(ref in known.refs for ref in refs)):
            return None
        self.nodes += known.nodes
        self.deepest = max(self.deepest, depth + known.deepest)
        self.longest = max(self.longest, len(refs) + known.longest)
        self.resolved += known.refs
        return known.param
