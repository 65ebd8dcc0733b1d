"""Data-parallel SFT through `accelerate launch`, for real, on the CPU (gloo) with the tiny model.

Two processes with one micro-batch each must make the same updates as one process that
accumulates both micro-batches (the union of the two processes' batches): same logged loss and
supervised-token count per step, same final weights. That only holds if the processes took
different batches and their gradients were summed over both. The dataset fixture is the one of
`test_training.py`.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from datasets import Dataset, DatasetDict
from test_training import _changed, _row, _weights
from transformers import AutoModelForCausalLM, AutoTokenizer

from toolmodal.training.config import SFTStageConfig
from toolmodal.training.launch import LAUNCHER_ENV, launch_command, launch_dir
from toolmodal.training.metrics import MetricsLogger, read_metrics
from toolmodal.training.run import run_stage
from toolmodal.training.sft import encode_rows, train_sft

pytestmark = pytest.mark.smoke


@pytest.fixture(scope="module")
def data() -> DatasetDict:
    return DatasetDict({"joint_train": Dataset.from_list([_row(i, "joint") for i in range(8)]),
                        "joint_validation": Dataset.from_list([_row(i, "joint")
                                                               for i in range(2)])})


def _config(**changes) -> SFTStageConfig:
    return SFTStageConfig(stage="sft_joint", max_steps=2, per_device_train_batch_size=2,
                          learning_rate=1e-3, save_steps=1, **changes)


def test_two_processes_update_like_one_process_on_the_union(tiny_model_dir, data, tmp_path):
    logged = []
    two = run_stage(tiny_model_dir, data, _config(num_processes=2), tmp_path / "two",
                    hooks=[lambda step, metrics: logged.append(step)])
    one = run_stage(tiny_model_dir, data, _config(gradient_accumulation_steps=2),
                    tmp_path / "one")
    assert two["global_step"] == one["global_step"] == 2
    rows = {name: [m for m in read_metrics(tmp_path / name / "metrics.jsonl") if "loss" in m]
            for name in ("two", "one")}
    assert len(rows["two"]) == 2 and all(m["loss"] > 0 for m in rows["two"])
    for multi, single in zip(rows["two"], rows["one"], strict=True):
        assert multi["supervised_tokens"] == single["supervised_tokens"]
        assert multi["loss"] == pytest.approx(single["loss"], rel=1e-5)
        assert multi["grad_norm"] == pytest.approx(single["grad_norm"], rel=1e-4)
    assert two["eval_loss"] == pytest.approx(one["eval_loss"], rel=1e-5)
    # Every logged row reaches the hooks: the step-0 curve point, steps 1 and 2, the step-2 curve
    # point, then eval_loss.
    assert logged == [0, 1, 2, 2, 2], "every logged step (then eval_loss) reaches the hooks"
    after = _weights(tmp_path / "two")
    assert _changed(_weights(tiny_model_dir), after)
    # An Adam step moves a weight by ~lr = 1e-3; summation order alone can change the step of a
    # weight whose gradient is ~eps (seen: one element of 274k off by 3e-5), so allow 1e-4.
    for name, value in _weights(tmp_path / "one").items():
        torch.testing.assert_close(after[name], value, rtol=1e-4, atol=1e-4, msg=name)
    assert (launch_dir(tmp_path / "two") / "stage.yaml").is_file()
    assert not (tmp_path / "two" / "dataset").exists(), "launch inputs stay out of the model"


def test_launch_command_runs_the_train_command(tmp_path):
    command = launch_command(_config(num_processes=4), tmp_path / "m", tmp_path / "d",
                             tmp_path / "o", tmp_path / "c.yaml", 29511)
    assert command[1:3] == ["-m", "accelerate.commands.launch"]
    tail = command[command.index("toolmodal.cli"):]
    assert tail == ["toolmodal.cli", "train", "--stage", "sft_joint", "--model",
                    str(tmp_path / "m"), "--data", str(tmp_path / "d"), "--out",
                    str(tmp_path / "o"), "--config", str(tmp_path / "c.yaml")]


def test_process_count_must_match_the_config(tiny_model_dir, data, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    examples, _ = encode_rows(tokenizer, data["joint_train"], 512)
    with pytest.raises(ValueError, match="num_processes=2 in the config, but 1 process"):
        train_sft(model, tokenizer, examples, _config(num_processes=2), tmp_path,
                  MetricsLogger(tmp_path / "metrics.jsonl"))


def test_launched_process_exits_when_its_launcher_is_killed():
    """A `kill -9` of the step must not leave workers training into the folder a rerun uses."""
    launcher = subprocess.Popen(["sleep", "60"])
    worker = subprocess.Popen(
        [sys.executable, "-c", "import time; from toolmodal.training.launch import "
         "exit_with_launcher; exit_with_launcher(0.1); time.sleep(60)"],
        env={**os.environ, LAUNCHER_ENV: str(launcher.pid)})
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            worker.wait(timeout=1)  # alive while its launcher is
        launcher.kill()
        launcher.wait()
        assert worker.wait(timeout=60) == 1
    finally:
        launcher.kill()
        worker.kill()
