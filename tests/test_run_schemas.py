"""`toolmodal run data|full --schemas PATH... --mcp "COMMAND ARGS" --python MODULE --lenient`:
training on a user's catalogue.

The run is never launched here: `run_and_report` is replaced by a recorder, so the tests see the
overlays `run` would hand to ZenML and the catalogue check that runs before. The cache key is
ZenML's own `generate_cache_key` over the ingestion step's resolved config (a stand-in step
object carries that config), so a schema edit is shown to change it and a rewrite with the same
content, or a touch, not to.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest

from toolmodal import runconfig
from toolmodal.cli import build_parser, main
from toolmodal.commands import pipeline
from toolmodal.paths import code_files

# `zenml` is imported by the cache-key test: keep any state it writes off the project.
pytestmark = pytest.mark.usefixtures("isolated_zenml")

PAGED_SERVER = Path(__file__).parent / "fixtures" / "mcp" / "paged_server.py"
USER_MODULE = '''
def convert_currency(amount: float, to: str) -> float:
    """Convert an amount of euros to another currency.

    Args:
        amount: Euros to convert.
        to: ISO 4217 code of the target currency.
    """
    return amount
'''
PIPELINE_PARAMETERS = {"schemas", "generation", "validation"}  # those of the data pipeline


def _tool(name: str, kind: str = "string") -> dict:
    """An OpenAI tool whose one parameter has JSON Schema type `kind`."""
    return {"type": "function", "function": {
        "name": name, "description": f"Do {name}.",
        "parameters": {"type": "object", "properties": {"value": {"type": kind}}}}}


@pytest.fixture()
def catalogue(tmp_path: Path) -> Path:
    """A user's folder: two files, three valid tools."""
    folder = tmp_path / "tools"
    folder.mkdir()
    (folder / "weather.json").write_text(json.dumps([_tool("get_weather"), _tool("get_wind")]))
    (folder / "mail.json").write_text(json.dumps([_tool("send_mail")]))
    return folder


@pytest.fixture()
def launched(monkeypatch: pytest.MonkeyPatch) -> list[dict]:
    """What `run` hands to `run_and_report` (nothing is run)."""
    calls: list[dict] = []

    def record(name: str, overlays: list, stack_name: str | None = None) -> int:
        calls.append({"name": name, "overlays": overlays, "stack": stack_name})
        return 0

    monkeypatch.setattr(pipeline, "run_and_report", record)
    return calls


def _resolved(call: dict) -> dict:
    """The run configuration ZenML would get from a recorded call (data pipeline parameters)."""
    config = runconfig.build_run_config("data", call["overlays"], PIPELINE_PARAMETERS)
    return runconfig.with_ingest_cache(config)


def test_cli_parses_the_catalogue_options():
    args = build_parser().parse_args(["run", "full", "--schemas", "a.json", "tools/",
                                      "--mcp", "npx -y server-memory", "--mcp", "my-server",
                                      "--python", "mytools", "--mcp-timeout", "5", "--lenient"])
    assert (args.pipeline, args.schemas, args.mcp, args.python, args.mcp_timeout,
            args.lenient) == ("full", ["a.json", "tools/"], ["npx -y server-memory",
                                                              "my-server"], ["mytools"], 5, True)
    plain = build_parser().parse_args(["run", "data"])
    assert (plain.schemas, plain.mcp, plain.python, plain.lenient) == ([], [], [], False)


def test_resolved_config_carries_paths_and_caches_on_their_files(
        catalogue: Path, launched: list[dict], capsys: pytest.CaptureFixture):
    assert main(["run", "data", "--schemas", str(catalogue / "weather.json"),
                 str(catalogue / "mail.json")]) == 0
    config = _resolved(launched[0])
    paths = [str(catalogue / "weather.json"), str(catalogue / "mail.json")]
    assert config["parameters"]["schemas"] == paths  # the bundled folder is replaced
    ingest = config["steps"]["ingest_schemas"]
    assert ingest["cache_policy"]["file_dependencies"] == code_files("steps.ingest_schemas") + \
        sorted(paths)  # the step's code files, then the schemas
    assert "parameters" not in ingest  # strict, no server: the step's defaults
    assert "catalogue: 3 tools, 2 categories, 0 skipped" in capsys.readouterr().out


