"""`toolmodal run | dashboard | watch`: the pipelines on the embedded project-local stack.

`run` merges `configs/<pipeline>.yaml` with the overlays (default: cpu), adds the schema files
as cache dependencies of ingestion, runs the pipeline and prints a closing summary: every step
with its status (cached or run) and time, the metrics table of the evaluations, and the command
that serves the deployed model as it was evaluated.
`--schemas PATH... / --mcp "COMMAND ARGS" / --python MODULE` train on a user's catalogue instead
of the bundled one: it is read here first, so a bad file fails (strict, the default) before any
step runs, or (`--lenient`) what was skipped is printed; the step reads it again when it runs.
Left out: the pipelines' content (`pipelines/`), stack registration (`toolmodal.stack`) and the
watch loop (`toolmodal.watch`).
"""

from __future__ import annotations

import argparse
import inspect
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from toolmodal import reports, runconfig, stack
from toolmodal.commands.schemas import summary
from toolmodal.ingest import SchemaError, sources


def load_pipeline(name: str):
    """The ZenML pipeline object called `name` (data, training, evaluation or full)."""
    stack.configure_environment()
    if name == "data":
        from pipelines.data import data_pipeline as pipeline
    elif name == "training":
        from pipelines.training import training_pipeline as pipeline
    elif name == "evaluation":
        from pipelines.evaluation import evaluation_pipeline as pipeline
    elif name == "full":
        from pipelines.full import full_pipeline as pipeline
    else:
        raise ValueError(f"unknown pipeline {name!r}; choose from {runconfig.PIPELINES}")
    return pipeline


def pipeline_config(name: str, overlays: list[str | dict], parameters: dict | None = None
                    ) -> dict:
    """The merged run configuration of `name`, with ingestion's cache settings.

    Args:
        name: Pipeline name.
        overlays: Overlay names, YAML paths or mappings, applied in order.
        parameters: Pipeline parameters applied last (e.g. the folder `watch` watches).
    """
    pipeline = load_pipeline(name)
    params = set(inspect.signature(pipeline.entrypoint).parameters)
    config = runconfig.build_run_config(name, overlays, params)
    config = runconfig.deep_merge(config, {"parameters": parameters or {}})
    if name == "full":
        from toolmodal.export import ExportConfig, check_deployed

        merged = config["parameters"]
        check_deployed(ExportConfig.model_validate(merged["export"]), merged["exported_file"],
                       merged["exported_lora"])
    return runconfig.with_ingest_cache(config)


def run_pipeline(name: str, overlays: list[str | dict], parameters: dict | None = None,
                 stack_name: str | None = None):
    """Run pipeline `name` with `overlays` (then `parameters` on top).

    Returns ZenML's run, or None when the config has a schedule (the orchestrator runs it).

    Args:
        stack_name: A stack of the project-local store to run on (default: toolmodal-local).
    """
    stack.ensure_stack(stack_name)
    config = pipeline_config(name, overlays, parameters or {})
    pipeline = load_pipeline(name)
    if stack.uses_local_stack():
        stack.ensure_experiment(pipeline.name)
    path = stack.state_dir() / ".zen" / "run-configs" / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return pipeline.with_options(config_path=str(path))()


def step_rows(run) -> list[dict]:
    """One row per step of a finished run: name, status, seconds."""
    rows = []
    for name, step_run in run.steps.items():
        end, start = step_run.end_time, step_run.start_time
        ran = step_run.status.value == "completed" and end and start
        rows.append({"step": name, "status": step_run.status.value,
                     "seconds": round((end - start).total_seconds()) if ran else None})
    return rows


def metrics_rows(run) -> list[dict]:
    """The evaluation table of the run (from `promote_model`'s `eval_table`), if it has one."""
    if "promote_model" not in run.steps:
        return []
    return run.steps["promote_model"].outputs["eval_table"][0].load()


