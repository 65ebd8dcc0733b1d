"""Run a training stage on several processes: `accelerate launch` of the `toolmodal train` command.

ZenML's `run_with_accelerate` cannot wrap our steps (its command line only carries str, int,
float, bool and Path parameters; ours take a `ModelDir`, a `DatasetDict` and a pydantic config),
so the core launches the same command users run, with the stage's inputs written to disk:

    python -m accelerate.commands.launch --multi_gpu --num_processes N ... \
        -m toolmodal.cli train --stage S --model DIR --data DIR --out DIR --config stage.yaml

`--multi_gpu` selects accelerate's torchrun launcher, which starts the N processes; without CUDA
each process's Accelerator (created with `cpu=True`) then joins a gloo group instead of NCCL.
(`--cpu` would pick accelerate's simple launcher, which starts a single process unless mpirun
is configured.) The launched processes write the model, `metrics.jsonl` and `training_done.json`
into the output folder; this process reads them back. torchrun starts the workers in sessions of
their own, so a `kill -9` of the step would leave them training and writing into the folder a
rerun resumes from; each launched process therefore exits when the launching process (or its own
launcher) is gone. Deliberately left out: several machines (`--num_machines` > 1), DeepSpeed and
FSDP.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
import yaml
from datasets import DatasetDict

from toolmodal.training.config import GRPOStageConfig, SFTStageConfig
from toolmodal.training.metrics import MetricsHook, read_metrics
from toolmodal.training.sft import DONE_FILE

log = logging.getLogger(__name__)
LAUNCHER_ENV = "TOOLMODAL_LAUNCHER_PID"  # set for the launched processes by `launch_stage`


def launch_dir(out: Path) -> Path:
    """Where the launched stage's inputs go: beside `out`, so they never join the model folder."""
    return Path(out).with_name(Path(out).name + "-launch")


def write_inputs(data: DatasetDict, config: SFTStageConfig | GRPOStageConfig,
                 folder: Path) -> tuple[Path, Path]:
    """Save the stage's splits (save_to_disk) and its config (YAML) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    data_dir, config_file = folder / "dataset", folder / "stage.yaml"
    data.save_to_disk(str(data_dir))
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    return data_dir, config_file


def free_port() -> int:
    """A TCP port free right now, for the process group's rendezvous (29500 may be taken)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_arguments(config: SFTStageConfig | GRPOStageConfig, port: int) -> list[str]:
    """The `accelerate launch` options for `config` (one machine, `config.num_processes`)."""
    return ["--multi_gpu", "--num_processes", str(config.num_processes), "--num_machines", "1",
            "--mixed_precision", config.mixed_precision, "--dynamo_backend", "no",
            "--main_process_port", str(port)]


def launch_command(config: SFTStageConfig | GRPOStageConfig, model_dir: Path, data_dir: Path,
                   out: Path, config_file: Path, port: int) -> list[str]:
    """The full command: `accelerate launch <options> -m toolmodal.cli train <stage args>`."""
    return [sys.executable, "-m", "accelerate.commands.launch", *launch_arguments(config, port),
            "-m", "toolmodal.cli", "train", "--stage", config.stage, "--model", str(model_dir),
            "--data", str(data_dir), "--out", str(out), "--config", str(config_file)]


def launch_stage(model_dir: Path, data: DatasetDict, config: SFTStageConfig | GRPOStageConfig,
                 out: Path, hooks: list[MetricsHook] | None = None) -> dict:
    """Train `config.stage` on `config.num_processes` processes; waits for them to finish.

    Args:
        model_dir: Model folder to start from.
        data: The stage's splits (written to disk for the launched processes).
        config: The stage's config (written as YAML).
        out: Output folder; the launched stage resumes from its checkpoints.
        hooks: Called with every logged step once the stage is done (e.g. MLflow).

    Returns:
        The stage's summary, as the launched main process wrote it.

    Raises:
        ValueError: If CUDA is there but with fewer GPUs than processes.
        RuntimeError: If the launch exits with an error (its output names the cause).
    """
    if torch.cuda.is_available() and torch.cuda.device_count() < config.num_processes:
        raise ValueError(f"stage {config.stage}: num_processes={config.num_processes} but "
                         f"only {torch.cuda.device_count()} GPU(s) are visible")
    data_dir, config_file = write_inputs(data, config, launch_dir(out))
    command = launch_command(config, Path(model_dir), data_dir, Path(out), config_file,
                             free_port())
    log.info("launching %s on %d processes: %s", config.stage, config.num_processes,
             shlex.join(command))
    env = {**os.environ, LAUNCHER_ENV: str(os.getpid())}
    code = subprocess.run(command, env=env, check=False).returncode
    if code != 0:
        raise RuntimeError(f"stage {config.stage}: `{shlex.join(command)}` exited with "
                           f"code {code}; its output above names the cause")
    summary = json.loads((Path(out) / DONE_FILE).read_text())
    for row in read_metrics(Path(out) / "metrics.jsonl"):
        step = row.pop("step")
        for hook in hooks or []:
            hook(step, row)
    return summary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def exit_with_launcher(interval: float = 2.0) -> None:
    """In a process started by `launch_stage`: exit at once when the launching process dies or
    this process's own launcher (torchrun) does, checked every `interval` seconds."""
    launcher = os.environ.get(LAUNCHER_ENV)
    if launcher is None:  # launched by hand (`accelerate launch ... toolmodal train`)
        return
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent and _alive(int(launcher)):
            time.sleep(interval)
        log.error("launching process %s is gone: stopping this training process", launcher)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-launcher", daemon=True).start()