def test_servers_join_the_catalogue_and_ingestion_always_runs(
        catalogue: Path, launched: list[dict], capsys: pytest.CaptureFixture):
    server = shlex.join([sys.executable, str(PAGED_SERVER)])
    assert main(["run", "full", "--schemas", str(catalogue), "--mcp", server,
                 "--mcp-timeout", "20"]) == 0
    config = _resolved(launched[0])
    assert config["parameters"]["schemas"] == [str(catalogue)]
    assert config["steps"]["ingest_schemas"]["parameters"] == {
        "mcp": [server], "mcp_timeout": 20.0, "python": []}
    assert config["steps"]["ingest_schemas"]["enable_cache"] is False  # tools live in no file
    assert "catalogue: 6 tools, 3 categories, 0 skipped" in capsys.readouterr().out
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    PipelineRunConfiguration.model_validate(config)


def test_python_functions_alone_replace_the_bundled_catalogue(
        tmp_path: Path, launched: list[dict], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture):
    (tmp_path / "user_tools_rs.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["run", "data", "--python", "user_tools_rs"]) == 0
    config = _resolved(launched[0])
    assert runconfig.schema_sources(config) == ([], ["user_tools_rs"])
    assert config["steps"]["ingest_schemas"]["parameters"]["python"] == ["user_tools_rs"]
    assert config["steps"]["ingest_schemas"]["enable_cache"] is False  # the module may change
    assert "catalogue: 1 tools, 1 categories, 0 skipped" in capsys.readouterr().out


def test_ingest_step_reads_every_source_the_run_gives(
        catalogue: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The step body over the overlay's parameters (a list of paths, servers, functions)."""
    from steps import ingest_schemas as module

    (tmp_path / "user_tools_rs.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(module, "log_metadata", lambda metadata: None)  # no step is running
    step = runconfig.UserCatalogue([str(catalogue / "mail.json")],
                                   [shlex.join([sys.executable, str(PAGED_SERVER)])],
                                   ["user_tools_rs"], mcp_timeout=30).overlay()
    built = module.ingest_schemas.entrypoint(step["parameters"]["schemas"],
                                             **step["steps"]["ingest_schemas"]["parameters"])
    assert {t.name for t in built.tools} == {"send_mail", "tool_first", "tool_second",
                                             "tool_third", "convert_currency"}


def test_strict_run_fails_on_a_bad_file_before_launching(
        catalogue: Path, launched: list[dict], capsys: pytest.CaptureFixture):
    bad = catalogue / "paint.json"
    bad.write_text(json.dumps([_tool("set_colour", kind="colour")]))
    assert main(["run", "full", "--schemas", str(catalogue)]) == 1
    assert launched == []
    err = capsys.readouterr().err
    assert f"error: {bad}: tool 'set_colour': parameters.properties.value.type: " \
           "unknown type 'colour'" in err
    assert "1 error(s) in the catalogue; nothing was run" in err


def test_lenient_run_reports_skips_and_runs(catalogue: Path, launched: list[dict],
                                            capsys: pytest.CaptureFixture):
    bad = catalogue / "paint.json"
    bad.write_text(json.dumps([_tool("set_colour", kind="colour"), _tool("get_paint")]))
    assert main(["run", "data", "--schemas", str(catalogue), "--lenient"]) == 0
    out, err = capsys.readouterr()
    assert f"skipped: {bad}: tool 'set_colour'" in err
    table = next(line for line in out.splitlines() if line.startswith(str(bad)))
    assert table.split()[1:3] == ["1", "1"]  # one tool kept, one skipped in that file
    assert "catalogue: 4 tools, 3 categories, 1 skipped" in out
    step = _resolved(launched[0])["steps"]["ingest_schemas"]
    assert step["parameters"] == {"lenient": True}


def test_lenient_run_with_nothing_readable_stops(tmp_path: Path, launched: list[dict],
                                                 capsys: pytest.CaptureFixture):
    bad = tmp_path / "paint.json"
    bad.write_text(json.dumps([_tool("set_colour", kind="colour")]))
    assert main(["run", "data", "--schemas", str(bad), "--lenient"]) == 1
    assert launched == []
    assert "no tool could be read" in capsys.readouterr().err


def test_unreadable_server_stops_before_launching(launched: list[dict],
                                                  capsys: pytest.CaptureFixture):
    assert main(["run", "data", "--mcp", "no-such-mcp-server-x"]) == 1
    assert launched == []
    assert "mcp server 'no-such-mcp-server-x': cannot start it" in capsys.readouterr().err


def test_catalogue_options_need_an_ingesting_pipeline(catalogue: Path, launched: list[dict],
                                                      capsys: pytest.CaptureFixture):
    assert main(["run", "training", "--schemas", str(catalogue)]) == 2
    assert launched == []
    assert "apply to the data and full pipelines" in capsys.readouterr().err
    assert main(["run", "evaluation", "--lenient"]) == 2


def test_bundled_run_is_unchanged(launched: list[dict]):
    """No option: no overlay added, the bundled folder's files are ingestion's cache inputs."""
    assert main(["run", "data"]) == 0
    assert launched[0]["overlays"] == ["cpu"]
    ingest = _resolved(launched[0])["steps"]["ingest_schemas"]
    assert ingest["cache_policy"]["file_dependencies"] == code_files("steps.ingest_schemas") + \
        runconfig.schema_files("data/tool_schemas")
    assert "enable_cache" not in ingest and "parameters" not in ingest


def test_lenient_alone_keeps_the_bundled_catalogue(launched: list[dict]):
    assert main(["run", "full", "--lenient"]) == 0
    config = _resolved(launched[0])
    assert config["parameters"]["schemas"] == "data/tool_schemas"
    assert config["steps"]["ingest_schemas"]["parameters"] == {"lenient": True}


def test_cli_paths_are_project_relative_inside_the_project(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(runconfig.PROJECT_ROOT / "data")
    assert runconfig.cli_path("tool_schemas") == "data/tool_schemas"  # the config stays portable
    monkeypatch.chdir(tmp_path)
    assert runconfig.cli_path("mine.json") == str(tmp_path.resolve() / "mine.json")


def _cache_key(config: dict) -> str:
    """ZenML's cache key of the ingestion step under `config` (a stand-in compiled step)."""
    from zenml.config.cache_policy import CachePolicy
    from zenml.orchestrators import cache_utils

    ingest = config["steps"]["ingest_schemas"]
    step = SimpleNamespace(
        spec=SimpleNamespace(source=SimpleNamespace(
            import_path="steps.ingest_schemas.ingest_schemas")),
        config=SimpleNamespace(
            cache_policy=CachePolicy.model_validate(ingest.get("cache_policy", {})),
            parameters={"schemas": config["parameters"]["schemas"],
                        **ingest.get("parameters", {})},
            outputs={}, caching_parameters={}, environment={}, secrets=[]))
    store = SimpleNamespace(id=uuid.UUID(int=1), path="/store", custom_cache_key=None)
    return cache_utils.generate_cache_key(step, {}, store, uuid.UUID(int=2))


def test_cache_key_follows_the_schema_files_content(catalogue: Path,
                                                    monkeypatch: pytest.MonkeyPatch):
    from zenml.utils import source_utils

    monkeypatch.setattr(source_utils, "get_source_root", lambda: str(runconfig.PROJECT_ROOT))
    overlay = runconfig.UserCatalogue([str(catalogue)]).overlay()

    def key() -> str:  # the config is resolved afresh, as each `toolmodal run` does
        config = runconfig.build_run_config("data", ["cpu", overlay], PIPELINE_PARAMETERS)
        return _cache_key(runconfig.with_ingest_cache(config))

    first = key()
    edited = catalogue / "mail.json"
    text = edited.read_text()
    edited.write_text(text)  # same content, new mtime
    os.utime(edited, (1, 1))
    assert key() == first
    edited.write_text(text.replace("Do send_mail.", "Send an e-mail."))
    assert key() != first
    edited.write_text(text)
    assert key() == first  # back to the cached content
    (catalogue / "sms.json").write_text(json.dumps([_tool("send_sms")]))
    assert key() != first  # a new file is a new input
