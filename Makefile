# herbi: `make train` then `make test` is all a newcomer needs; every target installs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DATA ?=
RECIPE ?= reference
PRESET ?=
RUN ?= runs/latest
FORMAT ?= all

.PHONY: install train export bench test lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e ".[train,dev]"
	touch $@

install: $(VENV)/.installed

train: install
	$(BIN)/herbi-train --recipe $(RECIPE) $(if $(DATA),--data $(DATA)) $(if $(PRESET),--preset $(PRESET))

export: install
	$(BIN)/herbi-export --model $(RUN) --format $(FORMAT)

bench: install
	$(BIN)/herbi-bench --run $(RUN)

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .hypothesis
