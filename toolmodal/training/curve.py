"""Learning curve of an SFT stage: teacher-forced first-call accuracy vs examples seen.

The cheap proxy for "calls the right tool": with the reference completion fed in (teacher
forcing), a validation row counts as right when the greedy (argmax) prediction equals the
reference at every supervised position from the start of the completion to the end of the first
tool name; a row without a call (irrelevance) counts as right when its first completion token is
predicted (so refusing versus calling is what it measures there). One forward pass per batch, the
output layer only at those positions. The points are logged as metrics during training
(`curve_first_call_accuracy`, `examples_seen`, `curve_rows`); `write_curve` turns them into
`learning_curve.json` and `learning_curve.png` in the stage's folder.
Deliberately left out: free generation (the evaluator's job) and interval estimates.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from toolmodal.training.loss import causal_lm_of, hidden_states, selected_logits
from toolmodal.training.masks import IGNORE, NAME, EncodedExample
from toolmodal.training.metrics import read_metrics
from toolmodal.training.packing import collate

CURVE_JSON, CURVE_PNG = "learning_curve.json", "learning_curve.png"


def decision_mask(targets: torch.Tensor, kinds: torch.Tensor) -> torch.Tensor:
    """Positions checked per row: first supervised target to the end of the first name run
    (or the first supervised target alone when the row has no tool name)."""
    mask = torch.zeros_like(targets, dtype=torch.bool)
    for row in range(targets.shape[0]):
        supervised = (targets[row] != IGNORE).nonzero().flatten().tolist()
        if not supervised:
            continue
        names = (kinds[row] == NAME).nonzero().flatten().tolist()
        end = supervised[0]
        if names:
            end = names[0]
            while end + 1 < targets.shape[1] and kinds[row, end + 1] == NAME:
                end += 1
        mask[row, supervised[0]:end + 1] = targets[row, supervised[0]:end + 1] != IGNORE
    return mask


@torch.no_grad()
def first_call_accuracy(model, examples: list[EncodedExample], pad_id: int,
                        batch_size: int) -> float:
    """Share of `examples` whose completion start and first tool name are all argmax-right."""
    was_training = model.training
    model.eval()
    causal_lm = causal_lm_of(model)
    correct = 0
    for i in range(0, len(examples), batch_size):
        batch = collate(examples[i:i + batch_size], pad_id)
        mask = decision_mask(batch["targets"], batch["target_kinds"])
        hidden = hidden_states(causal_lm, batch)
        predicted = selected_logits(causal_lm, hidden, mask.to(hidden.device)).argmax(-1).cpu()
        hits = torch.zeros_like(batch["targets"], dtype=torch.bool)
        hits[mask] = predicted == batch["targets"][mask]
        correct += int(((hits | ~mask).all(dim=1) & mask.any(dim=1)).sum())
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
