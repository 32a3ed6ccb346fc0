# herbi: `make train` then `make test` is all a newcomer needs; every target installs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?=
RECIPE ?= reference
PRESET ?=
RUN ?= runs/latest
FORMAT ?= all
NPM := $(shell command -v npm 2>/dev/null)

.PHONY: install train export bench test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[train,dev]"
	touch $@

# The web page's pinned onnxruntime-web (package-lock.json); skipped where npm is absent, and
# `herbi-export --format web` then says how to get it. No install scripts are needed.
node_modules/.package-lock.json: package.json package-lock.json
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed $(if $(NPM),node_modules/.package-lock.json)

train: install
	$(BIN)/herbi-train --recipe $(RECIPE) $(if $(DATA),--data $(DATA)) $(if $(PRESET),--preset $(PRESET))

export: install
	$(BIN)/herbi-export --model $(RUN) --format $(FORMAT)

bench: install
	$(BIN)/herbi-bench --run $(RUN)

# Two worker processes, each test file whole in one (its module fixtures built once): on a quiet
# 2-core AMD EPYC 421 s serial, 306 s this way (2026-12-08). `pytest` alone runs serially.
test: install
	$(BIN)/python -m pytest -n 2 --dist loadfile

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) node_modules build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
