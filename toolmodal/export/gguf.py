"""HF folder -> GGUF (llama.cpp's converter) -> Q8_0 / Q4_K_M (llama.cpp's quantizer), checked.

The converter `convert_hf_to_gguf.py` (with its `conversion` package and the matching `gguf-py`)
is not published as a package of its own; it ships inside the llama-cpp-python source
distribution. `converter_dir` fetches that sdist with pip at the version pinned here (the same
version as the `export` extra, so converter and runtime agree on the file format), unpacks only
those three parts into a cache folder, and reuses them afterwards. The converter runs in a child
process with this interpreter (it needs torch, transformers and sentencepiece, all installed).

K-quants exist only in llama.cpp's C++ quantizer, reached through llama-cpp-python's
`llama_model_quantize`; the `gguf` package can read GGUF files but makes no K-quants.

Deliberately left out: merging adapters (`toolmodal.export.merge`), running the files
(`toolmodal.engines.llamacpp`).
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from gguf import GGUFReader

from toolmodal.engines.llamacpp import LLAMA_CPP_PYTHON_VERSION, import_llama_cpp
from toolmodal.export.merge import ExportError
from toolmodal.tool_tokens import TOOL_TOKENS

log = logging.getLogger(__name__)

_VENDOR = "vendor/llama.cpp/"
_CONVERTER_PARTS = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/gguf/")
# GGUF token types llama.cpp never splits: CONTROL (3) and USER_DEFINED (4).
_UNSPLIT_TYPES = {3: "control", 4: "user-defined"}
QUANT_TYPES = ("q8_0", "q4_k_m")
# Overrides the converter's hash-based pre-tokenizer detection (see ExportConfig.tokenizer_pre).
_DRIVER = """
import runpy, sys
root, pre, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path[:0] = [root, root + "/gguf-py"]
from conversion.base import TextModel
TextModel.get_vocab_base_pre = lambda self, tokenizer: pre
sys.argv = [root + "/convert_hf_to_gguf.py", *argv]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _converter_member(name: str, prefix: str) -> str | None:
    """Path of a tar member relative to llama.cpp's root if it is part of the converter."""
    if not name.startswith(prefix):
        return None
    rel = name[len(prefix):]
    return rel if any(rel == p or rel.startswith(p) for p in _CONVERTER_PARTS) else None


def _unpack_converter(sdist: Path, target: Path) -> None:
    """Extract the converter parts of a llama-cpp-python sdist into `target` (atomically)."""
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON_VERSION}/{_VENDOR}"
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        for member in tar.getmembers():
            rel = _converter_member(member.name, prefix)
            if rel is None or not member.isfile():
                continue
            member.name = rel
            tar.extract(member, tmp, filter="data")
    if not (tmp / "convert_hf_to_gguf.py").is_file():
        raise ExportError(f"{sdist}: no {_VENDOR}convert_hf_to_gguf.py inside")
    os.rename(tmp, target)


def converter_dir(cache_dir: Path | None = None) -> Path:
    """Folder holding llama.cpp's converter, fetched with pip and unpacked on first use.

    Args:
        cache_dir: Parent folder of the unpacked converter (None: ~/.cache/toolmodal).

    Returns:
        The folder with `convert_hf_to_gguf.py`, `conversion/` and `gguf-py/`.
    """
    root = (cache_dir or Path.home() / ".cache" / "toolmodal")
    target = root / f"llama-cpp-converter-{LLAMA_CPP_PYTHON_VERSION}"
    if (target / "convert_hf_to_gguf.py").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    log.info("fetching the llama-cpp-python %s sdist for its converter", LLAMA_CPP_PYTHON_VERSION)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", "--dest", tmp,
                        f"llama-cpp-python=={LLAMA_CPP_PYTHON_VERSION}"], check=True)
        _unpack_converter(next(Path(tmp).glob("llama_cpp_python-*.tar.gz")), target)
    return target


