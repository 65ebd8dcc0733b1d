"""Retrain when the tool schemas change: compare the catalogue's content hash with the last one.

The hash is `Catalogue.content_hash()` (tool content only), so reformatting a file, reordering
files or touching them triggers nothing, while any change to a tool does. A run is triggered
only under an exclusive lock (a second watcher, or a cron tick during a long run, skips), and the
hash is recorded only after the run succeeded, so a failed run is retried at the next check.
Left out: what a run is (the caller passes `trigger`, normally the `full` pipeline) and
scheduling (a loop here, or cron/systemd calling `toolmodal watch --once`; see docs/pipeline.md).
"""

from __future__ import annotations

import fcntl
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from toolmodal.ingest import SchemaError, load_catalogue
from toolmodal.stack import state_dir

log = logging.getLogger(__name__)

Trigger = Callable[[Path], bool]


def watch_dir() -> Path:
    """Where the lock and the recorded hashes live (`.cache/watch/`)."""
    return state_dir() / ".cache" / "watch"


def catalogue_hash(folder: Path) -> str:
    """Content hash of the catalogue ingested from `folder` (raises SchemaError if invalid)."""
    return load_catalogue([folder]).content_hash()


def recorded_hash(folder: Path) -> str | None:
    """The hash recorded after the last successful run for `folder`, or None."""
    state = watch_dir() / "state.json"
    return json.loads(state.read_text()).get(str(folder.resolve())) if state.is_file() else None


def record_hash(folder: Path, value: str) -> None:
    """Remember `value` as the last successfully trained hash of `folder`."""
    state = watch_dir() / "state.json"
    values = json.loads(state.read_text()) if state.is_file() else {}
    values[str(folder.resolve())] = value
    state.parent.mkdir(parents=True, exist_ok=True)
    tmp = state.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=1) + "\n")
    tmp.replace(state)


@contextmanager
def exclusive_lock() -> Iterator[bool]:
    """Yields True while holding the watch lock, False if another process holds it."""
    path = watch_dir() / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def check_once(folder: Path, trigger: Trigger) -> str:
    """One check: "busy", "invalid", "unchanged", "trained" or "failed"."""
    with exclusive_lock() as locked:
        if not locked:
            return "busy"
        try:
            current = catalogue_hash(folder)
        except SchemaError as error:
            log.error("schemas in %s are invalid, not retraining:\n%s", folder, error)
            return "invalid"
        if current == recorded_hash(folder):
            return "unchanged"
        log.info("catalogue hash of %s changed to %s: running the pipeline", folder, current[:12])
        if not trigger(folder):
            return "failed"
        record_hash(folder, current)
        return "trained"


def watch_loop(folder: Path, interval: float, once: bool, trigger: Trigger) -> int:
    """Check every `interval` seconds (or once); exit code 1 if the single check failed."""
    while True:
        outcome = check_once(folder, trigger)
        log.info("watch %s: %s", folder, outcome)
        print(f"{time.strftime('%H:%M:%S')} {folder}: {outcome}", flush=True)
        if once:
            return 1 if outcome in ("failed", "invalid") else 0
        time.sleep(interval)
