"""The teacher endpoint through the `openai` client, against a local fake OpenAI-compatible server:
paraphrases come back, failures are retried then dropped, and the key (a unique marker) reaches
the server's Authorization header but no log, error, config dump, dataset card, dataset row,
MLflow parameter or file of a pipeline run's ZenML store."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from toolmodal import reports, tracking
from toolmodal.datagen import GenerationConfig, generate_dataset
from toolmodal.datagen.teacher import Teacher
from toolmodal.schema import Catalogue

REPO = Path(__file__).resolve().parent.parent
# the generator's default phase shares: the cpu overlay's 0.1 / 0.1 / 0.8 leave 80 examples no
# selection or arguments validation rows (the generator stops, naming them)
TINY_PHASES = GenerationConfig().phase_shares
CATALOGUE = Path(__file__).parent / "data" / "datagen" / "catalogue.json"
SOURCES = ["weather/openai_weather_tools.json", "math/bfcl_math.json"]
PREFIX = "Kindly: "  # the fake teacher's paraphrase keeps the query, so it stays grounded


class FakeTeacher(BaseHTTPRequestHandler):
    """`POST /v1/chat/completions`: echoes the user message behind PREFIX, or fails on demand."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        server.seen.append({"path": self.path, "auth": self.headers.get("Authorization"),
                            "body": body})
        status = server.statuses.pop(0) if server.statuses else 200
        if status != 200:
            self._reply(status, {"error": {"message": "unavailable", "type": "server_error"}})
            return
        query = body["messages"][-1]["content"]
        self._reply(200, {"id": "c1", "object": "chat.completion", "created": 0,
                          "model": body["model"], "choices": [{
                              "index": 0, "finish_reason": "stop",
                              "message": {"role": "assistant", "content": PREFIX + query}}]})

    def _reply(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture()
def endpoint():
    """A fake OpenAI-compatible server on a free port; yields the server (its `url`)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeTeacher)
    server.seen, server.statuses = [], []
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture()
def marker() -> str:
    """A key no other text contains."""
    return f"sk-marker-{uuid.uuid4().hex}"


@pytest.fixture()
def teacher_env(monkeypatch, endpoint, marker):
    monkeypatch.setenv("TOOLMODAL_TEACHER_URL", endpoint.url)
    monkeypatch.setenv("TOOLMODAL_TEACHER_MODEL", "fake-teacher")
    monkeypatch.setenv("TOOLMODAL_TEACHER_KEY", marker)
    monkeypatch.setenv("OPENAI_LOG", "debug")  # the client's own debug logging, at its loudest


def test_paraphrase_sends_the_key_only_in_the_header(teacher_env, endpoint, marker, caplog):
    with caplog.at_level(logging.DEBUG):
        teacher = Teacher.from_env()
        assert teacher.paraphrase("weather in Oslo") == PREFIX + "weather in Oslo"
    assert endpoint.seen[0]["path"] == "/v1/chat/completions"
    assert endpoint.seen[0]["auth"] == f"Bearer {marker}"
    assert endpoint.seen[0]["body"]["temperature"] == 0
    assert marker not in repr(teacher)
    assert caplog.records, "the client logged nothing at DEBUG: the check below would be empty"
    assert marker not in caplog.text


def test_server_errors_are_retried_by_the_client(endpoint, marker):
    endpoint.statuses = [503]
    teacher = Teacher(url=endpoint.url, model="m", key=marker, max_retries=1)
    assert teacher.paraphrase("weather in Oslo") == PREFIX + "weather in Oslo"
    assert len(endpoint.seen) == 2


def test_failure_keeps_the_query_and_logs_no_key(endpoint, marker, caplog):
    endpoint.statuses = [500, 500]
    teacher = Teacher(url=endpoint.url, model="m", key=marker, max_retries=1)
    with caplog.at_level(logging.DEBUG):
        assert teacher.paraphrase("weather in Oslo") is None
    assert "InternalServerError" in caplog.text and endpoint.url in caplog.text
    assert marker not in caplog.text


def test_unreachable_endpoint_is_a_logged_failure(caplog):
    teacher = Teacher(url="http://127.0.0.1:9/v1", model="m", key="k", timeout=2, max_retries=0)
    with caplog.at_level(logging.WARNING):
        assert teacher.paraphrase("weather in Oslo") is None
    assert "APIConnectionError" in caplog.text


def test_no_key_sends_no_user_key(monkeypatch, endpoint):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-user-global-key")  # must not leak to the endpoint
    teacher = Teacher(url=endpoint.url, model="m")
    assert teacher.paraphrase("weather in Oslo") is not None
    assert "sk-user-global-key" not in (endpoint.seen[0]["auth"] or "")


def test_generation_with_teacher_keeps_the_key_out_of_everything(teacher_env, endpoint, marker,
                                                                   caplog, capfd):
    config = GenerationConfig(examples=120, seed=2, teacher=True, teacher_share=1.0)
    catalogue = Catalogue.from_json(CATALOGUE.read_text())
    with caplog.at_level(logging.DEBUG):
        dataset, card = generate_dataset(catalogue, config)
    rows = [row for split in dataset.values() for row in split.to_list()]
    assert endpoint.seen and all(s["auth"] == f"Bearer {marker}" for s in endpoint.seen)
    assert card["teacher_used"] is True
    assert any(PREFIX in json.dumps(row["prompt"]) for row in rows), "no paraphrase was kept"
    texts = {
        "log": caplog.text,
        "terminal": "".join(capfd.readouterr()),
        "card": json.dumps(card, default=str),
        "card page": reports.dataset_card_page(card, b""),
        "config dump": config.model_dump_json(),
        "MLflow params": json.dumps(tracking.flatten(config.model_dump(mode="json"))),
        "rows": json.dumps(rows, default=str),
    }
    assert [name for name, text in texts.items() if marker in text] == []


# The validation gate's verdict on so small a dataset is not this test's business: the steps'
# statuses are printed whether or not the run fails.
PIPELINE_SCRIPT = textwrap.dedent("""
    import json, sys
    from toolmodal.commands.pipeline import run_pipeline
    try:
        run_pipeline("data", ["cpu", sys.argv[1]])
    except RuntimeError as exc:
        print(f"run failed: {exc}", file=sys.stderr)
    from zenml.client import Client
    run = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    print("STEPS " + json.dumps({n: s.status.value for n, s in run.steps.items()}), flush=True)
""")


def test_data_pipeline_with_teacher_stores_no_key(tmp_path, endpoint, marker):
    """The `data` pipeline with the teacher on: no file of its ZenML state holds the key."""
    for source in SOURCES:  # the catalogue and size tests/test_pipeline_data.py validates
        (tmp_path / "schemas" / source).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "data" / "tool_schemas" / source, tmp_path / "schemas" / source)
    overlay = tmp_path / "teacher.yaml"
    overlay.write_text(yaml.safe_dump({"parameters": {
        "schemas": str(tmp_path / "schemas"),
        "generation": {"examples": 80, "seed": 1, "teacher": True, "teacher_share": 1.0,
                       "phase_shares": TINY_PHASES}}}))
    state = tmp_path / "state"
    env = {**os.environ, "TOOLMODAL_STATE_DIR": str(state), "OPENAI_LOG": "debug",
           "TOOLMODAL_TEACHER_URL": endpoint.url, "TOOLMODAL_TEACHER_MODEL": "fake-teacher",
           "TOOLMODAL_TEACHER_KEY": marker}
    env.pop("ZENML_CONFIG_PATH", None)
    env.pop("ZENML_REPOSITORY_PATH", None)
    result = subprocess.run([sys.executable, "-c", PIPELINE_SCRIPT, str(overlay)], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    steps = json.loads(re.search(r"^STEPS (.*)$", result.stdout, re.M)[1])
    assert steps["generate_data"] == "completed", result.stderr[-4000:]
    assert endpoint.seen, "the pipeline never called the teacher"
    assert marker not in result.stdout + result.stderr
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".db") for p in files) and len(files) > 10
    assert any(PREFIX.encode() in p.read_bytes() for p in files), "paraphrases not found"
    assert [str(p) for p in files if marker.encode() in p.read_bytes()] == []
