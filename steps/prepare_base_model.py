"""Step: the base model with chat template and tool tokens, as a `ModelDir` artifact.

Cached like any step, so the preparation happens once per artifact store; the slow GGUF
de-quantization (minutes) is also kept by the core under `.cache/models/` across stores.
"""

from __future__ import annotations

from typing import Annotated

from zenml import log_metadata, step
from zenml.config import CachePolicy

from materializers.model_dir import ModelDir, ModelDirMaterializer
from toolmodal.model import prepare_base_model as prepare
from toolmodal.paths import code_files
from toolmodal.runconfig import project_path
from toolmodal.stack import work_dir
from toolmodal.vocab import corpus_paths


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      output_materializers=ModelDirMaterializer)
def prepare_base_model(source: str | None = None, vocab_corpus: list[str] | None = None,
                       ) -> Annotated[ModelDir, "base_model"]:
    """Prepare `source`: HF id, HF folder or .gguf file (a relative path is relative to the
    project root); None = the packaged Gemma 3 270M GGUF. `vocab_corpus` (files/folders or glob
    patterns, relative to the project root; None = off) trims the vocabulary (`toolmodal.vocab`)."""
    if source is not None and project_path(source).exists():
        source = str(project_path(source))
    corpus = [str(p) for p in corpus_paths(vocab_corpus)] if vocab_corpus else None
    folder = prepare(source, out=work_dir() / "model", vocab_corpus=corpus)
    log_metadata({"source": source or "packaged:gemma3-270m-q4_k_m"})
    return ModelDir(folder)
