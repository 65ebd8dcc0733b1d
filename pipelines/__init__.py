"""ZenML pipelines: each function is the DAG and nothing else (settings come from configs/)."""
