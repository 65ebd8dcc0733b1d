"""The project root and paths relative to it.

Config fields hold paths relative to the project root (`configs/system_prompts`, not
`/home/me/toolmodal/configs/system_prompts`), so one run configuration serves the host, a
container and a remote worker; `project_path` resolves them where they are used.
"""

from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def project_path(path: str | Path) -> Path:
    """`path` made absolute: relative paths are relative to the project root, not the cwd."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path
