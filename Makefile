# One command each: `make run` (the full pipeline, default CPU config) and `make test`.
# Both create/update .venv and install exactly what they need: torch 2.13.0 CPU first, since an
# unpinned torch pulls a multi-GB CUDA build.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export ZENML_ANALYTICS_OPT_IN := false
export ZENML_AUTO_OPEN_DASHBOARD := false

.PHONY: install run test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,masking]"
	$(PY) -m pip check
	touch $(STAMP)

install: $(STAMP)

run: install
	$(VENV)/bin/toolmodal run full

lint: install
	$(PY) -m ruff check .

test: install lint
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf .zen .cache/zenml runs outputs
