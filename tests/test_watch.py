"""`toolmodal watch`: retrain only when the catalogue's content changes, never twice at once.

The trigger is a fake (a list of calls) so no pipeline runs; the state lives in a temporary
`TOOLMODAL_STATE_DIR`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from toolmodal import watch

REPO = Path(__file__).resolve().parent.parent
SOURCE = REPO / "data" / "tool_schemas" / "weather" / "openai_weather_tools.json"


@pytest.fixture()
def schemas(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TOOLMODAL_STATE_DIR", str(tmp_path / "state"))
    folder = tmp_path / "schemas" / "weather"
    folder.mkdir(parents=True)
    shutil.copy(SOURCE, folder / SOURCE.name)
    return tmp_path / "schemas"


class Trigger:
    """Records the folders it was asked to train on; succeeds unless told otherwise."""

    def __init__(self, succeed: bool = True) -> None:
        self.calls: list[Path] = []
        self.succeed = succeed

    def __call__(self, folder: Path) -> bool:
        self.calls.append(folder)
        return self.succeed


def _edit(schemas: Path, change) -> None:
    path = schemas / "weather" / SOURCE.name
    tools = json.loads(path.read_text())
    change(tools)
    path.write_text(json.dumps(tools, indent=2))


def test_runs_once_per_content_change(schemas: Path):
    trigger = Trigger()
    assert watch.check_once(schemas, trigger) == "trained"  # nothing recorded yet
    assert watch.check_once(schemas, trigger) == "unchanged"
    _edit(schemas, lambda tools: None)  # reformatted only (indent 2 vs the original)
    assert watch.check_once(schemas, trigger) == "unchanged"
    _edit(schemas, lambda tools: tools[0]["function"].update(description="Changed."))
    assert watch.check_once(schemas, trigger) == "trained"
    assert trigger.calls == [schemas, schemas]
    assert watch.recorded_hash(schemas) == watch.catalogue_hash(schemas)


def test_failed_run_is_retried(schemas: Path):
    failing = Trigger(succeed=False)
    assert watch.check_once(schemas, failing) == "failed"
    assert watch.recorded_hash(schemas) is None
    assert watch.check_once(schemas, Trigger()) == "trained"


def test_invalid_schemas_trigger_nothing(schemas: Path):
    trigger = Trigger()
    _edit(schemas, lambda tools: tools[0]["function"].pop("name"))
    assert watch.check_once(schemas, trigger) == "invalid"
    assert trigger.calls == []
    assert watch.watch_loop(schemas, 0.0, once=True, trigger=trigger) == 1


def test_overlapping_check_is_skipped(schemas: Path):
    trigger = Trigger()
    with watch.exclusive_lock() as held:
        assert held
        assert watch.check_once(schemas, trigger) == "busy"
    assert trigger.calls == []
    assert watch.watch_loop(schemas, 0.0, once=True, trigger=trigger) == 0
    assert trigger.calls == [schemas]
