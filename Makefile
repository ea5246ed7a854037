# Two commands do all the set-up on a fresh machine:
#   make run    create .venv, install, generate a clip with the shipped weights (offline)
#   make test   create .venv, install, run the test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROMPT ?= a red circle moving right
OUT ?= clip.mp4

.PHONY: run test install bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	# torch first and pinned: a bare `torch` requirement would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	HF_HUB_OFFLINE=1 $(BIN)/videopoet generate "$(PROMPT)" -o $(OUT) --overwrite

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	HF_HUB_OFFLINE=1 $(BIN)/python bench/bench.py --out bench/RESULTS.md

clean:
	rm -rf $(VENV) build *.egg-info
