"""Held-out tools and the number of rows each split gets.

A share of the catalogue's tools is held out, spread over categories (round-robin over the
shuffled categories), so unseen-tool test rows cover many domains. Held-out tools never appear
in a training split: not as a target, not as a distractor, not as the source of an irrelevant
query. Row counts per split follow `GenerationConfig`.

Deliberately left out: splitting rows after generation (each row is generated for its split, so
train/validation/test never share a (query, tools) pair: generation de-duplicates globally).
"""

from __future__ import annotations

import random
from collections import defaultdict

from toolmodal.datagen.config import PHASES, TEST_SPLITS, GenerationConfig
from toolmodal.schema import Catalogue, Tool


def hold_out(catalogue: Catalogue, share: float, seed: int) -> tuple[list[Tool], list[Tool]]:
    """Split the catalogue into (seen, held-out) tools, held-out spread over categories.

    Raises:
        ValueError: If the split leaves no seen or (with share > 0) no held-out tool.
    """
    rng = random.Random(f"{seed}:held_out")
    by_category: dict[str, list[Tool]] = defaultdict(list)
    for tool in sorted(catalogue.tools, key=lambda t: t.name):
        by_category[tool.category].append(tool)
    queues = [by_category[c] for c in sorted(by_category)]
    for queue in queues:
        rng.shuffle(queue)
    rng.shuffle(queues)
    order: list[Tool] = []
    while any(queues):
        order += [q.pop() for q in queues if q]
    count = round(share * len(order))
    held = {t.name for t in order[:count]}
    seen = [t for t in catalogue.tools if t.name not in held]
    unseen = [t for t in catalogue.tools if t.name in held]
    if not seen or (share > 0 and not unseen):
        raise ValueError(f"held_out_share={share} over {len(order)} tools leaves "
                         f"{len(seen)} seen and {len(unseen)} held-out tools")
    return seen, unseen


def split_sizes(config: GenerationConfig) -> dict[str, int]:
    """Rows per split: test splits first, the rest over phases, then train/validation.

    Raises:
        ValueError: A split would get no rows (an empty split breaks training, evaluation and
            ZenML's dataset materializer), naming the split and the settings to raise.
    """
    sizes = {name: round(config.examples * share) for name, share in config.test_shares.items()}
    training = config.examples - sum(sizes.values())
    for phase in PHASES:
        rows = round(training * config.phase_shares[phase])
        validation = round(rows * config.validation_share)
        sizes[f"{phase}_train"] = rows - validation
        sizes[f"{phase}_validation"] = validation
    empty = [name for name, rows in sizes.items() if rows < 1]
    if empty:
        raise ValueError(
            f"generation: examples={config.examples} leaves split(s) {', '.join(empty)} empty "
            f"(validation_share={config.validation_share}, test_shares={config.test_shares}); "
            "raise examples or those shares")
    return {name: sizes[name] for name in [*_training_order(), *TEST_SPLITS]}


def _training_order() -> list[str]:
    return [f"{p}_{s}" for p in PHASES for s in ("train", "validation")]
