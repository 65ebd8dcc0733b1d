"""The `toolmodal` command: argument parsing only.

Each sub-command hands its parsed arguments to a function in `toolmodal.commands.<area>` that
returns the exit code; heavy imports (torch, zenml) happen there, so `toolmodal --help` is fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys


def _schemas(sub: argparse._SubParsersAction) -> None:
    schemas = sub.add_parser("schemas", help="tool schema files").add_subparsers(required=True)
    check = schemas.add_parser("check", help="validate schema files or folders")
    check.add_argument("paths", nargs="*", help="files or folders of tool schemas")
    _sources(check)
    check.add_argument("--json", action="store_true", help="print a machine-readable summary")
    check.set_defaults(target="schemas:check")


def _sources(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--lenient", action="store_true",
                        help="keep every tool that can be represented, report the skipped ones")
    parser.add_argument("--mcp", action="append", default=[], metavar='"COMMAND ARGS"',
                        help="an MCP server to start over stdio and read tools/list from")
    parser.add_argument("--mcp-timeout", type=float, default=60.0,
                        help="seconds allowed per MCP server (default 60)")
    parser.add_argument("--python", action="append", default=[], metavar="MODULE[:FUNCTION]",
                        help="Python functions as tools: one function, or a module's public ones")


def _model(sub: argparse._SubParsersAction) -> None:
    model = sub.add_parser("model", help="base model").add_subparsers(required=True)
    prepare = model.add_parser("prepare", help="convert the base model to an HF folder once")
    prepare.add_argument("--model", default=None,
                         help="HF id or local path (default: the packaged Gemma 3 270M GGUF)")
    prepare.add_argument("--out", default=None, help="output folder (default: under .cache/)")
    prepare.add_argument("--vocab-corpus", nargs="+", default=None,
                         help="files/folders of text: trim the vocabulary to what they need")
    prepare.add_argument("--vocab-corpus-chars", type=int, default=5_000_000,
                         help="characters read from --vocab-corpus (default: 5M)")
    prepare.set_defaults(target="model:prepare")


def _data(sub: argparse._SubParsersAction) -> None:
    data = sub.add_parser("data", help="synthetic training data").add_subparsers(required=True)
    gen = data.add_parser("generate", help="generate verified training examples")
    gen.add_argument("--schemas", nargs="+", default=[], help="folders or files of tool schemas")
    _sources(gen)
    gen.add_argument("--out", required=True, help="output folder (must not exist)")
    gen.add_argument("--examples", type=int, default=None, help="examples to generate")
    gen.add_argument("--seed", type=int, default=None, help="random seed")
    gen.add_argument("--config", default=None, help="YAML with generation settings")
    gen.add_argument("--tokenizer", default=None,
                     help="model folder whose tokenizer checks the length (default: estimate)")
    gen.set_defaults(target="data:generate")
    val = data.add_parser("validate", help="run the validation suite over generated data")
    val.add_argument("dir", help="folder written by `data generate`")
    val.add_argument("--tokenizer", default=None,
                     help="model folder whose tokenizer counts tokens (default: estimate)")
    val.add_argument("--max-tokens", type=int, default=None,
                     help="context budget (default: the generation config's max_tokens)")
    val.add_argument("--naturalness-model", default=None,
                     help="base model folder: also bound the requests' NLL, as the pipeline's "
                     "gate does (default: skipped)")
    val.set_defaults(target="data:validate")


def _train(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="run one training stage outside the pipeline")
    train.add_argument("--stage", required=True,
                       choices=["sft_selection", "sft_arguments", "sft_joint", "grpo"])
    train.add_argument("--model", required=True, help="model folder to start from")
    train.add_argument("--data", required=True, help="dataset folder from `data generate`")
    train.add_argument("--out", required=True, help="output folder (resumes if checkpoints exist)")
    train.add_argument("--config", default=None, help="YAML with the stage's settings")
    train.set_defaults(target="train:train")


def _evaluate(sub: argparse._SubParsersAction) -> None:
    predict = sub.add_parser("predict", help="generate calls for BFCL questions")
    predict.add_argument("--model", required=True, help="model folder or .gguf file")
    predict.add_argument("--bfcl", required=True, help="BFCL question file (JSON Lines)")
    predict.add_argument("--out", required=True, help="predictions file to write")
    predict.add_argument("--mask", default="none", choices=["none", "soft", "hard"])
    predict.add_argument("--engine", default="transformers",
                         choices=["transformers", "vllm", "llamacpp"])
    predict.add_argument("--backend", default="xgrammar",
                         choices=["xgrammar", "outlines", "llguidance"],
                         help="hard-masking backend")
    predict.add_argument("--limit", type=int, default=None, help="first N questions only")
    predict.add_argument("--max-new-tokens", type=int, default=256, help="generation budget")
    predict.add_argument("--batch-size", type=int, default=8, help="questions decoded together")
    predict.add_argument("--lora", default=None,
                         help="llamacpp: LoRA GGUF to apply (e.g. model-q4_k_m.lora.gguf)")
    predict.add_argument("--call-threshold", type=float, default=None,
                         help="call only when the first token's call probability reaches this "
                              "(toolmodal.masking.decision; default: plain greedy)")
    predict.set_defaults(target="evaluate:predict")
    ev = sub.add_parser("eval", help="score BFCL predictions with BFCL's AST rules")
    ev.add_argument("--bfcl", required=True, help="BFCL question file")
    ev.add_argument("--answers", default=None, help="possible_answer file (none: irrelevance)")
    ev.add_argument("--pred", required=True, help="predictions written by `predict`")
    ev.set_defaults(target="evaluate:score")


def _export(sub: argparse._SubParsersAction) -> None:
    export = sub.add_parser("export", help="merge, convert to GGUF and quantise")
    export.add_argument("--model", required=True, help="model folder")
    export.add_argument("--out", required=True, help="output folder")
    export.add_argument("--formats", default="merged,gguf-f16,gguf-q8_0,gguf-q4_k_m",
                        help="comma-separated formats (GPU only: awq-int4, gptq-int4)")
    export.add_argument("--calibration-data", default=None,
                        help="dataset folder (toolmodal data generate --out) calibrating "
                             "awq-int4 / gptq-int4")
    export.add_argument("--correction-rank", type=int, default=64,
                        help="rank of the Q4_K_M correction adapter (0: none)")
    export.set_defaults(target="export:export")


def _pipeline(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="run a ZenML pipeline on the project-local stack")
    run.add_argument("pipeline", nargs="?", default="full",
                     choices=["data", "training", "evaluation", "full"])
    run.add_argument("--config", action="append", default=None,
                     help="YAML overlay(s) on the pipeline's base config (default: cpu)")
    run.add_argument("--stack", default=None,
                     help="stack of the project-local ZenML store (default: toolmodal-local)")
    run.add_argument("--schemas", nargs="+", default=[], metavar="PATH",
                     help="train on these schema files/folders (and --mcp, --python) instead "
                          "of data/tool_schemas")
    _sources(run)  # each one is threaded to ingestion by toolmodal.commands.pipeline.run
    run.set_defaults(target="pipeline:run")
    dash = sub.add_parser("dashboard", help="start the ZenML dashboard and the MLflow UI")
    dash.add_argument("--port", type=int, default=8237, help="ZenML dashboard port")
    dash.add_argument("--mlflow-port", type=int, default=5000, help="MLflow UI port")
    dash.set_defaults(target="pipeline:dashboard")
    watch = sub.add_parser("watch", help="retrain when the schema folder's content changes")
    watch.add_argument("--schemas", default="data/tool_schemas", help="folder to watch")
    watch.add_argument("--interval", type=float, default=60.0, help="seconds between checks")
    watch.add_argument("--once", action="store_true", help="check once and exit (for cron)")
    watch.add_argument("--config", action="append", default=None,
                       help="YAML overlay(s) for the triggered full pipeline (default: cpu)")
    watch.set_defaults(target="pipeline:watch")


def _serve(sub: argparse._SubParsersAction) -> None:
    serve = sub.add_parser("serve", help="OpenAI-compatible chat completions with tool calls")
    serve.add_argument("--model", required=True, help="model folder or .gguf file")
    serve.add_argument("--lora", default=None, help="llamacpp: LoRA GGUF to apply")
    serve.add_argument("--engine", default=None, choices=["llamacpp", "transformers", "vllm"],
                       help="default: llamacpp for a .gguf file, else transformers")
    serve.add_argument("--mask", default="none", choices=["none", "soft", "hard"],
                       help='mask for tool_choice "auto" ("required"/named always use hard)')
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--system-prompt", default="configs/system_prompts/default.yaml",
                       help="YAML prompt variant whose `text` fills the system slot")
    serve.add_argument("--max-tokens", type=int, default=256, help="default generation budget")
    serve.add_argument("--call-threshold", type=float, default=None,
                       help='tool_choice "auto": call only when the first token\'s call '
                            "probability reaches this (e.g. 0.5; default: plain greedy)")
    serve.add_argument("--max-queue", type=int, default=16,
                       help="requests queued or running at most; more get HTTP 503")
    serve.add_argument("--tool-states", type=int, default=8,
                       help="llamacpp: KV snapshots of recent tool blocks to keep (0: none)")
    serve.add_argument("--served-model-name", default=None, help="default: the model's name")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(target="serve:serve")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(prog="toolmodal", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(required=True, metavar="COMMAND")
    for add in (_schemas, _model, _data, _train, _evaluate, _export, _pipeline, _serve):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    module_name, func_name = args.target.split(":")
    module = importlib.import_module(f"toolmodal.commands.{module_name}")
    return int(getattr(module, func_name)(args))


if __name__ == "__main__":
    sys.exit(main())
