"""Masked vs unmasked evaluation on the generated test sets and on BFCL files.

For every test set (the dataset's `test_*` splits and every BFCL question file given) and every
mask mode (none, soft, hard) the same engine generates once per example; each output is scored
with `toolmodal.scoring.score_example` (dataset rows) or BFCL's AST checker (`toolmodal.bfcl`).
The report holds, per test set and mode: tool accuracy, argument accuracy and score,
hallucination rate (calls to tools not offered), format compliance, exact match, irrelevance
accuracy, latency per example and tokens/s; the headline zero-shot (test_unseen), compositional
(test_chain) and irrelevance (test_irrelevance) accuracies; and the delta of each masked mode
against unmasked ("dependency on masking"). `write_report` adds the plots.

Deliberately left out: loading models (engines), plotting code (`toolmodal.evaluate_plots`),
and ZenML (the evaluation step calls `run_evaluation`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from toolmodal import bfcl
from toolmodal.calls import parse_output
from toolmodal.chat import build_prompt
from toolmodal.engines import (
    MASK_MODES,
    Engine,
    EngineConfig,
    EngineName,
    Generation,
    MaskMode,
    Request,
)
from toolmodal.ingest import tools_from_bfcl_record
from toolmodal.paths import project_path
from toolmodal.scoring import ExampleScore, calls_from_json, score_example, tools_from_json

DEFAULT_PROMPT = Path("configs/system_prompts/default.yaml")
TEST_SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]
HEADLINE = {"test_unseen": ("zero_shot_accuracy", "exact_match"),
            "test_chain": ("compositional_accuracy", "exact_match"),
            "test_irrelevance": ("irrelevance_accuracy", "irrelevance_accuracy")}
COMPARED = ["tool_accuracy", "argument_accuracy", "hallucination_rate", "format_compliance",
            "exact_match", "irrelevance_accuracy", "bfcl_accuracy"]


class EvalConfig(BaseModel):
    """Settings of one evaluation run (the ZenML step and the CLI both use it).

    Attributes:
        engine: "transformers", "vllm" or "llamacpp".
        engine_config: Generation budget, batch size and masking settings.
        mask_modes: Modes to run each test set under.
        test_splits: Dataset splits to evaluate (missing ones are an error).
        bfcl_files: BFCL question files; answers are read from `possible_answer/<same name>`
            beside each file (irrelevance files need none).
        limit: Evaluate only the first N examples of each test set (None: all).
        system_prompt_file: YAML prompt variant whose `text` is the system prompt for BFCL
            (relative paths are relative to the project root).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    engine: EngineName = "transformers"
    engine_config: EngineConfig = Field(default_factory=EngineConfig)
    mask_modes: list[MaskMode] = Field(default_factory=lambda: list(MASK_MODES))
    test_splits: list[str] = Field(default_factory=lambda: list(TEST_SPLITS))
    bfcl_files: list[Path] = Field(default_factory=list)
    limit: int | None = None
    system_prompt_file: Path = DEFAULT_PROMPT


def system_prompt(config: EvalConfig) -> str:
    """The system prompt text of the configured variant."""
    text = project_path(config.system_prompt_file).read_text(encoding="utf-8")
    return yaml.safe_load(text)["text"]


def aggregate(scores: list[ExampleScore], seconds: list[float],
              tokens: list[int]) -> dict[str, float]:
    """Mean metrics over scored examples (rates in [0, 1]; irrelevance only when defined)."""
    n = max(len(scores), 1)
    no_call = [s for s in scores if not s.expected]
    metrics = {
        "n": len(scores),
        "tool_accuracy": sum(s.tool_correct for s in scores) / n,
        "argument_accuracy": sum(s.args_correct for s in scores) / n,
        "argument_score": sum(s.args_fraction for s in scores) / n,
        "hallucination_rate": sum(s.hallucinated for s in scores) / n,
        "format_compliance": sum(s.format_ok for s in scores) / n,
        "schema_validity": sum(s.schema_ok for s in scores) / n,
        "exact_match": sum(s.exact for s in scores) / n,
        "latency_s": sum(seconds) / n,
        "tokens_per_s": sum(tokens) / sum(seconds) if sum(seconds) else 0.0,
    }
    if no_call:  # only where some example expects no call (absent, not NaN: strict JSON)
        metrics["irrelevance_accuracy"] = sum(not s.predicted for s in no_call) / len(no_call)
    return metrics


def evaluate_rows(engine: Engine, rows: list[dict], mode: MaskMode) -> dict:
    """Generate and score dataset rows (contract columns `prompt`, `tools`, `expected_calls`)."""
    requests = [Request(row["prompt"], list(tools_from_json(row["tools"])), mode)
                for row in rows]
    generations = engine.generate(requests)
    scores = [score_example(g.text, list(r.tools), list(calls_from_json(row["expected_calls"])))
              for g, r, row in zip(generations, requests, rows, strict=True)]
    metrics = aggregate(scores, [g.seconds for g in generations],
                        [g.n_new_tokens for g in generations])
    examples = [{"id": row["id"], "predicted": list(s.predicted), "expected": list(s.expected),
                 "exact": s.exact, "raw": g.text}
                for row, s, g in zip(rows, scores, generations, strict=True)]
    return {"metrics": metrics, "examples": examples}


