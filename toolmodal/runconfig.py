"""Run configurations of the pipelines: one base YAML per pipeline plus overlays, merged.

`configs/<pipeline>.yaml` is a ZenML run configuration whose `parameters` are the pipeline's
stage configs (one pydantic model each, validated by ZenML against the pipeline's signature). A
base may list other bases under `extends:` (`full` extends data, training and evaluation), and
overlays (`cpu`, `gpu`, `remote` or any YAML path) are merged on top, in order: mappings merge
key by key, everything else is replaced. Overlay parameters for stages a pipeline does not have
are dropped, so one overlay serves every pipeline. Left out: ZenML itself (the run command hands
the merged mapping to `with_options`), and validation (ZenML and `tests/test_configs.py` do it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from toolmodal.paths import PROJECT_ROOT, project_path

CONFIG_DIR = PROJECT_ROOT / "configs"
PIPELINES = ("data", "training", "evaluation", "full")
OVERLAYS = ("cpu", "cpu-long", "gpu", "remote")
DEFAULT_OVERLAYS = ["cpu"]


def overlay_path(name: str) -> Path:
    """An overlay's file: `cpu`, `cpu-long`, `gpu` or `remote` mean `configs/<name>.yaml`,
    anything else is a path."""
    path = CONFIG_DIR / f"{name}.yaml" if name in OVERLAYS else Path(name)
    if not path.is_file():
        raise FileNotFoundError(f"config overlay {name!r}: no file {path}")
    return path


def load_yaml(path: Path) -> dict[str, Any]:
    """Read one YAML mapping, resolving its `extends:` list (paths relative to the file)."""
    values = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(values, dict):
        raise ValueError(f"{path}: expected a mapping at the top, got {type(values).__name__}")
    merged: dict[str, Any] = {}
    for parent in values.pop("extends", []):
        merged = deep_merge(merged, load_yaml(Path(path).parent / parent))
    return deep_merge(merged, values)


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: nested mappings merge, other values (lists too) replace."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_run_config(pipeline: str, overlays: list[str], parameters: set[str]) -> dict[str, Any]:
    """The merged run configuration of `pipeline` with `overlays` applied in order.

    Args:
        pipeline: One of PIPELINES (selects `configs/<pipeline>.yaml`).
        overlays: Overlay names or YAML paths.
        parameters: The pipeline's parameter names; other overlay parameters are dropped.
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; choose from {PIPELINES}")
    config = load_yaml(CONFIG_DIR / f"{pipeline}.yaml")
    for name in overlays:
        config = deep_merge(config, load_yaml(overlay_path(name)))
    config["parameters"] = {k: v for k, v in config.get("parameters", {}).items()
                            if k in parameters}
    return config


def schema_files(folder: str | Path) -> list[str]:
    """Files under a schema folder (or the file itself), as ZenML cache dependencies.

    Paths are relative to the project root (ZenML's source root) when inside it, so cache keys
    do not depend on where the project is checked out.
    """
    root = project_path(folder)
    if not root.exists():
        raise FileNotFoundError(f"schema folder {root} does not exist")
    files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
    return [str(p.relative_to(PROJECT_ROOT)) if p.is_relative_to(PROJECT_ROOT) else str(p)
            for p in files]
