"""Learning curve of an SFT stage: teacher-forced first-call accuracy vs examples seen.

The cheap proxy for "calls the right tool": with the reference completion fed in (teacher
forcing), a validation row counts as right when the greedy (argmax) prediction equals the
reference at every supervised position from the start of the completion to the end of the first
tool name; a row without a call (irrelevance) counts as right when its first completion token is
predicted (so refusing versus calling is what it measures there). One forward pass per batch, the
output layer only at those positions; with `packed`, one per group of rows sharing a tool block
(the shared prefix computed once, as in training: the same logits at fp32 tolerance). The points
are logged as metrics during training (`curve_first_call_accuracy`, `examples_seen`,
`curve_rows`); `write_curve` turns them into `learning_curve.json` and `learning_curve.png` in
the stage's folder.
Deliberately left out: free generation (the evaluator's job) and interval estimates.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from toolmodal.training.loss import causal_lm_of, hidden_states, selected_logits
from toolmodal.training.masks import IGNORE, NAME, EncodedExample
from toolmodal.training.metrics import read_metrics
from toolmodal.training.packing import PAD_BRANCH, collate, collate_packed, pack_batch

CURVE_JSON, CURVE_PNG = "learning_curve.json", "learning_curve.png"


def example_spans(batch: dict[str, torch.Tensor]) -> list[tuple[int, int, int]]:
    """(row, start, end) of each example in a batch: a padded row whole, or each branch of a
    packed row (branches are contiguous; the shared prefix, branch 0, belongs to none)."""
    rows, width = batch["targets"].shape
    if "branch" not in batch:
        return [(row, 0, width) for row in range(rows)]
    spans = []
    for row, branches in enumerate(batch["branch"].tolist()):
        for branch in sorted(set(branches) - {0, PAD_BRANCH}):
            start = branches.index(branch)
            spans.append((row, start, start + branches.count(branch)))
    return spans


def decision_mask(targets: torch.Tensor, kinds: torch.Tensor,
                  spans: list[tuple[int, int, int]] | None = None) -> torch.Tensor:
    """Positions checked per example (`spans`, default: each row whole): its first supervised
    target to the end of its first name run (or the first supervised target alone when the
    example has no tool name)."""
    mask = torch.zeros_like(targets, dtype=torch.bool)
    for row, start, end in spans or [(r, 0, targets.shape[1]) for r in range(targets.shape[0])]:
        supervised = (targets[row, start:end] != IGNORE).nonzero().flatten().tolist()
        if not supervised:
            continue
        first = last = start + supervised[0]
        names = (kinds[row, start:end] == NAME).nonzero().flatten().tolist()
        if names:
            last = start + names[0]
            while last + 1 < end and kinds[row, last + 1] == NAME:
                last += 1
        mask[row, first:last + 1] = targets[row, first:last + 1] != IGNORE
    return mask


def eval_batches(examples: list[EncodedExample], pad_id: int, batch_size: int,
                 packed: bool) -> list[dict[str, torch.Tensor]]:
    """Forward batches over `examples`: padded rows `batch_size` at a time, or with `packed`
    one packed sequence per group (`EncodedExample.group`), each its own forward."""
    if packed:
        return [collate_packed([sequence], pad_id)
                for sequence in pack_batch(examples, [e.group for e in examples])]
    return [collate(examples[i:i + batch_size], pad_id)
            for i in range(0, len(examples), batch_size)]


def decision_logits(causal_lm, batch: dict[str, torch.Tensor]
                    ) -> tuple[torch.Tensor, torch.Tensor, list[tuple[int, int, int]]]:
    """Logits at the checked positions (`decision_mask`, row-major order), the mask and the
    batch's example spans."""
    spans = example_spans(batch)
    mask = decision_mask(batch["targets"], batch["target_kinds"], spans)
    hidden = hidden_states(causal_lm, batch)
    return selected_logits(causal_lm, hidden, mask.to(hidden.device)).cpu(), mask, spans


@torch.no_grad()
def first_call_accuracy(model, examples: list[EncodedExample], pad_id: int,
                        batch_size: int, packed: bool = False) -> float:
    """Share of `examples` whose completion start and first tool name are all argmax-right."""
    was_training = model.training
    model.eval()
    correct = 0
    for batch in eval_batches(examples, pad_id, batch_size, packed):
        logits, mask, spans = decision_logits(causal_lm_of(model), batch)
        hits = torch.zeros_like(batch["targets"], dtype=torch.bool)
        hits[mask] = logits.argmax(-1) == batch["targets"][mask]
        correct += sum(1 for row, start, end in spans if mask[row, start:end].any()
                       and (hits[row, start:end] | ~mask[row, start:end]).all())
    model.train(was_training)
    return correct / max(len(examples), 1)


def curve_points(metrics_file: Path) -> list[dict]:
    """The learning-curve points logged in a stage's metrics file, in step order."""
    points = {row["step"]: {"step": row["step"], "examples_seen": row["examples_seen"],
                            "first_call_accuracy": row["curve_first_call_accuracy"],
                            "rows": row["curve_rows"]}
              for row in read_metrics(metrics_file) if "curve_first_call_accuracy" in row}
    return [points[step] for step in sorted(points)]


def write_curve(out: Path, metrics_file: Path, stage: str) -> list[dict]:
    """Write `learning_curve.json` and `.png` into `out` from the logged points; returns them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve_points(metrics_file)
    (Path(out) / CURVE_JSON).write_text(json.dumps({"stage": stage, "points": points}, indent=2))
    figure, axis = plt.subplots(figsize=(5, 3.2))
    axis.plot([p["examples_seen"] for p in points],
              [p["first_call_accuracy"] for p in points], marker="o")
    rows = points[0]["rows"] if points else 0
    axis.set(xlabel="training examples seen", ylim=(-0.02, 1.02),
             ylabel="first-call accuracy (teacher-forced)",
             title=f"{stage}: {rows} validation rows")
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(Path(out) / CURVE_PNG, dpi=100)
    plt.close(figure)
    return points
