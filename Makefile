# Set-up and everyday tasks; every target creates .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run sign-demo test fuzz lint format bench plugins clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/conductor run fixtures/demo/config.toml --replay fixtures/demo/demo.mid

sign-demo: $(STAMP)
	bash fixtures/demo/signing-demo.sh $(BIN)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# The property tests (every @given test, wherever it lives) with thousands of examples each.
fuzz: $(STAMP)
	HYPOTHESIS_PROFILE=fuzz $(BIN)/python -m pytest -q -m hypothesis

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# BENCH_ARGS="--only soak --soak-events 1000000" runs the full soak alone (about 9 minutes).
bench: $(STAMP)
	$(BIN)/python -m bench $(BENCH_ARGS)

plugins: $(STAMP)
	bash plugins/build.sh $(BIN)/python
	$(MAKE) -C fixtures/plugins
	$(MAKE) -C fixtures/demo/plugins SIGN=$(CURDIR)/$(BIN)/conductor-sign

clean:
	rm -rf $(VENV) build *.egg-info
