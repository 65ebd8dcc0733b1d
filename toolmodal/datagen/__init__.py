"""Synthetic, verified tool-calling data from a tool catalogue (the data stage's core).

`generate_dataset(catalogue, config)` returns the DatasetDict of the dataset contract and its
card; `GenerationConfig` holds every setting. Modules: values (argument values and their
surface forms), queries (phrasings), examples (drafts per kind), groups (requests sharing one
tool set), irrelevance (requests no tool serves, no-call answers), repeats (sensible repeated
calls), executor (mock tool results),
verify (the three checks), masking (Hammer), splits (held-out tools), curriculum (difficulty),
card (summary and plot), teacher (optional paraphrasing), rows (helpers shared with validation).

Deliberately left out: disk I/O and the validation gate (`toolmodal.validation`).
"""

from toolmodal.datagen.config import GenerationConfig, data_files_digest
from toolmodal.datagen.generate import generate_dataset

__all__ = ["GenerationConfig", "data_files_digest", "generate_dataset"]
