"""The `data` pipeline on a tiny catalogue: a rerun is fully cached, a schema edit re-ingests.

The pipeline runs in a subprocess with its own ZenML store (`TOOLMODAL_STATE_DIR`), so neither
the project's `.zen/` nor the test process's imports are touched. Each pipeline call costs
~15-20 s of ZenML overhead, so the script makes three runs in one process.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from toolmodal.datagen import GenerationConfig
from toolmodal.ingest import load_catalogue

REPO = Path(__file__).resolve().parent.parent
# the generator's default phase shares: the cpu overlay's 0.1 / 0.1 / 0.8 leave 80 examples no
# selection or arguments validation rows (the generator stops, naming them)
TINY_PHASES = GenerationConfig().phase_shares
SOURCES = ["weather/openai_weather_tools.json", "math/bfcl_math.json"]

SCRIPT = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from toolmodal.commands.pipeline import run_pipeline

    overlay, edited = sys.argv[1], Path(sys.argv[2])

    def statuses():
        run = run_pipeline("data", ["cpu", overlay]).get_hydrated_version()
        print("STEPS " + json.dumps({n: s.status.value for n, s in run.steps.items()}), flush=True)

    statuses()
    statuses()
    tools = json.loads(edited.read_text())
    tools[0]["function"]["description"] += " Edited."
    edited.write_text(json.dumps(tools, indent=2))
    statuses()
""")


@pytest.fixture()
def tiny_catalogue(tmp_path: Path) -> Path:
    """Two schema files (13 tools, two categories) copied into a temporary folder."""
    for source in SOURCES:
        target = tmp_path / "schemas" / source
        target.parent.mkdir(parents=True)
        shutil.copy(REPO / "data" / "tool_schemas" / source, target)
    return tmp_path / "schemas"


def test_rerun_is_cached_and_schema_edit_reingests(tmp_path: Path, tiny_catalogue: Path):
    overlay = tmp_path / "tiny.yaml"
    # 80 rows: training groups of 2-6 (the generator's default), not the cpu overlay's 7-8, of
    # which one group is 12% of the training rows, too coarse for the 20% +- 10% variant share
    # the validation step checks (it stops the run, naming prompt_variant_share)
    overlay.write_text(yaml.safe_dump({"parameters": {
        "schemas": str(tiny_catalogue), "generation": {
            "examples": 80, "seed": 1, "min_train_group_size": 2, "max_train_group_size": 6,
            "phase_shares": TINY_PHASES}}}))
    edited = tiny_catalogue / SOURCES[0]
    before = load_catalogue([tiny_catalogue]).content_hash()
    env = {**os.environ, "TOOLMODAL_STATE_DIR": str(tmp_path / "state")}
    env.pop("ZENML_CONFIG_PATH", None)
    env.pop("ZENML_REPOSITORY_PATH", None)
    result = subprocess.run([sys.executable, "-c", SCRIPT, str(overlay), str(edited)],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    runs = [json.loads(line[6:]) for line in result.stdout.splitlines()
            if line.startswith("STEPS ")]
    assert len(runs) == 3, result.stdout[-2000:]
    first, second, third = runs
    assert set(first.values()) == {"completed"}
    assert set(second.values()) == {"cached"}, second
    assert third["ingest_schemas"] == "completed", third
    assert third["generate_data"] == "completed", third  # the catalogue's content changed
    assert third["validate_data"] == "completed", third
    assert load_catalogue([tiny_catalogue]).content_hash() != before
