"""Run the GPU paths once on a CUDA machine and print what they did (not a test: CI has no GPU).

Checks, each reported as OK / FAILED with its figures, none stopping the others:
1. unsloth SFT through `toolmodal.training.backend.load_for_training` + `train_sft` on the tiny
   fixture (LoRA and full fine-tune): loss logged, loss down, trainable parameters changed;
2. the same on a randomly initialised Gemma 3 270M (the real architecture from a config.json;
   no weights can reach the GPU machine): wall time and supervised tokens/s per step, full
   fine-tune and LoRA;
3. the AWQ and GPTQ int4 export (`toolmodal.export.gpu_quant.quantize_for_vllm`, llm-compressor)
   of that model, calibrated on chat-formatted rows, and the written folder checked.

Usage (on the GPU machine, with unsloth, llm-compressor and their needs importable):
    python scripts/gpu_check.py --config-270m path/to/config.json --out OUT_DIR

Deliberately left out: vLLM (its wheel alone is 336 MB, more than can be carried to the GPU
machine here), multi-GPU, and any quality figure (random weights).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
import traceback
from pathlib import Path

import torch
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from toolmodal.training.config import SFTStageConfig
from toolmodal.training.masks import encode_example
from toolmodal.training.metrics import MetricsLogger, read_metrics

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "tiny-gemma"
SYSTEM = ("You are a function-calling assistant.\n\n<tool_start><func_name>get_weather"
          "<param>city<type_string><required><tool_end>")
CITIES = ["Lyon", "Osaka", "Lima", "Oslo", "Cairo", "Quito", "Perth", "Riga"]


def rows(n: int) -> list[tuple[list[dict], list[dict]]]:
    """Hand-built chat rows: one weather request and its call each."""
    out = []
    for i in range(n):
        city = CITIES[i % len(CITIES)]
        prompt = [{"role": "system", "content": SYSTEM},
                  {"role": "user", "content": f"What's the weather in {city} today?"}]
        call = json.dumps({"name": "get_weather", "arguments": {"city": city}})
        out.append((prompt, [{"role": "assistant", "content": f"<tool_call>{call}</tool_call>"}]))
    return out


def train_check(model_dir: Path, out: Path, trainable: str, steps: int, batch: int,
                packing: bool = True) -> dict:
    """Load with the project's backend (unsloth on CUDA) and train a few steps."""
    from toolmodal.training.backend import load_for_training
    from toolmodal.training.sft import train_sft

    config = SFTStageConfig(stage="sft_joint", trainable=trainable, learning_rate=1e-3,
                            max_steps=steps, per_device_train_batch_size=batch,
                            max_length=512, save_steps=10_000, logging_steps=1,
                            packing=packing, curve_every_steps=0)
    model, tokenizer = load_for_training(model_dir, config)
    encoded = [encode_example(tokenizer, p, c) for p, c in rows(steps * batch)]
    before = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    began = time.perf_counter()
    train_sft(model, tokenizer, encoded, config, out, MetricsLogger(out / "metrics.jsonl"))
    torch.cuda.synchronize()
    seconds = time.perf_counter() - began
    losses = [r["loss"] for r in read_metrics(out / "metrics.jsonl") if "loss" in r]
    changed = sum(not torch.equal(before[n], p.detach().float())
                  for n, p in model.named_parameters() if n in before)
    tok_s = [r["supervised_tokens_per_second"] for r in read_metrics(out / "metrics.jsonl")
             if "supervised_tokens_per_second" in r]
    return {"model_class": type(model).__name__, "losses": [round(x, 4) for x in losses],
            "loss_down": losses[-1] < losses[0], "params_changed": f"{changed}/{len(before)}",
            "seconds": round(seconds, 1),
            "median_supervised_tokens_per_s": sorted(tok_s)[len(tok_s) // 2] if tok_s else None}


def packing_check(model_dir: Path, out: Path) -> dict:
    """First-step loss (before any update) with shared-prefix packing on and off: equal when
    the backend's attention honours the packed masks."""
    packed = train_check(model_dir, out / "packed", "full", 1, 4, packing=True)
    plain = train_check(model_dir, out / "plain", "full", 1, 4, packing=False)
    gap = abs(packed["losses"][0] - plain["losses"][0])
    return {"packed_loss": packed["losses"][0], "unpacked_loss": plain["losses"][0],
            "abs_gap": round(gap, 5), "equal_within_1e-2": gap < 1e-2}


def random_270m(config_json: Path, out: Path) -> Path:
    """A random-weight Gemma 3 270M folder with the fixture's tokenizer (tool tokens included)."""
    config = AutoConfig.from_pretrained(config_json.parent)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(FIXTURE)
    tokenizer.save_pretrained(out)
    for name in ("chat_template.jinja", "generation_config.json", "toolmodal_prepared.json"):
        if (FIXTURE / name).exists():
            shutil.copy(FIXTURE / name, out / name)
    return out


def export_check(merged: Path, out: Path, fmt: str) -> dict:
    """Quantise to a vLLM folder with llm-compressor and report what was written."""
    from toolmodal.export.gpu_quant import quantize_for_vllm

    tokenizer = AutoTokenizer.from_pretrained(merged)
    texts = [tokenizer.apply_chat_template(p + c, tokenize=False) for p, c in rows(32)]
    began = time.perf_counter()
    folder = quantize_for_vllm(merged, out / fmt, fmt, texts, max_length=256)
    config = json.loads((folder / "config.json").read_text())
    size = sum(f.stat().st_size for f in folder.glob("*.safetensors"))
    return {"seconds": round(time.perf_counter() - began, 1),
            "quantization_config": config.get("quantization_config", {}).get("format"),
            "safetensors_mb": round(size / 1e6, 1)}


def attempt(name: str, fn, report: dict) -> None:
    """Run one check; record its result or its error, never stop the others."""
    began = time.perf_counter()
    try:
        report[name] = {"status": "OK", **fn()}
    except Exception as exc:  # a report of every check is the point of this script
        report[name] = {"status": "FAILED", "error": f"{type(exc).__name__}: {exc}",
                        "trace": traceback.format_exc()[-2000:]}
    report[name]["wall_s"] = round(time.perf_counter() - began, 1)
    print(json.dumps({name: report[name]}, indent=1), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config-270m", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--exports-only", action="store_true", help="skip the training checks")
    args = parser.parse_args()
    work = args.out / "work"
    report = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__}
    print(json.dumps(report), flush=True)
    if not args.exports_only:
        attempt("unsloth_lora_tiny", lambda: train_check(FIXTURE, work / "a", "lora", 8, 4),
                report)
        attempt("unsloth_full_tiny", lambda: train_check(FIXTURE, work / "b", "full", 8, 4),
                report)
        attempt("unsloth_packing_tiny", lambda: packing_check(FIXTURE, work / "p"), report)
    big = random_270m(args.config_270m, work / "rand270m")
    if not args.exports_only:
        attempt("unsloth_full_270m", lambda: train_check(big, work / "c", "full", 10, 8), report)
        attempt("unsloth_lora_270m", lambda: train_check(big, work / "d", "lora", 10, 8), report)
    attempt("awq_int4_270m", lambda: export_check(big, work, "awq-int4"), report)
    attempt("gptq_int4_270m", lambda: export_check(big, work, "gptq-int4"), report)
    report["vllm"] = {"status": "NOT RUN", "why": "vllm 0.33.0 wheel is 336 MB; at most 64 MiB "
                      "can be carried to the GPU machine, which has no registry access"}
    (args.out / "gpu_check.json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
