# tracekit: `make run` starts the local stack, `make test` runs the whole suite.
# Both create the virtualenv first if it is missing or the requirements changed.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed

.PHONY: run test bench package clean

STAGE ?= prod
REGION ?= eu-west-2

$(STAMP): requirements.txt requirements-dev.txt package.json package-lock.json assets/tracekit.scss
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m devstack.stack

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/bandit -q -r app.py chalicelib ops devstack benchmarks --severity-level medium
	$(VENV)/bin/python -m pytest

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/cold_start.py
	$(VENV)/bin/python benchmarks/register_import.py
	$(VENV)/bin/python benchmarks/reconciliation.py

# The CloudFormation (SAM) template and deployment zip for a stage, in dist/<stage>/ (docs/deploying.md).
package: $(STAMP)
	rm -rf dist/$(STAGE)
	AWS_DEFAULT_REGION=$(REGION) $(VENV)/bin/chalice package --stage $(STAGE) --merge-template infra/resources.json dist/$(STAGE)
	$(VENV)/bin/cfn-lint dist/$(STAGE)/sam.json
	@echo "wrote dist/$(STAGE)/sam.json and dist/$(STAGE)/deployment.zip"

clean:
	rm -rf $(VENV) .pytest_cache dist node_modules templates/assets/tracekit.css
