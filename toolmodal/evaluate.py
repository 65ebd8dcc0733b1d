"""Masked vs unmasked evaluation on the generated test sets and on BFCL files.

For every test set (the dataset's `test_*` splits and every BFCL question file given) and every
mask mode (none, soft, hard) the same engine generates once per example; each output is scored
with `toolmodal.scoring.score_example` (dataset rows) or BFCL's AST checker (`toolmodal.bfcl`).
Metrics are per test set, never averaged across sets (`toolmodal.eval_metrics`): on rows that
need calls tool accuracy, exact match, per-argument accuracy, hallucination rate, format
compliance and "stopped after its calls"; on rows where nothing fits the no-call rate; each
with its count and 95% Wilson interval, plus per-kind figures (parallel, multiple) where a set
mixes kinds. Chains are scored per teacher-forced step and end to end (`chain_end_to_end`: the
model's own calls are executed by the mock executor and its results fed back; a chain is right
only if every step is). The headline (what promotion compares) is the mean of seen, unseen and
chain-end-to-end exact match and irrelevance accuracy, so refusing everything scores 0.25.
`write_report` adds the plots.

Deliberately left out: loading models (engines), plotting code (`toolmodal.evaluate_plots`),
and ZenML (the evaluation step calls `run_evaluation`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field

from toolmodal import bfcl
from toolmodal.calls import ToolCall, parse_output
from toolmodal.chat import build_prompt
from toolmodal.datagen.executor import execute, result_message
from toolmodal.engines import (
    MASK_MODES,
    Engine,
    EngineConfig,
    EngineName,
    Generation,
    MaskMode,
    Request,
)
from toolmodal.eval_metrics import kind_stats, outcome, proportion, set_metrics
from toolmodal.ingest import tools_from_bfcl_record
from toolmodal.paths import project_path
from toolmodal.scoring import calls_from_json, score_example, tools_from_json

DEFAULT_PROMPT = Path("configs/system_prompts/default.yaml")
TEST_SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]
# headline component -> (test set, metric); the headline score is their mean
HEADLINE = {"seen_exact_match": ("test_seen", "exact_match"),
            "unseen_exact_match": ("test_unseen", "exact_match"),
            "chain_end_to_end": ("test_chain", "chain_end_to_end"),
            "irrelevance_accuracy": ("test_irrelevance", "irrelevance_accuracy")}
COMPARED = ["tool_accuracy", "argument_accuracy", "hallucination_rate", "format_compliance",
            "exact_match", "stopped_after_calls", "irrelevance_accuracy", "chain_end_to_end",
            "bfcl_accuracy"]


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


def evaluate_rows(engine: Engine, rows: list[dict], mode: MaskMode) -> dict:
    """Generate and score dataset rows (contract columns `prompt`, `tools`, `expected_calls`).

    Returns:
        `metrics` (flat values), `stats` (value, k, n, Wilson interval per metric), `by_kind`
        (stats per row kind when the set mixes kinds) and `examples` (one record per row).
    """
    requests = [Request(row["prompt"], list(tools_from_json(row["tools"])), mode)
                for row in rows]
    started = time.perf_counter()
    generations = engine.generate(requests)
    wall_s = time.perf_counter() - started
    scores = [score_example(g.text, list(r.tools), list(calls_from_json(row["expected_calls"])),
                            g.ended)
              for g, r, row in zip(generations, requests, rows, strict=True)]
    metrics, stats = set_metrics(scores, [g.seconds for g in generations],
                                 [g.n_new_tokens for g in generations],
                                 [g.ended for g in generations], wall_s)
    examples = [{"id": row["id"], "predicted": list(s.predicted), "expected": list(s.expected),
                 "exact": s.exact, "stopped": s.stopped, "outcome": outcome(s), "raw": g.text}
                for row, s, g in zip(rows, scores, generations, strict=True)]
    return {"metrics": metrics, "stats": stats, "examples": examples,
            "by_kind": kind_stats(scores, [row.get("kind", "") for row in rows])}


def chain_step(row: dict) -> int:
    """Which step of its chain a row asks for: the number of assistant turns in its prompt."""
    return sum(m["role"] == "assistant" for m in row["prompt"])


def chain_episodes(rows: list[dict]) -> list[list[dict]]:
    """Rows grouped into chains, in step order.

    A chain's rows are consecutive, share the messages up to the first user turn, and ask for
    steps 0, 1, 2...; rows whose chain does not start at step 0 (cut by a limit) are left out.
    """
    episodes: list[list[dict]] = []
    for row in rows:
        step = chain_step(row)
        if step == 0:
            episodes.append([row])
        elif (episodes and chain_step(episodes[-1][-1]) == step - 1
              and _opening(episodes[-1][0]) == _opening(row)):
            episodes[-1].append(row)
    return episodes


def _opening(row: dict) -> list[dict]:
    """The messages up to and including the first user turn."""
    first_user = next(i for i, m in enumerate(row["prompt"]) if m["role"] == "user")
    return row["prompt"][:first_user + 1]


def executed_history(text: str, expected: list[ToolCall], tools: list) -> list[dict]:
    """The model's turn and the mock executor's result of each of its (right) calls.

    The calls are executed with their arguments in the expected call's order: the mock seeds
    its result on the call's JSON text, and argument order carries no meaning.
    """
    history = [{"role": "assistant", "content": text}]
    for call in parse_output(text).calls:
        want = next(c for c in expected if c.name == call.name)
        ordered = ToolCall(call.name, {k: call.arguments[k] for k in want.arguments})
        history.append({"role": "tool", "content": result_message(execute(ordered, tools))})
    return history


def evaluate_chains(engine: Engine, rows: list[dict], mode: MaskMode) -> dict:
    """End-to-end chains: each step is generated after the model's own earlier calls and their
    executed results; a chain is right only if every step is an exact match.

    Returns:
        `stats` (chain_end_to_end with its interval, over chains) and `chains` (per chain:
        the first row's id, steps, steps right before the first miss).
    """
    episodes = chain_episodes(rows)
    messages = [list(ep[0]["prompt"]) for ep in episodes]
    reached = [0] * len(episodes)
    for step in range(max((len(ep) for ep in episodes), default=0)):
        active = [k for k, ep in enumerate(episodes) if len(ep) > step and reached[k] == step]
        requests = [Request(messages[k], list(tools_from_json(episodes[k][step]["tools"])),
                            mode) for k in active]
        for k, request, g in zip(active, requests, engine.generate(requests), strict=True):
            expected = list(calls_from_json(episodes[k][step]["expected_calls"]))
            if score_example(g.text, list(request.tools), expected, g.ended).exact:
                reached[k] += 1
                messages[k] = messages[k] + executed_history(g.text, expected,
                                                             list(request.tools))
    right = sum(r == len(ep) for r, ep in zip(reached, episodes, strict=True))
    return {"stats": {"chain_end_to_end": proportion(right, len(episodes))},
            "chains": [{"id": ep[0]["id"], "steps": len(ep), "right_steps": r}
                       for ep, r in zip(episodes, reached, strict=True)]}


def evaluate_set(engine: Engine, name: str, rows: list[dict], mode: MaskMode) -> dict:
    """`evaluate_rows`, plus the end-to-end chain figure on the chain set."""
    result = evaluate_rows(engine, rows, mode)
    if name.startswith("test_chain"):
        chains = evaluate_chains(engine, rows, mode)
        result["stats"] |= chains["stats"]
        result["metrics"]["chain_end_to_end"] = chains["stats"]["chain_end_to_end"]["value"]
        result["chains"] = chains["chains"]
    return result


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


def repeats_a_call(calls: list[dict]) -> bool:
    """Whether a prediction makes the same call (name and arguments) twice: never right in BFCL,
    whose parallel answers differ in their arguments, and the failure of a model that does not
    stop after its call."""
    keys = [json.dumps([c["name"], c["arguments"]], sort_keys=True, default=str) for c in calls]
    return len(set(keys)) < len(keys)


def evaluate_bfcl(engine: Engine, question_file: Path, mode: MaskMode, prompt: str,
                  limit: int | None) -> dict:
    """BFCL accuracy (AST checker) plus our format/hallucination metrics for one file."""
    questions = bfcl.load_questions(question_file)[:limit]
    answer_file = question_file.parent / "possible_answer" / question_file.name
    answers = bfcl.load_answers(answer_file) if answer_file.exists() else {}
    lines, generations, requests = predict_bfcl(engine, questions, question_file.name, prompt,
                                                mode)
    result = bfcl.score_questions(questions, answers, {p["id"]: p["calls"] for p in lines})
    scores = [score_example(g.text, list(r.tools), [], g.ended) for g, r in
              zip(generations, requests, strict=True)]
    hallucinated = sum(s.hallucinated for s in scores)
    formatted = sum(s.format_ok for s in scores)
    valid = sum(result["results"][p["id"]]["valid"] for p in lines)
    repeated = sum(repeats_a_call(p["calls"]) for p in lines)
    stats = {"bfcl_accuracy": proportion(valid, len(lines)),
             "hallucination_rate": proportion(hallucinated, len(scores)),
             "format_compliance": proportion(formatted, len(scores)),
             "repeated_call_rate": proportion(repeated, len(lines))}
    seconds = [g.seconds for g in generations]
    metrics = {"n": len(scores), **{k: v["value"] for k, v in stats.items()},
               "latency_s": sum(seconds) / len(seconds) if seconds else 0.0}
    metrics["bfcl_accuracy"] = result["accuracy"]
    examples = [{"id": p["id"], "valid": result["results"][p["id"]]["valid"],
                 "error_type": result["results"][p["id"]]["error_type"], "raw": p["raw"]}
                for p in lines]
    return {"metrics": metrics, "stats": stats, "examples": examples}


def deltas(by_mode: dict[str, dict]) -> dict[str, dict[str, float]]:
    """Masked minus unmasked for each compared metric ("dependency on masking")."""
    if "none" not in by_mode:
        return {}
    base = by_mode["none"]["metrics"]
    return {mode: {k: result["metrics"][k] - base[k] for k in COMPARED
                   if base.get(k) is not None and result["metrics"].get(k) is not None}
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
        sets[name] = lambda mode, name=name, rows=rows: evaluate_set(engine, name, rows, mode)
    for path in config.bfcl_files:
        sets[f"bfcl:{Path(path).stem}"] = (
            lambda mode, path=Path(path): evaluate_bfcl(engine, path, mode, prompt, config.limit))
    for name, run in sets.items():
        by_mode = {}
        for mode in config.mask_modes:
            by_mode[mode] = run(mode)
            log(f"{name} [{mode}] " + json.dumps({k: round(v, 3) for k, v in
                                                  by_mode[mode]["metrics"].items()
                                                  if v is not None}))
        report["test_sets"][name] = {"modes": by_mode, "delta_vs_unmasked": deltas(by_mode)}
    report["headline"] = headline(report["test_sets"])
    return report


def headline(test_sets: dict[str, dict]) -> dict[str, dict]:
    """Headline components per mode (value, k, n, interval) and `headline_score`, their mean.

    Only the components whose set ran count; refusing everything scores at most 1 / (number of
    components), so it cannot beat a model that calls correctly half the time.
    """
    out: dict[str, dict] = {}
    for label, (split, metric) in HEADLINE.items():
        if split in test_sets:
            out[label] = {mode: result["stats"][metric]
                          for mode, result in test_sets[split]["modes"].items()
                          if metric in result["stats"]}
    modes = {mode for by_mode in out.values() for mode in by_mode}
    out["headline_score"] = {
        mode: {"value": _mean([by_mode[mode]["value"] for by_mode in out.values()
                               if mode in by_mode])} for mode in sorted(modes)}
    return out


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


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
