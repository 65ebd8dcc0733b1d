"""The embedded default stack: project-local ZenML store, artifact store and MLflow.

`make run` must work with nothing running and without touching the user's global ZenML config.
`configure_environment` points ZenML at `<state>/.zen/global` (state = the project root, or
`$TOOLMODAL_STATE_DIR`, which tests use for isolation) before zenml is imported; `ensure_stack`
then registers, once, an MLflow experiment tracker and model registry on `<state>/.cache/mlflow/`
(sqlite + artifact folder) and activates a stack with them. It also keeps native libraries'
log lines (`STEP_LOG_ONLY`) in the running step's log, off the terminal.

Left out: remote stacks. Point `ZENML_CONFIG_PATH` at your own ZenML config (e.g. after
`zenml login`) and the active stack there is used as it is; nothing is registered for you.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from toolmodal.paths import PROJECT_ROOT

STACK = "toolmodal-local"
TRACKER = "toolmodal-mlflow"
REGISTRY = "toolmodal-mlflow-registry"
# Loggers of native libraries' chatter (see toolmodal.engines.llama_log): their records go to
# the running step's log (the dashboard's Logs tab) and not to the terminal of `make run`.
STEP_LOG_ONLY = ("llama_cpp.native",)
# Loggers whose INFO lines are chatter on every run ("Using categorical units to plot a list of
# strings...", "Created temporary directory ... for ephemeral docs site"): warnings only.
WARNINGS_ONLY = ("matplotlib.category", "great_expectations")


def state_dir() -> Path:
    """Folder holding `.zen/` and `.cache/mlflow/` (the project root unless overridden)."""
    return Path(os.environ.get("TOOLMODAL_STATE_DIR", PROJECT_ROOT)).resolve()


def local_config_path() -> Path:
    """The project-local ZenML config folder (store, artifact store, active stack)."""
    return state_dir() / ".zen" / "global"


def mlflow_dir() -> Path:
    """Project-local MLflow folder: `mlflow.db` (tracking + registry) and `artifacts/`."""
    return state_dir() / ".cache" / "mlflow"


def tracking_uri() -> str:
    """The sqlite tracking (and registry) URI of the embedded MLflow."""
    return f"sqlite:///{mlflow_dir() / 'mlflow.db'}"


def uses_local_stack() -> bool:
    """Whether ZenML runs on the embedded project-local store (not a user-chosen config)."""
    return Path(os.environ["ZENML_CONFIG_PATH"]).resolve() == local_config_path()


def configure_environment() -> None:
    """Set the environment ZenML reads at import time; call before importing zenml.

    Keeps an explicitly set `ZENML_CONFIG_PATH` (the way to use your own server and stack).
    Makes the project root importable (`steps`, `pipelines`, `materializers`) and the ZenML
    repository, so step sources resolve whatever the working directory.
    """
    os.environ.setdefault("ZENML_CONFIG_PATH", str(local_config_path()))
    os.environ.setdefault("ZENML_REPOSITORY_PATH", str(state_dir()))
    os.environ["ZENML_ANALYTICS_OPT_IN"] = "false"
    os.environ["ZENML_AUTO_OPEN_DASHBOARD"] = "false"
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # No per-file progress bars ("Loading weights", "Writing model shards", "Saving the
    # dataset"): chatter on the terminal, filed as errors in ZenML's step logs. Training's own
    # progress does not use them.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    (state_dir() / ".zen").mkdir(parents=True, exist_ok=True)
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))


def ensure_stack(name: str | None = None) -> str:
    """Register (first use) and activate the embedded stack; returns the active stack's name.

    Args:
        name: Another stack of the project-local store to activate instead (e.g. the
            `toolmodal-docker` stack of scripts/docker-local.sh).

    With a user-chosen `ZENML_CONFIG_PATH` the active stack is left as it is.
    """
    configure_environment()
    from zenml.client import Client
    from zenml.utils import source_utils

    source_utils.set_custom_source_root(str(PROJECT_ROOT))
    keep_in_step_logs(STEP_LOG_ONLY)
    client = Client()
    if not uses_local_stack():
        return client.active_stack_model.name
    if STACK not in {s.name for s in client.list_stacks(size=1000)}:
        _register_stack(client)
    _keep_tracking_uri(client)
    name = name or STACK
    if client.active_stack_model.name != name:
        client.activate_stack(name)
    return name


def keep_in_step_logs(names: tuple[str, ...]) -> None:
    """Route the records of loggers `names` to ZenML's step logs only (idempotent).

    Records logged outside a step go nowhere; WARNING and above are kept (the loggers' level).
    """
    import logging

    from zenml.logger import ZenMLLoggingHandler

    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        if not any(isinstance(h, ZenMLLoggingHandler) for h in logger.handlers):
            logger.addHandler(ZenMLLoggingHandler())
    for name in WARNINGS_ONLY:
        logging.getLogger(name).setLevel(logging.WARNING)


def _register_stack(client) -> None:
    """Create the MLflow tracker + registry and a stack of them on the default components."""
    from zenml.enums import StackComponentType as T

    mlflow_dir().mkdir(parents=True, exist_ok=True)
    client.create_stack_component(TRACKER, "mlflow", T.EXPERIMENT_TRACKER,
                                  {"tracking_uri": tracking_uri()})
    client.create_stack_component(REGISTRY, "mlflow", T.MODEL_REGISTRY, {})
    client.create_stack(STACK, components={
        T.ORCHESTRATOR: "default", T.ARTIFACT_STORE: "default",
        T.EXPERIMENT_TRACKER: TRACKER, T.MODEL_REGISTRY: REGISTRY})


def _keep_tracking_uri(client) -> None:
    """Re-point the tracker when the project folder moved (its URI is an absolute path)."""
    from zenml.enums import StackComponentType as T

    tracker = client.get_stack_component(T.EXPERIMENT_TRACKER, TRACKER)
    if tracker.configuration.get("tracking_uri") != tracking_uri():
        client.update_stack_component(TRACKER, T.EXPERIMENT_TRACKER,
                                      configuration={"tracking_uri": tracking_uri()})


def ensure_experiment(name: str) -> None:
    """Create the MLflow experiment with its artifacts under `.cache/mlflow/artifacts/`.

    ZenML's tracker names the experiment after the pipeline; created by it, a sqlite-backed
    experiment would write its artifacts to `./mlruns` of whatever the working directory is.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri())
    if client.get_experiment_by_name(name) is None:
        location = (mlflow_dir() / "artifacts" / name).as_uri()
        client.create_experiment(name, artifact_location=location)


def work_dir() -> Path:
    """A folder for the running step's own files, `.cache/work/<step>/<cache key>/`.

    Keyed by the step's cache key, so a step retried with the same inputs finds its files again
    (training resumes from its checkpoints); folders of older runs of the same step are removed.
    Only valid inside a step.
    """
    import shutil

    from zenml import get_step_context

    run = get_step_context().step_run
    root = state_dir() / ".cache" / "work" / run.name
    key = (run.cache_key or str(run.id))[:16]
    if root.is_dir():
        for old in root.iterdir():
            if old.name != key:
                shutil.rmtree(old)
    path = root / key
    path.mkdir(parents=True, exist_ok=True)
    return path
