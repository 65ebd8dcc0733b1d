"""Run configurations of the pipelines: one base YAML per pipeline plus overlays, merged.

`configs/<pipeline>.yaml` is a ZenML run configuration whose `parameters` are the pipeline's
stage configs (one pydantic model each, validated by ZenML against the pipeline's signature). A
base may list other bases under `extends:` (`full` extends data, training and evaluation), and
overlays (`cpu`, `gpu`, `remote` or any YAML path) are merged on top, in order: mappings merge
key by key, everything else is replaced. Overlay parameters for stages a pipeline does not have
are dropped, so one overlay serves every pipeline. An overlay may also be a mapping: the `run`
command's `--schemas/--mcp/--python/--lenient` become one (`UserCatalogue`), merged last.
Ingestion is cached on the schema files' contents (`with_ingest_cache`). Left out: ZenML itself
(the run command hands the merged mapping to `with_options`), and validation (ZenML and
`tests/test_configs.py` do it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from toolmodal.ingest.sources import DEFAULT_TIMEOUT
from toolmodal.paths import PROJECT_ROOT, code_files, project_path

CONFIG_DIR = PROJECT_ROOT / "configs"
PIPELINES = ("data", "training", "evaluation", "full")
OVERLAYS = ("cpu", "cpu-long", "gpu", "remote", "realworld")
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


def build_run_config(pipeline: str, overlays: list[str | dict[str, Any]],
                     parameters: set[str]) -> dict[str, Any]:
    """The merged run configuration of `pipeline` with `overlays` applied in order.

    Args:
        pipeline: One of PIPELINES (selects `configs/<pipeline>.yaml`).
        overlays: Overlay names, YAML paths or run-configuration mappings.
        parameters: The pipeline's parameter names; other overlay parameters are dropped.
    """
    if pipeline not in PIPELINES:
        raise ValueError(f"unknown pipeline {pipeline!r}; choose from {PIPELINES}")
    config = load_yaml(CONFIG_DIR / f"{pipeline}.yaml")
    for overlay in overlays:
        layer = overlay if isinstance(overlay, dict) else load_yaml(overlay_path(overlay))
        config = deep_merge(config, layer)
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


def cli_path(path: str) -> str:
    """A path typed on the command line (relative to the working directory) as a config value:
    relative to the project root when inside it (one config serves every checkout), else
    absolute."""
    resolved = Path(path).resolve()
    return (str(resolved.relative_to(PROJECT_ROOT)) if resolved.is_relative_to(PROJECT_ROOT)
            else str(resolved))


@dataclass(frozen=True)
class UserCatalogue:
    """A user's catalogue, as the `run` options give it.

    Attributes:
        paths: Schema files and folders, as config values (see `cli_path`).
        servers: MCP server command lines (`toolmodal.ingest.sources`).
        modules: Python `MODULE[:FUNCTION]` specs (`toolmodal.ingest.python_functions`).
        lenient: Keep every tool that can be represented instead of failing on any error.
        mcp_timeout: Seconds allowed per MCP server.
    """

    paths: list[str] = field(default_factory=list)
    servers: list[str] = field(default_factory=list)
    modules: list[str] = field(default_factory=list)
    lenient: bool = False
    mcp_timeout: float = DEFAULT_TIMEOUT

    @property
    def given(self) -> bool:
        """Whether any source was given (it then replaces the bundled catalogue)."""
        return bool(self.paths or self.servers or self.modules)

    def overlay(self) -> dict[str, Any]:
        """The overlay that makes ingestion read this catalogue.

        Given sources replace the bundled `schemas` folder (name `data/tool_schemas` among the
        paths to keep it); servers and Python functions are read by the step when it runs.
        """
        step: dict[str, Any] = {"mcp": self.servers, "mcp_timeout": self.mcp_timeout,
                                "python": self.modules} if self.servers or self.modules else {}
        if self.lenient:
            step["lenient"] = True
        overlay: dict[str, Any] = {"parameters": {"schemas": self.paths}} if self.given else {}
        return overlay | ({"steps": {"ingest_schemas": {"parameters": step}}} if step else {})


def schema_sources(config: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The schema paths ingestion of `config` reads, and its live sources (MCP server commands
    and Python specs, read when the step runs)."""
    schemas = config["parameters"].get("schemas", [])
    step = config.get("steps", {}).get("ingest_schemas", {}).get("parameters", {})
    paths = [schemas] if isinstance(schemas, str) else list(schemas)
    live = [*(step.get("mcp") or []), *(step.get("python") or [])]
    return paths + list(step.get("extra_schemas") or []), live


def with_ingest_cache(config: dict[str, Any]) -> dict[str, Any]:
    """`config` with ingestion's cache settings: the schema files' contents are cache inputs
    (an edit re-runs ingestion, an unchanged catalogue stays cached); with MCP servers or
    Python functions the step always runs, since their tools live outside the schema files
    (later steps stay cached while the catalogue's content hash does not change)."""
    if "schemas" not in config["parameters"]:
        return config
    paths, live = schema_sources(config)
    if live:
        return deep_merge(config, {"steps": {"ingest_schemas": {"enable_cache": False}}})
    files = sorted({f for path in paths for f in schema_files(path)})
    # this replaces the step's own cache policy, so its code files are listed again
    code = code_files("steps.ingest_schemas")
    return deep_merge(config, {"steps": {"ingest_schemas": {
        "cache_policy": {"file_dependencies": code + files}}}})