def bfcl_requests(questions: list[bfcl.Question], source: str, prompt: str,
                  mode: MaskMode) -> list[Request]:
    """Chat requests for BFCL questions: BFCL's own system turn (if any) joins our prompt."""
    requests = []
    for q in questions:
        tools = tools_from_bfcl_record({"id": q.id, "function": q.functions}, f"{source}:{q.id}")
        system = [m["content"] for m in q.messages if m["role"] == "system"]
        users = [m["content"] for m in q.messages if m["role"] == "user"]
        messages = build_prompt("\n\n".join([prompt, *system]), tools, users[-1])
        requests.append(Request(messages, tools, mode))
    return requests


def predict_bfcl(engine: Engine, questions: list[bfcl.Question], source: str, prompt: str,
                 mode: MaskMode) -> tuple[list[dict], list[Generation], list[Request]]:
    """Prediction lines `{"id", "calls", "raw"}`, with the generations and requests behind them."""
    requests = bfcl_requests(questions, source, prompt, mode)
    generations = engine.generate(requests)
    lines = [{"id": q.id,
              "calls": [{"name": c.name, "arguments": c.arguments}
                        for c in parse_output(g.text).calls],
              "raw": g.text}
             for q, g in zip(questions, generations, strict=True)]
    return lines, generations, requests


def evaluate_bfcl(engine: Engine, question_file: Path, mode: MaskMode, prompt: str,
                  limit: int | None) -> dict:
    """BFCL accuracy (AST checker) plus our format/hallucination metrics for one file."""
    questions = bfcl.load_questions(question_file)[:limit]
    answer_file = question_file.parent / "possible_answer" / question_file.name
    answers = bfcl.load_answers(answer_file) if answer_file.exists() else {}
    lines, generations, requests = predict_bfcl(engine, questions, question_file.name, prompt,
                                                mode)
    result = bfcl.score_questions(questions, answers, {p["id"]: p["calls"] for p in lines})
    scores = [score_example(g.text, list(r.tools), []) for g, r in
              zip(generations, requests, strict=True)]
    metrics = aggregate(scores, [g.seconds for g in generations],
                        [g.n_new_tokens for g in generations])
    metrics = {k: v for k, v in metrics.items()
               if k in ("n", "hallucination_rate", "format_compliance", "schema_validity",
                        "latency_s", "tokens_per_s")}
    metrics["bfcl_accuracy"] = result["accuracy"]
    examples = [{"id": p["id"], "valid": result["results"][p["id"]]["valid"],
                 "error_type": result["results"][p["id"]]["error_type"], "raw": p["raw"]}
                for p in lines]
    return {"metrics": metrics, "examples": examples}


def deltas(by_mode: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Masked minus unmasked for each compared metric ("dependency on masking")."""
    if "none" not in by_mode:
        return {}
    base = by_mode["none"]["metrics"]
    return {mode: {k: result["metrics"][k] - base[k] for k in COMPARED
                   if k in base and k in result["metrics"]}
            for mode, result in by_mode.items() if mode != "none"}


def evaluate(engine: Engine, config: EvalConfig, splits: dict[str, list[dict]],
             log: Callable[[str], None] = print) -> dict:
    """Run every test set under every mask mode; return the report dictionary.

    Args:
        engine: A loaded engine.
        config: Evaluation settings (modes, BFCL files, limit).
        splits: Test split name -> rows (dataset contract); must hold `config.test_splits`.
        log: Progress sink (one line per test set and mode).
    """
    report: dict = {"config": json.loads(config.model_dump_json()), "test_sets": {}}
    prompt = system_prompt(config)
    sets: dict[str, Callable[[MaskMode], dict]] = {}
    for name in config.test_splits:
        if name not in splits:
            raise KeyError(f"test split {name!r} not in dataset (has {sorted(splits)})")
        rows = splits[name][:config.limit]
        sets[name] = lambda mode, rows=rows: evaluate_rows(engine, rows, mode)
    for path in config.bfcl_files:
        sets[f"bfcl:{Path(path).stem}"] = (
            lambda mode, path=Path(path): evaluate_bfcl(engine, path, mode, prompt, config.limit))
    for name, run in sets.items():
        by_mode = {}
        for mode in config.mask_modes:
            by_mode[mode] = run(mode)
            log(f"{name} [{mode}] " + json.dumps({k: round(v, 3) for k, v in
                                                  by_mode[mode]["metrics"].items()}))
        report["test_sets"][name] = {"modes": by_mode, "delta_vs_unmasked": deltas(by_mode)}
    report["headline"] = headline(report["test_sets"])
    return report


def headline(test_sets: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Zero-shot, compositional and irrelevance accuracy per mode, where those sets ran."""
    out: dict[str, dict[str, float]] = {}
    for split, (label, metric) in HEADLINE.items():
        if split in test_sets:
            out[label] = {mode: result["metrics"][metric]
                          for mode, result in test_sets[split]["modes"].items()}
    return out


def run_evaluation(model: Path, config: EvalConfig, splits: dict[str, list[dict]],
                   out_dir: Path) -> dict:
    """Load the engine, evaluate, write `report.json` and the plots into `out_dir`."""
    from toolmodal.engines import load_engine
    from toolmodal.evaluate_plots import write_plots

    engine = load_engine(config.engine, Path(model), config.engine_config)
    report = evaluate(engine, config, splits)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=1, default=str),
                                         encoding="utf-8")
    report["plots"] = [str(p) for p in write_plots(report, out_dir)]
    return report
