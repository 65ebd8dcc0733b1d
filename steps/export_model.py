"""Step: merge and convert the trained model (merged HF folder, GGUF f16 / Q8_0 / Q4_K_M,
and on a GPU AWQ/GPTQ for vLLM)."""

from __future__ import annotations

from typing import Annotated

from datasets import DatasetDict
from zenml import log_metadata, step
from zenml.config import CachePolicy

from materializers.model_dir import ModelDir, ModelDirMaterializer
from toolmodal.export import ExportConfig
from toolmodal.export import export_model as export
from toolmodal.paths import code_files
from toolmodal.stack import work_dir


@step(cache_policy=CachePolicy(file_dependencies=code_files(__name__)),
      output_materializers={"exported_model": ModelDirMaterializer})
def export_model(model: ModelDir, dataset: DatasetDict,
                 config: ExportConfig) -> Annotated[ModelDir, "exported_model"]:
    """Write `config.formats` of `model` into one folder (one artifact holds every format);
    `dataset` gives the calibration rows of the GPU formats (awq-int4, gptq-int4)."""
    written = export(model.path, work_dir() / "export", config, calibration=dataset)
    log_metadata({"formats": {fmt: {"file": path.name, "size_mb": _size_mb(path)}
                              for fmt, path in written.items()}})
    return ModelDir(work_dir() / "export")


def _size_mb(path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return round(sum(p.stat().st_size for p in files) / 2**20, 1)
