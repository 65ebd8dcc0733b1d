"""What `toolmodal dashboard` prepares and prints: a ready local user, the latest run's pages.

A fresh ZenML server opens on its onboarding form ("Add your account details", a pre-ticked
news opt-in) until the user has answered it, and shows a getting-started checklist until the
server's onboarding state says it is finished. On the project-local store `ready_local_user`
records both answers the way ZenML's own server does (user: `email_opted_in=False` and
`finished_onboarding_survey` in its metadata; server: the `oss_onboarding_completed` step), so
the dashboard opens on the runs. `latest_run_links` gives the page of the latest run (its DAG)
and of its MLflow run.

Left out: starting and stopping the servers (`toolmodal.commands.pipeline.dashboard`) and any
set-up of a server the user configured themselves (`ZENML_CONFIG_PATH`): theirs to answer.
"""

from __future__ import annotations

from zenml.client import Client
from zenml.enums import OnboardingStep

# The key ZenML's dashboard sets in the user's metadata when its survey is answered or skipped.
SURVEY_DONE = "finished_onboarding_survey"


def ready_local_user(client: Client) -> None:
    """Answer the onboarding of the local store's default user (news opt-in off) and finish
    the server's getting-started checklist. Idempotent."""
    user = client.get_user(client.active_user.id, hydrate=True)
    metadata = dict(user.user_metadata or {})
    if user.email_opted_in is not False or not metadata.get(SURVEY_DONE):
        client.update_user(user.id, updated_email_opt_in=False,
                           updated_metadata={**metadata, SURVEY_DONE: True})
    client.zen_store.update_onboarding_state({OnboardingStep.OSS_ONBOARDING_COMPLETED.value})


def latest_run_links(client: Client, zenml_url: str, mlflow_url: str) -> dict[str, str]:
    """URLs of the latest pipeline run: "run" (its DAG page) and "mlflow" (its MLflow run).

    Returns an empty dict when the store holds no run, and no "mlflow" entry when no step of
    the run used the experiment tracker (e.g. the `data` pipeline).
    """
    runs = client.list_pipeline_runs(sort_by="desc:created", size=1)
    if not runs.items:
        return {}
    run = runs.items[0]
    links = {"run": f"{zenml_url}/projects/{run.project.name}/runs/{run.id}"}
    for step in client.list_run_steps(pipeline_run_id=run.id, size=1000).items:
        metadata = client.get_run_step(step.id).run_metadata
        if "mlflow_run_id" in metadata:
            links["mlflow"] = (f"{mlflow_url}/#/experiments/{metadata['mlflow_experiment_id']}"
                               f"/runs/{metadata['mlflow_run_id']}")
            break
    return links
