"""`toolmodal predict` and `toolmodal eval`: BFCL predictions and their AST scoring.

`predict` writes one JSON line per question, `{"id", "calls": [{"name", "arguments"}], "raw"}`
(a failed parse gives `"calls": []`, `raw` keeps the text). `eval` scores a predictions file
with BFCL's AST rules and prints the accuracy as its last line.

Deliberately left out: the dataset test sets (the evaluation pipeline step covers those).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from toolmodal import bfcl


def predict(args: argparse.Namespace) -> int:
    """Generate calls for the questions of a BFCL file; returns the exit code."""
    from toolmodal.engines import EngineConfig, load_engine
    from toolmodal.evaluate import EvalConfig, predict_bfcl, system_prompt

    questions = bfcl.load_questions(Path(args.bfcl))[:args.limit]
    config = EngineConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                          hard_backend=args.backend, lora=args.lora,
                          call_threshold=args.call_threshold)
    engine = load_engine(args.engine, Path(args.model), config)
    started = time.perf_counter()
    lines, generations, _ = predict_bfcl(engine, questions, Path(args.bfcl).name,
                                         system_prompt(EvalConfig()), args.mask)
    seconds = time.perf_counter() - started
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines),
                   encoding="utf-8")
    tokens = sum(g.n_new_tokens for g in generations)
    print(f"{len(lines)} predictions -> {out} ({seconds:.1f} s, "
          f"{tokens / seconds:.1f} tokens/s, mask={args.mask})")
    return 0


def score(args: argparse.Namespace) -> int:
    """Score predictions with BFCL's AST checker; prints accuracy last; returns the exit code."""
    questions = bfcl.load_questions(Path(args.bfcl))
    answers = bfcl.load_answers(Path(args.answers)) if args.answers else {}
    predictions = bfcl.predictions_by_id(Path(args.pred))
    unknown = sorted(set(predictions) - {q.id for q in questions})
    if unknown:
        raise ValueError(f"{args.pred}: ids not in {args.bfcl}: {unknown[:5]}")
    scored = [q for q in questions if q.id in predictions]
    if len(scored) < len(questions):
        print(f"{len(questions) - len(scored)} of {len(questions)} questions have no "
              "prediction and are not scored")
    result = bfcl.score_questions(scored, answers, predictions)
    for qid, verdict in result["results"].items():
        if not verdict["valid"]:
            print(f"FAIL {qid}: {verdict['error_type']}: {verdict['error'][:120]}")
    print(f"accuracy: {result['accuracy']:.4f} ({result['correct']}/{result['total']})")
    return 0
