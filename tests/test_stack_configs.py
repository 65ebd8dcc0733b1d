"""The container and remote-stack configs, checked against ZenML's (and accelerate's) own classes.

Nothing here needs Docker, Kubernetes or a GPU: the Kubernetes settings and flavor classes
import without the `kubernetes` package. Secret references (`{{secret.key}}`) are resolved by
ZenML at registration; here each is replaced by a dummy value before validation.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
import yaml

# Importing the pipelines configures ZenML's environment: keep it off the project.
pytestmark = pytest.mark.usefixtures("isolated_zenml")

REPO = Path(__file__).resolve().parent.parent
STACK_FILE = REPO / "configs" / "stacks" / "kubernetes-gpu.stack.yaml"
RUN_FILE = REPO / "configs" / "stacks" / "kubernetes-gpu.yaml"
SCHEDULE_FILE = REPO / "configs" / "remote.yaml"  # the `remote` overlay carries the schedule
DOCKER_OVERLAY = REPO / "configs" / "docker.yaml"
K8S = "orchestrator.kubernetes"
GPU_TRAINING_STEPS = ["sft_selection", "sft_arguments", "sft_joint", "grpo"]
GPU_EVAL_STEPS = ["evaluate_base", "evaluate_sft", "evaluate_grpo"]


def load(path: Path) -> dict:
    """One YAML mapping."""
    return yaml.safe_load(path.read_text())


def project_version() -> str:
    """The project's version from pyproject.toml (the images' tag)."""
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


@pytest.fixture(scope="module")
def flavors() -> dict:
    """The flavor of each component type of the GPU stack, from ZenML's integrations."""
    from zenml.image_builders import LocalImageBuilderFlavor
    from zenml.integrations.aws.flavors.aws_container_registry_flavor import (
        AWSContainerRegistryFlavor,
    )
    from zenml.integrations.kubernetes.flavors.kubernetes_orchestrator_flavor import (
        KubernetesOrchestratorFlavor,
    )
    from zenml.integrations.mlflow.flavors.mlflow_experiment_tracker_flavor import (
        MLFlowExperimentTrackerFlavor,
    )
    from zenml.integrations.mlflow.flavors.mlflow_model_registry_flavor import (
        MLFlowModelRegistryFlavor,
    )
    from zenml.integrations.s3.flavors.s3_artifact_store_flavor import S3ArtifactStoreFlavor

    return {"orchestrator": KubernetesOrchestratorFlavor(),
            "artifact_store": S3ArtifactStoreFlavor(),
            "container_registry": AWSContainerRegistryFlavor(),
            "image_builder": LocalImageBuilderFlavor(),
            "experiment_tracker": MLFlowExperimentTrackerFlavor(),
            "model_registry": MLFlowModelRegistryFlavor()}


def without_secrets(configuration: dict) -> dict:
    """`configuration` with every `{{secret.key}}` reference replaced by a dummy value."""
    from zenml.utils import secret_utils

    return {key: "dummy" if secret_utils.is_secret_reference(value) else value
            for key, value in configuration.items()}


def test_stack_components_validate_against_their_flavor_configs(flavors):
    components = load(STACK_FILE)["components"]
    assert set(components) == set(flavors), "one component per type the stack needs"
    for kind, component in components.items():
        flavor = flavors[kind]
        assert component["flavor"] == flavor.name, f"{kind}: flavor {component['flavor']!r}"
        assert flavor.type.value == kind
        config = flavor.config_class(**without_secrets(component["configuration"]))
        assert not config.is_local, f"{kind} {component['name']} must not be a local component"


def test_tracker_credentials_are_secret_references():
    from zenml.utils import secret_utils

    tracker = load(STACK_FILE)["components"]["experiment_tracker"]["configuration"]
    assert tracker["tracking_uri"].startswith("https://")
    for key in ("tracking_username", "tracking_password"):
        assert secret_utils.is_secret_reference(tracker[key]), f"{key} must not be plain text"


def test_run_overlay_is_a_zenml_run_configuration():
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    config = PipelineRunConfiguration.model_validate(load(RUN_FILE))
    assert set(GPU_TRAINING_STEPS) <= set(config.steps)
    assert config.schedule is None, "scheduling is the `remote` overlay's job"
    assert PipelineRunConfiguration.model_validate(load(SCHEDULE_FILE)).schedule


def test_settings_validate_against_zenml_settings_classes():
    from zenml.config import DockerSettings, ResourceSettings
    from zenml.integrations.kubernetes.flavors.kubernetes_orchestrator_flavor import (
        KubernetesOrchestratorSettings,
    )

    run = load(RUN_FILE)
    docker = DockerSettings(**run["settings"]["docker"])
    assert docker.parent_image.endswith(f"/toolmodal-cuda:{project_version()}")
    assert not docker.install_stack_requirements, "the image pins every requirement itself"
    KubernetesOrchestratorSettings(**run["settings"][K8S])
    pod({K8S: {"pod_settings": run["settings"][K8S]["orchestrator_pod_settings"]}})
    for name, step in run["steps"].items():
        KubernetesOrchestratorSettings(**step["settings"][K8S])
        pod(step["settings"])
        # ZenML 0.98's Kubernetes orchestrator ignores ResourceSettings (with a warning):
        # GPUs must be asked for in the pod's resources, so no step may rely on them.
        assert ResourceSettings(**step["settings"].get("resources", {})).empty, name


