"""`ModelDir`: a Hugging Face model folder handed between steps as a versioned artifact.

Why a folder type rather than ZenML's HFPTModelMaterializer: every consumer (trainer, evaluator,
exporter) loads the model itself from a folder, so materializing a loaded `PreTrainedModel` would
load the 270M model (~1 GB fp32) once more per hand-off just to save or pass it on. Here the files
are copied as they are into the artifact store and back into a temporary folder that ZenML deletes
when the consuming step ends. Left out: any reading of the weights beyond hashing them.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.io import fileio
from zenml.materializers.base_materializer import BaseMaterializer

SUBDIR = "model"


@dataclass(frozen=True)
class ModelDir:
    """A model folder (weights, config, tokenizer, chat template, or a .gguf file inside).

    Attributes:
        path: The folder on local disk.
    """

    path: Path

    def files(self) -> list[Path]:
        """All files below the folder, sorted by relative path."""
        if not self.path.is_dir():
            raise FileNotFoundError(f"model folder {self.path} does not exist")
        return sorted(p for p in self.path.rglob("*") if p.is_file())


class ModelDirMaterializer(BaseMaterializer):
    """Copies the folder file by file (any artifact store) and hashes its content."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ModelDir,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ModelDir:
        """Copy the stored folder into a temporary one that lives until the step ends."""
        with self.get_temporary_directory(delete_at_exit=False) as temp_dir:
            _copy_tree(os.path.join(self.uri, SUBDIR), temp_dir)
            return ModelDir(Path(temp_dir))

    def save(self, data: ModelDir) -> None:
        """Copy every file of the folder into the artifact store."""
        _copy_tree(str(data.path), os.path.join(self.uri, SUBDIR))

    def compute_content_hash(self, data: ModelDir) -> str:
        """sha256 over relative paths and file contents (a bit-identical model stays cached)."""
        digest = hashlib.sha256()
        for file in data.files():
            digest.update(str(file.relative_to(data.path)).encode())
            with file.open("rb") as f:
                digest.update(hashlib.file_digest(f, "sha256").digest())
        return digest.hexdigest()

    def extract_metadata(self, data: ModelDir) -> dict[str, Any]:
        """Size, file count and, for an HF folder, the architecture."""
        files = data.files()
        meta: dict[str, Any] = {"files": len(files),
                                "size_mb": round(sum(f.stat().st_size for f in files) / 2**20, 1)}
        config = data.path / "config.json"
        if config.is_file():
            values = json.loads(config.read_text())
            meta["architectures"] = ",".join(values.get("architectures") or [])
        return meta


def _copy_tree(src: str, dst: str) -> None:
    """Copy a folder with ZenML's fileio, so remote artifact stores work too."""
    for root, _, names in fileio.walk(src):
        root = str(root)
        rel = os.path.relpath(root, src)
        target = os.path.normpath(os.path.join(dst, rel))
        fileio.makedirs(target)
        for name in names:
            fileio.copy(os.path.join(root, str(name)), os.path.join(target, str(name)),
                        overwrite=True)
