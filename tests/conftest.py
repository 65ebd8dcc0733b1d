"""Shared test settings: offline hubs, quiet ZenML, and paths to the committed fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
os.environ.setdefault("ZENML_AUTO_OPEN_DASHBOARD", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY_MODEL = FIXTURES / "tiny-gemma"
SHARED_BFCL = REPO_ROOT.parent / "shared" / "bfcl-sample"
BUNDLED_SCHEMAS = REPO_ROOT / "data" / "tool_schemas"


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    """The committed tiny random Gemma3 model + reduced tokenizer with the tool tokens."""
    return TINY_MODEL


@pytest.fixture(scope="session")
def bfcl_dir() -> Path:
    """The BFCL sample beside the repo; tests that need it skip when it is absent."""
    if not SHARED_BFCL.is_dir():
        pytest.skip(f"BFCL sample not found at {SHARED_BFCL}")
    return SHARED_BFCL


@pytest.fixture(scope="module")
def isolated_zenml(tmp_path_factory):
    """A throwaway ZenML state for the module, so nothing touches the user's or the project's."""
    state = tmp_path_factory.mktemp("state")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TOOLMODAL_STATE_DIR", str(state))
        patch.setenv("ZENML_CONFIG_PATH", str(state / ".zen" / "global"))
        patch.setenv("ZENML_REPOSITORY_PATH", str(state))
        yield state