def outcome_table(run) -> list[dict]:
    """Where the deployed model's rows end up (`evaluate_exported`'s report), if the run has it."""
    if "evaluate_exported" not in run.steps:
        return []
    exported = run.steps["evaluate_exported"].outputs["eval_exported"][0].load()
    return reports.outcome_rows(exported.label, exported.report)


def serve_commands(run, modes: list[str]) -> list[str]:
    """The commands serving the run's deployed model as it was evaluated (its GGUF in the
    artifact store, the correction LoRA if any, the call threshold `calibrate_call` chose), one
    per mask mode in `modes` (those of its evaluation); none if the run has no
    `calibrate_call` step."""
    from materializers.model_dir import SUBDIR

    if "calibrate_call" not in run.steps:
        return []
    step = run.steps["calibrate_call"]
    folder = f"{step.inputs['model'][0].uri}/{SUBDIR}"
    threshold = step.outputs["call_decision"][0].load().threshold
    lora = step.config.parameters["lora_file"]
    engine = step.config.parameters["engine"]
    command = (f"toolmodal serve --model {folder}/{step.config.parameters['model_file']}"
               + f" --engine {engine}"
               + ("" if lora is None else f" --lora {folder}/{lora}")
               + ("" if threshold is None else f" --call-threshold {threshold}"))
    return [command + ("" if mode == "none" else f" --mask {mode}")
            for mode in modes]


def run(args: argparse.Namespace) -> int:
    """`toolmodal run PIPELINE [--config OVERLAY ...] [--stack NAME] [--schemas PATH...]
    [--mcp "COMMAND ARGS" ...] [--python MODULE[:FUNCTION] ...] [--lenient]`; 1 before any
    step runs if the user's catalogue is bad."""
    overlays: list[str | dict] = list(args.config or runconfig.DEFAULT_OVERLAYS)
    user = runconfig.UserCatalogue([runconfig.cli_path(p) for p in args.schemas], args.mcp,
                                   args.python, args.lenient, args.mcp_timeout)
    if user.given or user.lenient:
        if args.pipeline not in ("data", "full"):
            print(f"error: --schemas, --mcp, --python and --lenient apply to the data and full "
                  f"pipelines, not {args.pipeline!r}", file=sys.stderr)
            return 2
        if user.given and not check_catalogue(user):
            return 1
        overlays.append(user.overlay())
    return run_and_report(args.pipeline, overlays, args.stack)


def check_catalogue(user: runconfig.UserCatalogue) -> bool:
    """Read a user's catalogue as the ingestion step will; print what is wrong or skipped.

    Strict: any problem (each line names file, tool and field) stops the run. Lenient: every
    skipped tool is printed with its reason, then the tools and skips per file; only a catalogue
    without any tool stops the run. Servers are started and read once here, modules imported.

    Returns:
        Whether the pipeline may start.
    """
    paths = [str(runconfig.project_path(p)) for p in user.paths]
    try:
        ingested = sources.read_sources(paths, user.servers, user.lenient, user.mcp_timeout,
                                        user.modules)
    except SchemaError as exc:  # a server that could not be started or read
        print(f"error: {exc}", file=sys.stderr)
        return False
    tools, errors, notes = ingested
    for line in [*(f"note: {n}" for n in notes),
                 *(f"{'skipped' if user.lenient else 'error'}: {e}" for e in errors)]:
        print(line, file=sys.stderr)
    sys.stderr.flush()
    if errors and not user.lenient:
        print(f"{len(errors)} error(s) in the catalogue; nothing was run (--lenient keeps "
              "every tool that can be represented)", file=sys.stderr)
        return False
    if not tools:
        print("error: no tool could be read from the catalogue", file=sys.stderr)
        return False
    if errors:
        print(reports.text_table(skip_rows(summary(ingested, paths, user.servers,
                                                   user.modules))))
    print(f"catalogue: {len(tools)} tools, {len({t.category for t in tools})} categories, "
          f"{len(errors)} skipped")
    return True