def pod(settings: dict):
    """The KubernetesPodSettings of one `orchestrator.kubernetes` settings block.

    KubernetesPodSettings only warns about a misspelt Kubernetes field; deserializing each
    block into the Kubernetes client's own model raises instead.
    """
    from zenml.integrations.kubernetes.pod_settings import KubernetesPodSettings
    from zenml.integrations.kubernetes.serialization_utils import deserialize_kubernetes_model

    values = settings[K8S]["pod_settings"]
    deserialize_kubernetes_model(values.get("resources", {}), "V1ResourceRequirements")
    for key, model in (("tolerations", "V1Toleration"), ("volumes", "V1Volume"),
                       ("volume_mounts", "V1VolumeMount")):
        for item in values.get(key, []):
            deserialize_kubernetes_model(item, model)
    return KubernetesPodSettings(**values)


def gpus(pod_settings) -> int:
    """GPUs a pod asks for (its `nvidia.com/gpu` limit; 0 when absent)."""
    return int(pod_settings.resources.get("limits", {}).get("nvidia.com/gpu", 0))


def test_gpu_steps_land_on_gpu_nodes_and_the_rest_on_cpu_nodes():
    run = load(RUN_FILE)
    default = pod(run["settings"])
    assert gpus(default) == 0 and "cpu" in default.node_selectors["eks.amazonaws.com/nodegroup"]
    expected = {**dict.fromkeys(GPU_TRAINING_STEPS, 4),
                **dict.fromkeys(["evaluate", *GPU_EVAL_STEPS], 1)}
    for name, count in expected.items():
        settings = pod(run["steps"][name]["settings"])
        assert gpus(settings) == count, name
        assert "gpu" in settings.node_selectors["eks.amazonaws.com/nodegroup"], name
        assert any(t["key"] == "nvidia.com/gpu" for t in settings.tolerations), name


def test_configured_steps_are_steps_of_the_full_pipeline():
    """ZenML only warns about (and ignores) settings of a step id the pipeline lacks."""
    from toolmodal.commands.pipeline import load_pipeline, pipeline_config

    pipeline = load_pipeline("full")
    config = pipeline_config("full", ["gpu", str(RUN_FILE)])
    pipeline.prepare(**config["parameters"])
    # `evaluate` is the id in the evaluation pipeline, which needs stored artifacts to compile.
    unknown = set(load(RUN_FILE)["steps"]) - {"evaluate"} - set(pipeline.invocations)
    assert not unknown, f"not step ids of the full pipeline: {unknown}"
    assert "evaluate_exported" in pipeline.invocations, "runs on CPU nodes by default"


def test_retry_and_schedule_validate():
    from zenml.config.retry_config import StepRetryConfig
    from zenml.config.schedule import Schedule

    retry = StepRetryConfig(**load(RUN_FILE)["retry"])
    assert retry.max_retries >= 1
    assert retry.delay == 0 and retry.backoff == 0, "the Kubernetes orchestrator ignores both"
    schedule = Schedule(**load(SCHEDULE_FILE)["schedule"])
    fields = schedule.cron_expression.split()
    assert len(fields) == 5 and all(re.fullmatch(r"[\d*/,-]+", f) for f in fields)


def test_accelerate_arguments_are_accepted_by_accelerate_launch(tmp_path):
    """The training stages' launch (stage configs as the GPU run merges them) parses in
    `accelerate launch`'s own parser, with one process per GPU of the step's pod."""
    from accelerate.commands.launch import launch_command_parser

    from toolmodal.commands.pipeline import pipeline_config
    from toolmodal.training.config import load_stage_config
    from toolmodal.training.launch import launch_command

    parameters = pipeline_config("full", ["gpu", str(RUN_FILE)])["parameters"]
    for name in GPU_TRAINING_STEPS:
        (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(parameters[name]))
        config = load_stage_config(name, tmp_path / f"{name}.yaml")
        command = launch_command(config, tmp_path / "model", tmp_path / "data", tmp_path / "out",
                                 tmp_path / f"{name}.yaml", 29500)
        assert command[1:3] == ["-m", "accelerate.commands.launch"], name
        args = launch_command_parser().parse_args(command[3:])  # exits on an unknown option
        assert args.num_processes == gpus(pod(load(RUN_FILE)["steps"][name]["settings"])), name
        assert args.multi_gpu and args.mixed_precision == "bf16" and args.module, name
        assert [args.training_script, *args.training_script_args][:2] == ["toolmodal.cli",
                                                                          "train"], name


def test_docker_overlay_uses_the_image_the_script_builds():
    from zenml.config import DockerSettings

    docker = DockerSettings(**load(DOCKER_OVERLAY)["settings"]["docker"])
    script = (REPO / "scripts" / "docker-local.sh").read_text()
    assert docker.parent_image == f"toolmodal-cpu:{project_version()}"
    assert 'IMAGE="toolmodal-cpu:$VERSION"' in script
    assert docker.allow_download_from_artifact_store and not docker.install_stack_requirements


def test_images_pin_the_projects_torch():
    pins = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(p for p in pins if p.startswith("torch=="))
    cpu = (REPO / "docker" / "Dockerfile.cpu").read_text()
    cuda = (REPO / "docker" / "Dockerfile.cuda").read_text()
    assert f'"{torch}+cpu"' in cpu
    assert f'"{torch}"' in cuda and '"/src[gpu]"' in cuda


def test_docs_register_every_component_as_configured():
    docs = (REPO / "docs" / "gpu-stack.md").read_text()
    commands = " ".join(docs.replace("\\\n", " ").split())
    for kind, component in load(STACK_FILE)["components"].items():
        command = f"zenml {kind.replace('_', '-')} register {component['name']} " \
                  f"--flavor={component['flavor']}"
        assert command in commands, f"docs/gpu-stack.md lacks `{command}`"
        for key, value in component["configuration"].items():
            assert f"--{key}={value}" in commands, f"{component['name']}: --{key}={value}"
