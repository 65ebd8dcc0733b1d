"""The `data` pipeline on the `toolmodal-docker` stack: every step in its own container.

Opt in with `pytest -m docker tests/test_docker_stack.py` after `scripts/docker-local.sh up`
(Docker engine + `toolmodal-cpu` image). The run uses its own ZenML store and MLflow folder
(`TOOLMODAL_STATE_DIR`), registers the docker stack there and runs the `cpu` configuration
(bundled catalogue, 400 examples; a much smaller catalogue leaves a test split empty, which
the dataset materializer cannot load back). About 4-5 minutes on 2 busy cores, most of it
container start-up and ZenML's own overhead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

REPO = Path(__file__).resolve().parent.parent
SOCKET = REPO / ".cache" / "docker" / "docker.sock"
STEPS = ("ingest_schemas", "generate_data", "validate_data")


def docker(*args: str) -> str:
    """Output of a `docker` CLI command against the project's engine."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{SOCKET}"}
    return subprocess.run(["docker", *args], env=env, check=True, capture_output=True,
                          text=True, timeout=120).stdout


def step_containers() -> dict[str, str]:
    """Container id -> command line of every container ZenML started for a step."""
    lines = docker("ps", "-a", "--no-trunc", "--format", "{{.ID}} {{.Command}}").splitlines()
    return {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines
            if "--step_name" in line}


def test_data_pipeline_runs_each_step_in_its_own_container(tmp_path: Path):
    if not SOCKET.exists():
        pytest.fail(f"no Docker engine at {SOCKET}: run `scripts/docker-local.sh up` first")
    env = {**os.environ, "TOOLMODAL_STATE_DIR": str(tmp_path / "state"),
           "DOCKER_HOST": f"unix://{SOCKET}"}
    env.pop("ZENML_CONFIG_PATH", None)
    env.pop("ZENML_REPOSITORY_PATH", None)
    script = str(REPO / "scripts" / "docker_stack.py")
    before = step_containers()
    try:
        subprocess.run([sys.executable, script, "register"], env=env, cwd=tmp_path, check=True,
                       capture_output=True, text=True, timeout=600)
        result = subprocess.run([sys.executable, script, "run", "data", "--config", "cpu"],
                                env=env, cwd=tmp_path, capture_output=True, text=True,
                                timeout=1800)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        rows = [line.split() for line in result.stdout.splitlines()]
        for name in STEPS:
            assert [name, "completed"] in [row[:2] for row in rows], result.stdout[-2000:]
        new = {cid: cmd for cid, cmd in step_containers().items() if cid not in before}
        for name in STEPS:
            ran_in = [cid for cid, cmd in new.items() if f"--step_name {name}" in cmd]
            assert len(ran_in) == 1, f"{name}: containers {ran_in}"
    finally:
        created = [cid for cid in step_containers() if cid not in before]
        if created:
            docker("rm", *created)
