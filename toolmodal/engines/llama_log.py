"""llama.cpp's native log lines as Python log records, at the level llama.cpp gave them.

llama-cpp-python 0.3.36 reads ggml's log levels with a stale table (its WARN, 3, as ERROR and its
ERROR, 4, as DEBUG), so with `verbose=False` it still prints every llama.cpp warning to stderr
and hides real errors: loading the Q4_K_M correction adapter printed one "lora for
'blk.8.ffn_down.weight' cannot use buft 'CPU_REPACK', fallback to CPU" line per LoRA tensor on
`make run`'s terminal. `route_native_logs` replaces that callback (`llama_log_set`, which sets
ggml's too) with one that logs each line to the `llama_cpp.native` logger: warnings and errors
at their level, llama.cpp's info and debug lines (the loader's tensor listing) at DEBUG.

Where the records go is the caller's choice: during pipeline runs `toolmodal.stack` keeps them
in the step's log and off the terminal. Left out: output that bypasses llama.cpp's log callback.
"""

from __future__ import annotations

import ctypes
import logging

LOGGER = logging.getLogger("llama_cpp.native")
# ggml.h of the llama.cpp that llama-cpp-python 0.3.36 vendors:
# NONE 0, DEBUG 1, INFO 2, WARN 3, ERROR 4, CONT 5 (continues the previous line).
LEVELS = {0: logging.DEBUG, 1: logging.DEBUG, 2: logging.DEBUG, 3: logging.WARNING,
          4: logging.ERROR}
CONTINUE = 5

_line: dict = {"level": logging.DEBUG, "text": ""}
_callbacks: list = []  # the ctypes callback must outlive every call llama.cpp makes to it


def on_native_log(level: int, text: bytes) -> None:
    """Collect llama.cpp's message fragments into lines; log each complete line once.

    Args:
        level: ggml log level of the fragment (CONTINUE keeps the line's first level).
        text: The fragment, UTF-8; a line ends with a newline.
    """
    if level != CONTINUE and not _line["text"]:
        _line["level"] = LEVELS[level]
    _line["text"] += text.decode("utf-8", errors="replace")
    if _line["text"].endswith("\n"):
        line, _line["text"] = _line["text"].rstrip("\n"), ""
        if line.strip(" ."):  # llama.cpp's progress dots carry nothing
            LOGGER.log(_line["level"], line)


def route_native_logs(llama_cpp) -> None:
    """Send llama.cpp's (and ggml's) log lines to `LOGGER` from now on; idempotent.

    Args:
        llama_cpp: The imported `llama_cpp` module.
    """
    if _callbacks:
        return

    @llama_cpp.llama_log_callback
    def callback(level: int, text: bytes, user_data: ctypes.c_void_p) -> None:
        on_native_log(level, text)

    _callbacks.append(callback)
    llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
