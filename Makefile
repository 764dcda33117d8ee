# tracekit: `make run` starts the local stack, `make test` runs the whole suite.
# Both create the virtualenv first if it is missing or the requirements changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m devstack.stack

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -r app.py chalicelib ops devstack benchmarks --severity-level medium
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/register_import.py
	$(VENV)/bin/python benchmarks/reconciliation.py

clean:
	rm -rf $(VENV) .pytest_cache
