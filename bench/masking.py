"""Masking cost on the prepared 270M model: setup, grammar compile, per-step cost, throughput.

Measures, for each hard-masking backend (xgrammar, llguidance, outlines) and for soft masking:
the one-off tokenizer setup, the compile time of the grammar for a 20-tool set (the first 20
tools of the bundled catalogue; cold, then cached), and the time per decode step of masked vs
unmasked generation at batch 1 (prefill apart: decode ms/step, the processor's own ms/step). Then
eval throughput (examples/s) at batch 1 vs batch 8 on BFCL simple_python questions, unmasked
and hard-masked. Writes a JSON file and prints it. Run under `nice` on a shared machine and say
so: wall-clock figures then depend on the other load (CPU seconds are printed beside them).

    .venv/bin/python bench/masking.py [--model DIR] [--steps 32] [--backends xgrammar ...]
        [--out bench/results/masking.json]

A backend left out of --backends, or whose compile fails, is recorded as such in the report
(outlines' index for the 20-tool regex may exceed its limits); the run goes on without it.
The load average before and after the run is recorded beside the figures.

Deliberately left out: engines other than transformers (vllm is not installed here; llama.cpp
has its own bench in the export area).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from transformers import LogitsProcessor, LogitsProcessorList

from toolmodal import bfcl
from toolmodal.chat import build_prompt
from toolmodal.engines import EngineConfig
from toolmodal.engines.transformers_engine import TransformersEngine
from toolmodal.evaluate import EvalConfig, bfcl_requests, system_prompt
from toolmodal.ingest import load_catalogue
from toolmodal.masking.hard import HardMasker

REPO = Path(__file__).resolve().parent.parent
MODEL = REPO / ".cache" / "models" / "gemma3-270m-toolmodal"
BFCL_FILE = REPO.parent / "shared" / "bfcl-sample" / "BFCL_v4_simple_python.json"
BACKENDS = ["xgrammar", "llguidance", "outlines"]


class Timed(LogitsProcessor):
    """Wraps a logits processor and accumulates the seconds spent in it."""

    def __init__(self, inner: LogitsProcessor | None) -> None:
        self.inner, self.seconds, self.calls, self.first = inner, 0.0, 0, 0.0

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        started = time.perf_counter()
        self.first = self.first or started  # the first call comes right after the prefill
        if self.inner is None:
            self.calls += 1
            return scores
        scores = self.inner(input_ids, scores)
        self.seconds += time.perf_counter() - started
        self.calls += 1
        return scores


def clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(start: tuple[float, float]) -> dict[str, float]:
    wall, cpu = clock()
    return {"wall_s": round(wall - start[0], 3), "cpu_s": round(cpu - start[1], 3)}


def compile_times(engine: TransformersEngine, tools: list, backends: list[str]) -> dict:
    """Tokenizer setup and cold/cached compile time per backend (others marked skipped)."""
    out: dict = {b: {"skipped": "not in --backends"} for b in BACKENDS if b not in backends}
    for backend in backends:
        start = clock()
        masker = HardMasker(engine.tokenizer, engine.model.config.vocab_size, engine.stop_ids,
                            backend)
        setup = since(start)
        start = clock()
        try:
            masker.compiled(tools)
        except (ValueError, RuntimeError) as exc:  # e.g. outlines' DFA exceeds its limits
            out[backend] = {"setup": setup, "error": f"{type(exc).__name__}: {exc}"}
            continue
        cold = since(start)
        start = clock()
        masker.compiled(tools)
        out[backend] = {"setup": setup, "compile_20_tools": cold, "cached": since(start)}
        out[backend]["masker"] = masker
    return out


def step_cost(engine: TransformersEngine, tools: list, maskers: dict, steps: int) -> dict:
    """ms per decode step (prefill excluded), unmasked / soft / each hard backend, batch 1."""
    messages = build_prompt(system_prompt(EvalConfig()), tools,
                            "Book a meeting with Ana tomorrow at 10 about the budget.")
    enc = engine.tokenizer(engine.tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True), return_tensors="pt",
        add_special_tokens=False)
    length = enc["input_ids"].shape[1]
    variants = {"none": lambda: None,
                "soft": lambda: engine.soft_masker.processor([tools], length)}
    variants |= {f"hard:{b}": (lambda b=b: maskers[b].processor([tools])) for b in maskers}
    out = {"prompt_tokens": length}
    for name, make in variants.items():
        inner = make()
        timed = Timed(inner)
        start = clock()
        with torch.inference_mode():
            ids = engine.model.generate(
                **enc, max_new_tokens=steps, do_sample=False,
                logits_processor=LogitsProcessorList([timed]),
                eos_token_id=engine.stop_ids, pad_token_id=engine.tokenizer.pad_token_id)
        ended = time.perf_counter()
        spent = since(start)
        n = ids.shape[1] - length
        out[name] = {"new_tokens": n, **spent,
                     "prefill_s": round(timed.first - start[0], 2),
                     "decode_ms_per_step": round(1000 * (ended - timed.first) / max(n - 1, 1), 1),
                     "processor_ms_per_step": round(1000 * timed.seconds / timed.calls, 2),
                     "text": engine.tokenizer.decode(ids[0, length:], skip_special_tokens=True)}
    return out


def throughput(engine: TransformersEngine, n: int, steps: int) -> dict:
    """Examples/s on the first n BFCL simple_python questions at batch 1 and batch n."""
    questions = bfcl.load_questions(BFCL_FILE)[:n]
    out = {}
    for mode in ("none", "hard"):
        requests = bfcl_requests(questions, BFCL_FILE.name, system_prompt(EvalConfig()), mode)
        for batch in (1, n):
            engine.config = engine.config.model_copy(update={"batch_size": batch,
                                                             "max_new_tokens": steps})
            start = clock()
            generations = engine.generate(requests)
            spent = since(start)
            out[f"{mode}:batch{batch}"] = {
                **spent, "examples_per_s": round(n / spent["wall_s"], 3),
                "tokens": sum(g.n_new_tokens for g in generations)}
    return out


def main() -> None:
    """Run all measurements and write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(MODEL))
    parser.add_argument("--steps", type=int, default=32, help="decode steps per measurement")
    parser.add_argument("--examples", type=int, default=8, help="examples for throughput")
    parser.add_argument("--backends", nargs="+", choices=BACKENDS, default=BACKENDS,
                        help="hard-masking backends to measure")
    parser.add_argument("--out", default=str(REPO / "bench" / "results" / "masking.json"))
    args = parser.parse_args()
    torch.manual_seed(0)
    start = clock()
    engine = TransformersEngine(Path(args.model), EngineConfig())
    report: dict = {"model": args.model, "load": since(start),
                    "threads": torch.get_num_threads(), "loadavg_start": os.getloadavg()}
    tools = list(load_catalogue([REPO / "data" / "tool_schemas"]).tools[:20])
    compiled = compile_times(engine, tools, args.backends)
    maskers = {b: compiled[b].pop("masker") for b in BACKENDS if "masker" in compiled[b]}
    report["compile"] = compiled
    report["step_cost"] = step_cost(engine, tools, maskers, args.steps)
    report["throughput"] = throughput(engine, args.examples, args.steps)
    report["loadavg_end"] = os.getloadavg()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1), encoding="utf-8")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
