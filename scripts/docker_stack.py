"""The `toolmodal-docker` ZenML stack: register it, and run a pipeline on it.

Called by `scripts/docker-local.sh` (`up` registers, `run` runs) once its Docker engine is up
and `DOCKER_HOST` points at it. The stack lives on the project-local ZenML store next to
`toolmodal-local` and shares its artifact store, MLflow tracker and registry; it swaps in a
`local_docker` orchestrator (every step in its own container of the CPU image) and the local
image builder that orchestrator requires. Containers see the host's paths unchanged: ZenML
mounts its local stores (SQLite store + artifact store), the orchestrator config adds the
MLflow folder, and they use the host's network (the daemon has no bridge).

Left out: building images and the daemon (the shell script), the pipelines' configuration
(`configs/docker.yaml` overlay), remote stacks (`configs/stacks/`, docs/gpu-stack.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from toolmodal import runconfig, stack  # noqa: E402

DOCKER_STACK = "toolmodal-docker"
ORCHESTRATOR = "toolmodal-docker-orchestrator"
IMAGE_BUILDER = "toolmodal-image-builder"
OVERLAY = runconfig.CONFIG_DIR / "docker.yaml"


def orchestrator_config() -> dict:
    """local_docker settings: host network, the MLflow folder mounted at its host path."""
    mlflow = str(stack.mlflow_dir())
    return {"run_args": {"network_mode": "host",
                         "volumes": {mlflow: {"bind": mlflow, "mode": "rw"}}}}


def register() -> None:
    """Register (or update) the docker stack's components and the stack; idempotent."""
    stack.ensure_stack()
    from zenml.client import Client
    from zenml.enums import StackComponentType as T

    client = Client()
    stack.mlflow_dir().mkdir(parents=True, exist_ok=True)
    names = {c.name for c in client.list_stack_components(size=1000)}
    if IMAGE_BUILDER not in names:
        client.create_stack_component(IMAGE_BUILDER, "local", T.IMAGE_BUILDER, {})
    if ORCHESTRATOR in names:
        client.update_stack_component(ORCHESTRATOR, T.ORCHESTRATOR,
                                      configuration=orchestrator_config())
    else:
        client.create_stack_component(ORCHESTRATOR, "local_docker", T.ORCHESTRATOR,
                                      orchestrator_config())
    if DOCKER_STACK not in {s.name for s in client.list_stacks(size=1000)}:
        client.create_stack(DOCKER_STACK, components={
            T.ORCHESTRATOR: ORCHESTRATOR, T.ARTIFACT_STORE: "default",
            T.IMAGE_BUILDER: IMAGE_BUILDER, T.EXPERIMENT_TRACKER: stack.TRACKER,
            T.MODEL_REGISTRY: stack.REGISTRY})
    print(f"[docker-local] stack {DOCKER_STACK}: registered on {stack.local_config_path()}")


def run(pipeline: str, overlays: list[str]) -> int:
    """Run `pipeline` on the docker stack with `overlays`, exactly as `toolmodal run` does."""
    from toolmodal.commands.pipeline import run_and_report

    return run_and_report(pipeline, overlays, DOCKER_STACK)


def main() -> int:
    """`docker_stack.py register` or `docker_stack.py run PIPELINE [--config OVERLAY ...]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("register", help="register the toolmodal-docker stack")
    run_parser = sub.add_parser("run", help="run a pipeline on the toolmodal-docker stack")
    run_parser.add_argument("pipeline", choices=runconfig.PIPELINES)
    run_parser.add_argument("--config", action="append", default=None,
                            help="overlays before configs/docker.yaml (default: cpu)")
    args = parser.parse_args()
    if args.command == "register":
        register()
        return 0
    overlays = [*(args.config or runconfig.DEFAULT_OVERLAYS), str(OVERLAY)]
    return run(args.pipeline, overlays)


if __name__ == "__main__":
    sys.exit(main())
