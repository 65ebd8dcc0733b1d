"""llama.cpp's native log lines: logged at their real level, off the terminal during pipeline runs.

The engine test needs llama-cpp-python (the `export` extra) and skips without it.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from toolmodal.engines.llama_log import CONTINUE, LOGGER, on_native_log

LORA_LINE = (b"llama_adapter_lora_init_impl: lora for 'blk.8.ffn_down.weight' cannot use buft "
             b"'CPU_REPACK', fallback to CPU\n")


class Collect(logging.Handler):
    """Keeps the records it is handed."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def native_records():
    """The records of the native logger at any level, kept from every other handler (ZenML's
    console handler, once imported, writes to a stdout that pytest has closed)."""
    collect, saved = Collect(), (LOGGER.level, LOGGER.propagate)
    LOGGER.addHandler(collect)
    LOGGER.setLevel(logging.DEBUG)
    LOGGER.propagate = False
    yield collect.records
    LOGGER.removeHandler(collect)
    LOGGER.level, LOGGER.propagate = saved


def test_levels_follow_ggml_not_the_stale_table(native_records):
    on_native_log(3, LORA_LINE)   # ggml WARN (llama-cpp-python 0.3.36 printed it as an error)
    on_native_log(4, b"failed to load model\n")  # ggml ERROR (it hid these as debug)
    on_native_log(2, b"llama_model_loader: - kv 0: general.architecture str = gemma3\n")  # INFO
    assert [(r.levelno, r.getMessage()[:21]) for r in native_records] == [
        (logging.WARNING, "llama_adapter_lora_in"), (logging.ERROR, "failed to load model"),
        (logging.DEBUG, "llama_model_loader: -")]


def test_fragments_become_one_line_and_dots_are_dropped(native_records):
    on_native_log(2, b"llm_load_tensors: ")
    on_native_log(CONTINUE, b"CPU buffer size = 1.00 MiB\n")
    on_native_log(2, b".")
    on_native_log(CONTINUE, b"..\n")
    assert [r.getMessage() for r in native_records] == [
        "llm_load_tensors: CPU buffer size = 1.00 MiB"]


def test_step_log_only_loggers_stay_off_the_terminal(caplog, capsys):
    from zenml.logger import ZenMLLoggingHandler

    from toolmodal.stack import keep_in_step_logs

    keep_in_step_logs(("toolmodal.test_chatter",))
    chatter = logging.getLogger("toolmodal.test_chatter")
    with caplog.at_level(logging.DEBUG):
        chatter.warning("lora for 'blk.0' cannot use buft 'CPU_REPACK'")
    assert caplog.records == [] and capsys.readouterr() == ("", "")
    assert [type(h) for h in chatter.handlers] == [ZenMLLoggingHandler]


def test_engine_with_adapter_prints_nothing_on_stderr(tiny_model_dir: Path, tmp_path_factory,
                                                      native_records, capfd):
    pytest.importorskip("llama_cpp", reason="llama-cpp-python (the `export` extra) not installed")
    from toolmodal.engines import EngineConfig, load_engine
    from toolmodal.export import CORRECTION, ExportConfig, export_model

    out = tmp_path_factory.mktemp("export-lora")
    paths = export_model(tiny_model_dir, out, ExportConfig(
        formats=["gguf-q4_k_m"], tokenizer_pre="gemma4", correction_rank=4))
    capfd.readouterr()
    native_records.clear()
    engine = load_engine("llamacpp", paths["gguf-q4_k_m"], EngineConfig(lora=paths[CORRECTION]))
    engine.llm.close()  # freed now, not by the garbage collector inside some later test
    assert capfd.readouterr().err == ""  # fd 2 itself: what the terminal would show
    assert any("gemma3" in r.getMessage() for r in native_records)  # the loader's lines
