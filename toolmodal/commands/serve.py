"""`toolmodal serve`: load a model and serve OpenAI-style chat completions with tool calls.

Deliberately left out: the server itself (`toolmodal.serve`); this only loads and starts it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def serve(args: argparse.Namespace) -> int:
    """Load the engine, build the app and run uvicorn until interrupted; returns the exit code."""
    import uvicorn

    from toolmodal.engines import EngineConfig, load_engine
    from toolmodal.paths import project_path
    from toolmodal.serve.app import create_app
    from toolmodal.serve.backends import backend_for
    from toolmodal.serve.translate import ServeConfig

    model = Path(args.model)
    engine_name = args.engine or ("llamacpp" if model.suffix == ".gguf" else "transformers")
    engine = load_engine(engine_name, model, EngineConfig(max_new_tokens=args.max_tokens,
                                                          lora=args.lora,
                                                          call_threshold=args.call_threshold))
    prompt_file = project_path(Path(args.system_prompt))
    config = ServeConfig(system_prompt=yaml.safe_load(prompt_file.read_text("utf-8"))["text"],
                         mask=args.mask, default_max_tokens=args.max_tokens)
    app = create_app(backend_for(engine_name, engine, args.tool_states), config,
                     model_name=args.served_model_name or model.stem, max_queue=args.max_queue)
    print(f"serving {model} ({engine_name}, mask={args.mask}) on http://{args.host}:{args.port}/v1")
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