def skip_rows(report: dict) -> list[dict]:
    """One row per file, server or module with skipped tools: tools kept, skipped, the commonest
    reason (from the `schemas check --lenient --json` summary)."""
    return [{"source": name, "tools": entry["tools"], "skipped": sum(entry["skipped"].values()),
             "main reason": max(entry["skipped"], key=entry["skipped"].get)}
            for name, entry in report["files"].items() if entry["skipped"]]


def run_and_report(name: str, overlays: list[str | dict], stack_name: str | None = None) -> int:
    """Run a pipeline, print its step table and metrics table; the exit code of `run`."""
    started = time.monotonic()
    result = run_pipeline(name, overlays, stack_name=stack_name)
    if result is None:
        print(f"{name}: scheduled on the active stack's orchestrator (no run started now)")
        return 0
    result = result.get_hydrated_version()
    print(f"\n{result.name}: {result.status.value} in {time.monotonic() - started:.0f} s "
          f"(ZenML run id {result.id})\n")
    print(reports.text_table(step_rows(result)))
    if result.status.value == "completed":
        table = metrics_rows(result)
        if table:
            print("\nPer test set and mask: value % [95% Wilson interval], /n where the count "
                  "is not the set's rows\n" + reports.text_table(reports.interval_cells(table)))
        outcomes = outcome_table(result)
        if outcomes:
            print(f"\nThe deployed model. {reports.OUTCOMES_NOTE}\n"
                  + reports.text_table(outcomes))
        modes = list(dict.fromkeys(row["mask"] for row in outcomes)) or ["none"]
        commands = serve_commands(result, modes)
        if commands:
            print("\nServe the deployed model as evaluated (one line per mask mode):\n"
                  + "\n".join(f"    {command}" for command in commands))
    return 0 if result.status.value == "completed" else 1


def dashboard(args: argparse.Namespace) -> int:
    """`toolmodal dashboard`: ZenML's local server and the MLflow UI until Ctrl-C.

    On the project-local store the local user's onboarding is answered first (no form, news
    opt-in off; see `toolmodal.dashboard`); the URLs of the latest run's DAG page and of its
    MLflow run are printed beside the root URLs.
    """
    stack.ensure_stack()
    from zenml.client import Client

    from toolmodal.dashboard import latest_run_links, ready_local_user

    zenml_url, mlflow_url = f"http://127.0.0.1:{args.port}", f"http://127.0.0.1:{args.mlflow_port}"
    if stack.uses_local_stack():
        ready_local_user(Client())
    links = latest_run_links(Client(), zenml_url, mlflow_url)
    zenml = Path(sys.executable).parent / "zenml"
    mlflow = Path(sys.executable).parent / "mlflow"
    subprocess.run([str(zenml), "login", "--local", "--ip-address", "127.0.0.1",
                    "--port", str(args.port)], check=True)
    ui = subprocess.Popen([str(mlflow), "server", "--workers", "1", "--host", "127.0.0.1",
                           "--port", str(args.mlflow_port),
                           "--backend-store-uri", stack.tracking_uri()])
    print(f"ZenML dashboard: {zenml_url}\nMLflow UI:       {mlflow_url}")
    print(f"Latest run DAG:  {links.get('run', 'no run yet (toolmodal run data)')}")
    if links:
        print(f"Its MLflow run:  {links.get('mlflow', 'none (no step of it used the tracker)')}")
    print("Ctrl-C stops both.", flush=True)
    try:
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        ui.wait()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:  # logout first: it restores the store config, whatever the MLflow UI does
        ui.terminate()
        subprocess.run([str(zenml), "logout", "--local"], check=False)
        ui.wait(timeout=120)
    return 0


def watch(args: argparse.Namespace) -> int:
    """`toolmodal watch`: run `full` whenever the schema folder's catalogue hash changes."""
    from toolmodal.watch import watch_loop

    overlays = args.config or runconfig.DEFAULT_OVERLAYS

    def trigger(folder: Path) -> bool:
        result = run_pipeline("full", overlays, {"schemas": str(folder)})
        return result.get_hydrated_version().status.value == "completed"

    return watch_loop(runconfig.project_path(args.schemas), args.interval, args.once, trigger)
