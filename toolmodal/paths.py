"""The project root and paths relative to it.

Config fields hold paths relative to the project root (`configs/system_prompts`, not
`/home/me/toolmodal/configs/system_prompts`), so one run configuration serves the host, a
container and a remote worker; `project_path` resolves them where they are used.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("toolmodal", "steps", "pipelines", "materializers")


def project_path(path: str | Path) -> Path:
    """`path` made absolute: relative paths are relative to the project root, not the cwd."""
    path = Path(path)
    return path if path.is_absolute() else PROJECT_ROOT / path


def code_files(module: str) -> list[str]:
    """The project's source files that `module` runs: itself and every project module it
    imports (at the top or inside a function), transitively, with their packages'
    `__init__.py`; paths relative to the project root, sorted.

    Each step lists its own in its cache policy (`CachePolicy(file_dependencies=...)`), so an
    edit of library code a step runs re-runs that step, while steps that do not run it stay
    cached. Names are resolved to files by path alone (nothing is imported); a name that is no
    project file (a class imported from a package, a third-party module) is skipped.
    """
    found: set[Path] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or path in found:
            continue
        found.add(path)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))] + list(_imported(path, name))
    return sorted(str(p.relative_to(PROJECT_ROOT)) for p in found)


def _module_file(name: str) -> Path | None:
    if name.split(".")[0] not in PROJECT_PACKAGES:
        return None
    base = PROJECT_ROOT.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@cache
def _imported(path: Path, name: str) -> tuple[str, ...]:
    """Module names `path` (module `name`) imports; `from a import b` gives `a` and `a.b`.
    Cached per process: the steps share most of their modules (the files' contents are hashed
    by ZenML when a key is computed, so an edit is seen; a new import needs a new process)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[:len(package.split(".")) - node.level + 1] if node.level \
                else []
            head = ".".join([*base, node.module] if node.module else base)
            names += [head] + [f"{head}.{alias.name}" for alias in node.names]
    return tuple(names)
