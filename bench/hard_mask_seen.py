"""Hard-masked evaluation of an exported model on one generated test set (first 100 rows).

    .venv/bin/python bench/hard_mask_seen.py EXPORT_DIR test_seen DATASET_DIR
    # DATASET_DIR: toolmodal data generate --schemas data/tool_schemas --config GEN.yaml
    #   --out DATASET_DIR --tokenizer MODEL (GEN.yaml = the cpu overlay's generation block:
    #   the same rows as make run's)

EXPORT_DIR holds model-q4_k_m.gguf and its correction model-q4_k_m.lora.gguf (llama.cpp).
"""

import sys
import time
from pathlib import Path

from datasets import load_from_disk

from toolmodal.engines import EngineConfig, load_engine
from toolmodal.evaluate import evaluate_rows

E = Path(sys.argv[1])
rows = load_from_disk(sys.argv[3])[sys.argv[2]].to_list()[:100]
config = EngineConfig(max_new_tokens=96, batch_size=6, lora=E / "model-q4_k_m.lora.gguf")
engine = load_engine("llamacpp", E / "model-q4_k_m.gguf", config)
t = time.perf_counter()
out = evaluate_rows(engine, rows, "hard")
print(sys.argv[2], "hard", round(time.perf_counter() - t), "s")
for k, v in out["stats"].items():
    print(f"  {k}: {v['k']}/{v['n']} [{100*v['low']:.0f}-{100*v['high']:.0f}%]")
