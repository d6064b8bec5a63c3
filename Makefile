# The two set-up commands of the README, and what they stand on.
#   make lab    JupyterLab on notebooks/, bound to 127.0.0.1, URL and token printed
#   make test   ruff, mypy and the whole test suite on a real Docker engine
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.opskit-installed

.PHONY: lab test engine lint venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

engine:
	bash scripts/engine.sh

lab: $(STAMP)
	bash scripts/engine.sh --optional
	$(BIN)/opskit lab

lint: $(STAMP)
	$(BIN)/ruff check opskit tests bench
	$(BIN)/mypy

test: $(STAMP) lint
	bash scripts/engine.sh
	bash scripts/browser.sh
	OPSKIT_REQUIRE_ENGINE=1 $(BIN)/pytest
