"""Every YAML under configs/ loads and validates.

Pipeline bases merged with each overlay are checked twice: as ZenML run configurations
(`PipelineRunConfiguration`: schedule, settings, steps...) and parameter by parameter against
the pipeline function's type annotations (the stage configs are pydantic models, so a typo'd
field or a wrong type fails here rather than at run time). Other YAMLs: run-configuration
overlays of the container stacks, stack definitions and system-prompt variants.
"""

from __future__ import annotations

import inspect
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import TypeAdapter

from toolmodal import runconfig

# Importing the pipelines configures ZenML's environment: keep it off the project.
pytestmark = pytest.mark.usefixtures("isolated_zenml")

CONFIGS = runconfig.CONFIG_DIR
OVERLAY_SETS = [[], ["cpu"], ["cpu-long"], ["gpu"], ["gpu", "remote"], ["cpu", "docker.yaml"]]


def _pipeline(name: str):
    from toolmodal.commands.pipeline import load_pipeline

    return load_pipeline(name)


def _overlays(names: list[str]) -> list[str]:
    return [n if n in runconfig.OVERLAYS else str(CONFIGS / n) for n in names]


@pytest.mark.parametrize("overlays", OVERLAY_SETS, ids=lambda o: "+".join(o) or "base")
@pytest.mark.parametrize("name", runconfig.PIPELINES)
def test_pipeline_config_validates(name: str, overlays: list[str]):
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    from toolmodal.commands.pipeline import pipeline_config

    config = pipeline_config(name, _overlays(overlays))
    PipelineRunConfiguration.model_validate(config)
    signature = inspect.signature(_pipeline(name).entrypoint)
    hints = typing.get_type_hints(_pipeline(name).entrypoint)
    for param, spec in signature.parameters.items():
        if spec.default is inspect.Parameter.empty:
            assert param in config["parameters"], f"{name}: no value for {param!r}"
        if param in config["parameters"]:
            TypeAdapter(hints[param]).validate_python(config["parameters"][param])


@pytest.mark.parametrize("overlays", OVERLAY_SETS, ids=lambda o: "+".join(o) or "base")
def test_the_gate_checks_the_answer_budget_the_evaluations_use(overlays: list[str]):
    from toolmodal.commands.pipeline import pipeline_config
    from toolmodal.engines import EngineConfig

    parameters = pipeline_config("full", _overlays(overlays))["parameters"]
    budgets = {parameters[name].get("engine_config", {}).get(
        "max_new_tokens", EngineConfig().max_new_tokens)
        for name in ("evaluation", "final_evaluation")}
    assert budgets == {parameters["validation"]["max_answer_tokens"]}


def test_cpu_overlay_is_the_default():
    assert runconfig.DEFAULT_OVERLAYS == ["cpu"]


def test_overlay_parameters_all_belong_to_the_full_pipeline():
    """Overlays drop parameters a pipeline lacks, so a typo there would vanish silently."""
    known = set(inspect.signature(_pipeline("full").entrypoint).parameters)
    for path in [*CONFIGS.glob("*.yaml"), *CONFIGS.glob("stacks/*.yaml")]:
        values = yaml.safe_load(path.read_text()) or {}
        unknown = set(values.get("parameters", {})) - known
        if path.stem not in ("evaluation", "training"):  # their own standalone parameters
            assert not unknown, f"{path}: parameters {unknown} belong to no stage"


def test_merge_order_and_dropping():
    merged = runconfig.deep_merge({"a": {"x": 1, "y": [1]}, "b": 1},
                                  {"a": {"y": [2]}, "c": 3})
    assert merged == {"a": {"x": 1, "y": [2]}, "b": 1, "c": 3}
    config = runconfig.build_run_config("data", ["cpu"], {"schemas", "generation"})
    assert set(config["parameters"]) == {"schemas", "generation"}
    assert config["parameters"]["generation"]["examples"] == 3000  # cpu over the base's 2000


def test_unknown_overlay_and_pipeline_name_the_culprit(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope"):
        runconfig.overlay_path("nope")
    with pytest.raises(ValueError, match="unknown pipeline 'dat'"):
        runconfig.build_run_config("dat", [], set())
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ValueError, match="bad.yaml: expected a mapping"):
        runconfig.load_yaml(bad)


def test_remote_overlay_has_a_cron_schedule():
    from zenml.config.schedule import Schedule

    schedule = Schedule.model_validate(runconfig.load_yaml(CONFIGS / "remote.yaml")["schedule"])
    assert schedule.cron_expression


def test_every_other_yaml_under_configs_validates():
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    from toolmodal.datagen.config import load_variants

    seen = set()
    for path in sorted(CONFIGS.rglob("*.yaml")):
        if path.parent.name == "system_prompts":
            continue
        values = runconfig.load_yaml(path)
        if path.name.endswith(".stack.yaml"):
            assert values["components"], f"{path}: a stack definition without components"
        else:
            PipelineRunConfiguration.model_validate(values)
        seen.add(path)
    assert len(load_variants(CONFIGS / "system_prompts")) >= 1
    assert CONFIGS / "cpu.yaml" in seen and CONFIGS / "full.yaml" in seen


def test_default_prompt_paths_are_project_relative():
    """Defaults hold no host path (a container or pod has another root) and resolve to files."""
    from toolmodal.datagen import GenerationConfig
    from toolmodal.evaluate import EvalConfig
    from toolmodal.paths import project_path

    folder, prompt = GenerationConfig().system_prompts_dir, EvalConfig().system_prompt_file
    assert not folder.is_absolute() and not prompt.is_absolute()
    assert project_path(folder).is_dir() and project_path(prompt).is_file()


def test_a_deployed_file_the_export_does_not_write_fails_before_the_run(tmp_path: Path):
    from toolmodal.commands.pipeline import pipeline_config

    overlay = tmp_path / "q4.yaml"
    overlay.write_text(yaml.safe_dump({"parameters": {
        "exported_file": "model-q4_k_m.gguf", "exported_lora": "model-q4_k_m.lora.gguf"}}))
    with pytest.raises(ValueError, match=r"exported_file 'model-q4_k_m.gguf' is not written.*"
                                         r"model-q8_0.gguf"):
        pipeline_config("full", ["cpu", str(overlay)])
    overlay.write_text(yaml.safe_dump({"parameters": {
        "export": {"formats": ["gguf-q4_k_m"], "correction_rank": 0},
        "exported_file": "model-q4_k_m.gguf", "exported_lora": "model-q4_k_m.lora.gguf"}}))
    with pytest.raises(ValueError, match="exported_lora 'model-q4_k_m.lora.gguf'"):
        pipeline_config("full", ["cpu", str(overlay)])
