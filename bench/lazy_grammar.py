"""Hard-masked decoding on llama.cpp: the grammar sampler over the whole vocabulary (the former
path) vs the lazy grammar (greedy choice tested first), same rows, one loaded model, one run.

Takes the first `--rows`/4 rows of each test split of a saved dataset (chains and irrelevance in
the mix) and, with `--bfcl-file`, the first `--rows` questions of a BFCL file (larger grammars:
free-form strings, several tools), then completes each hard-masked both ways in the same order
(sorted by prompt, as the engine runs them, so the KV cache reuse is the same). Prints rows/min
of each path, the speed-up, generated tokens, how many outputs are identical, and rows/min of
the same rows unmasked (what masking costs at all). Usage:

    .venv/bin/python bench/lazy_grammar.py --model <export>/model-q4_k_m.gguf \\
        --lora <export>/model-q4_k_m.lora.gguf --dataset <saved dataset> [--rows 40] \\
        [--bfcl-file ../shared/bfcl-sample/BFCL_v4_simple_python.json] [--max-new-tokens 160]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from datasets import load_from_disk  # noqa: E402

from toolmodal import bfcl  # noqa: E402
from toolmodal.engines import EngineConfig, Request  # noqa: E402
from toolmodal.engines.llamacpp import LlamaCppEngine  # noqa: E402
from toolmodal.evaluate import EvalConfig, bfcl_requests, system_prompt  # noqa: E402
from toolmodal.masking import grammar  # noqa: E402
from toolmodal.scoring import tools_from_json  # noqa: E402

SPLITS = ["test_seen", "test_unseen", "test_chain", "test_irrelevance"]


def dataset_requests(path: Path, n: int) -> list[Request]:
    """Hard-masked requests of the first n/4 rows of each test split."""
    dataset = load_from_disk(str(path))
    return [Request(row["prompt"], list(tools_from_json(row["tools"])), "hard")
            for split in SPLITS for row in dataset[split].to_list()[:n // len(SPLITS)]]


def former_path(engine: LlamaCppEngine, requests: list[Request]) -> list[str]:
    """Texts from llama-cpp-python's grammar sampler (every token checked at every step)."""
    grammars: dict[str, object] = {}
    texts = []
    for request in requests:
        key = grammar.tool_set_key(request.tools)
        if key not in grammars:
            grammars[key] = engine.llama_cpp.LlamaGrammar.from_string(
                engine.gbnf(request.tools), verbose=False)
        new: list[int] = []
        for token in engine.llm.generate(engine.prompt_tokens(request.messages), temp=0.0,
                                         top_k=1, repeat_penalty=1.0, grammar=grammars[key]):
            if engine.llama_cpp.llama_vocab_is_eog(engine.llm._model.vocab, token) \
                    or len(new) >= engine.config.max_new_tokens:
                break
            new.append(token)
        texts.append(engine.llm.detokenize(new, special=False).decode("utf-8", "replace"))
    return texts


def compare(engine: LlamaCppEngine, name: str, requests: list[Request]) -> dict:
    """Both paths on the same requests, in the engine's order (sorted by prompt tokens)."""
    order = sorted(requests, key=lambda r: engine.prompt_tokens(r.messages))
    engine.generate(order[:1])  # warm-up: grammar build and first allocations count in neither
    # each path starts from an empty KV cache: the first prompt's prefix reuse (and with it
    # the float rounding of its logits) is then the same for all three
    engine.llm.reset()
    started = time.perf_counter()
    old = former_path(engine, order)
    old_s = time.perf_counter() - started
    engine.llm.reset()
    started = time.perf_counter()
    new = engine.generate(order)
    new_s = time.perf_counter() - started
    engine.llm.reset()
    started = time.perf_counter()
    engine.generate([replace(r, mask="none") for r in order])
    none_s = time.perf_counter() - started
    tokens = sum(g.n_new_tokens for g in new)
    return {"rows": name, "n": len(order), "old_rows_per_min": round(60 * len(order) / old_s, 1),
            "new_rows_per_min": round(60 * len(order) / new_s, 1),
            "unmasked_rows_per_min": round(60 * len(order) / none_s, 1),
            "speedup": round(old_s / new_s, 2), "new_generated_tokens": tokens,
            "new_ms_per_token": round(1000 * new_s / max(tokens, 1), 1),
            "identical_outputs": sum(a == g.text for a, g in zip(old, new, strict=True))}


def main() -> None:
    """Measure both paths on each row set and print one JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--lora", type=Path, default=None)
    parser.add_argument("--dataset", type=Path, required=True)
    parser.add_argument("--bfcl-file", type=Path, default=None)
    parser.add_argument("--rows", type=int, default=40)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    args = parser.parse_args()
    engine = LlamaCppEngine(args.model, EngineConfig(max_new_tokens=args.max_new_tokens,
                                                     lora=args.lora))
    results = [compare(engine, "dataset test splits", dataset_requests(args.dataset, args.rows))]
    if args.bfcl_file:
        questions = bfcl.load_questions(args.bfcl_file)[:args.rows]
        prompt = system_prompt(EvalConfig(test_splits=[]))
        results.append(compare(engine, args.bfcl_file.stem,
                               bfcl_requests(questions, args.bfcl_file.stem, prompt, "hard")))
    print(json.dumps({"model": str(args.model), "lora": str(args.lora),
                      "max_new_tokens": args.max_new_tokens, "threads": os.cpu_count(),
                      "results": results}, indent=1))


if __name__ == "__main__":
    main()