def convert_to_gguf(hf_dir: Path, out: Path, tokenizer_pre: str | None = None,
                    cache_dir: Path | None = None) -> Path:
    """Convert an HF folder to an f16 GGUF file with llama.cpp's converter.

    Args:
        hf_dir: Merged HF model folder.
        out: GGUF file to write (replaced if it exists).
        tokenizer_pre: Pre-tokenizer name to write instead of detecting it (None: detect).
        cache_dir: Where the converter is cached (see `converter_dir`).

    Returns:
        `out`.
    """
    root = converter_dir(cache_dir)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    args = ["--outtype", "f16", "--outfile", str(tmp), str(hf_dir)]
    if tokenizer_pre is None:
        cmd = [sys.executable, str(root / "convert_hf_to_gguf.py"), *args]
    else:
        cmd = [sys.executable, "-c", _DRIVER, str(root), tokenizer_pre, *args]
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the converter must use its own gguf-py, not gguf 0.19
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise ExportError(f"converting {hf_dir} to GGUF failed:\n{result.stderr[-3000:]}")
    os.replace(tmp, out)
    return out


def quantize_gguf(src: Path, out: Path, qtype: str, threads: int = 2) -> Path:
    """Quantize an f16 GGUF file with llama.cpp's quantizer.

    Args:
        src: The f16 GGUF file.
        out: File to write (replaced if it exists).
        qtype: "q8_0" or "q4_k_m".
        threads: Quantizer threads.

    Returns:
        `out`.
    """
    llama_cpp = import_llama_cpp()
    ftypes = {"q8_0": llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0,
              "q4_k_m": llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_K_M}
    if qtype not in ftypes:
        raise ValueError(f"unknown quantization {qtype!r}; expected one of {QUANT_TYPES}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = ftypes[qtype]
    params.nthread = threads
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    if llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(),
                                      ctypes.byref(params)) != 0:
        tmp.unlink(missing_ok=True)
        raise ExportError(f"llama.cpp failed to quantize {src} to {qtype}")
    os.replace(tmp, out)
    return out


def tool_token_ids(path: Path) -> dict[str, int]:
    """Id of each tool token in a GGUF vocabulary, checked to be one unsplittable entry.

    Raises:
        ExportError: A tool token is missing, duplicated or of a type llama.cpp may split.
    """
    reader = GGUFReader(path)
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    types = reader.fields["tokenizer.ggml.token_type"].contents()
    index: dict[str, list[int]] = {}
    for i, token in enumerate(tokens):
        index.setdefault(token, []).append(i)
    ids: dict[str, int] = {}
    for token in TOOL_TOKENS:
        found = index.get(token, [])
        if len(found) != 1:
            raise ExportError(f"{path}: tool token {token!r} found {len(found)} times in the "
                              "vocabulary (expected once)")
        if types[found[0]] not in _UNSPLIT_TYPES:
            raise ExportError(f"{path}: tool token {token!r} (id {found[0]}) has token type "
                              f"{types[found[0]]}, not control or user-defined")
        ids[token] = found[0]
    return ids


def check_gguf(path: Path) -> dict[str, int]:
    """Check a GGUF file for tool calling: tool tokens, chat template, llama.cpp tokenization.

    The llama.cpp part runs only when llama-cpp-python is installed (it always is when a
    quantized file was written).

    Returns:
        The tool tokens' ids.
    """
    ids = tool_token_ids(path)
    if "tokenizer.chat_template" not in GGUFReader(path).fields:
        raise ExportError(f"{path}: no tokenizer.chat_template in the GGUF metadata")
    try:
        llama_cpp = import_llama_cpp()
    except ModuleNotFoundError:
        log.warning("llama-cpp-python not installed: %s checked with the gguf reader only", path)
        return ids
    llm = llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)
    for token, token_id in ids.items():
        got = llm.tokenize(token.encode(), add_bos=False, special=True)
        if got != [token_id]:
            raise ExportError(f"{path}: llama.cpp tokenizes {token!r} as {got}, not [{token_id}]")
    return ids
