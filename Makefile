# tracekit: `make run` starts the local stack, `make test` runs the whole suite.
# Both create the virtualenv first if it is missing or the requirements changed.
# `make lock` re-pins requirements*.txt from requirements*.in; `make typecheck` runs mypy.
# `make package` builds and checks the CloudFormation template (cfn-lint and checkov).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.installed
# checkov, in its own virtualenv: its dependencies conflict with the project's lock (requirements-infra.in)
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed

.PHONY: run test typecheck lock bench package clean

STAGE ?= prod
REGION ?= eu-west-2
CFN_LINT_ARGS ?=

# requirements-dev.txt is the whole lock (runtime and development), every file's hash checked.
# Then the project itself, editable, for the `ops` command: --no-deps, as the lock installed them;
# --no-build-isolation, so it is built by the lock's setuptools and wheel, not by whatever
# setuptools the index has that day (which pip would fetch unhashed into a throwaway env).
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml package.json package-lock.json assets/tracekit.scss
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-dev.txt
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	npm ci --no-audit --no-fund --loglevel=error
	npm run --silent build
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/python -m devstack.stack

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/bandit -q -r app.py chalicelib ops devstack benchmarks --severity-level medium
	$(VENV)/bin/python -m pytest -n auto --dist loadgroup --cov=chalicelib --cov=app --cov-report=term:skip-covered

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements-infra.txt
	touch $(INFRA_STAMP)

# Also run by `make test` (settings in pyproject.toml, [tool.mypy]).
typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Re-pin both locks from requirements.in and requirements-dev.in, with every file's sha256. The
# versions already pinned are kept unless asked: `make lock LOCK_ARGS="--upgrade-package stripe"`
# moves one, `make lock LOCK_ARGS=--upgrade` moves all. The dev lock is constrained by the runtime
# lock (-c requirements.txt in requirements-dev.in), so both agree. uv emits pip, setuptools and
# wheel too (chalice depends on all three; the editable install builds with setuptools and wheel).
LOCK := $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 --custom-compile-command "make lock" $(LOCK_ARGS)
lock: $(STAMP)
	$(LOCK) -o requirements.txt requirements.in
	$(LOCK) -o requirements-dev.txt requirements-dev.in
	$(LOCK) -o requirements-infra.txt requirements-infra.in

bench: $(STAMP)
	$(VENV)/bin/python benchmarks/cold_start.py
	$(VENV)/bin/python benchmarks/register_import.py
	$(VENV)/bin/python benchmarks/reconciliation.py

# The CloudFormation (SAM) template and deployment zip for a stage, in dist/<stage>/ (docs/deploying.md).
# Fails on any cfn-lint finding, informational ones included (I3011: a stateful resource without
# deletion policies), and on any checkov finding; checkov's skips are in the template, each with its
# reason (docs/security.md, "The cloud baseline"). --skip-download: no call to Prisma Cloud.
package: $(STAMP) $(INFRA_STAMP)
	rm -rf dist/$(STAGE)
	AWS_DEFAULT_REGION=$(REGION) $(VENV)/bin/chalice package --stage $(STAGE) --merge-template infra/resources.json dist/$(STAGE)
	$(VENV)/bin/cfn-lint --include-checks I $(CFN_LINT_ARGS) -- dist/$(STAGE)/sam.json
	$(INFRA_VENV)/bin/checkov -f dist/$(STAGE)/sam.json --framework cloudformation --compact --quiet --skip-download
	@echo "wrote dist/$(STAGE)/sam.json and dist/$(STAGE)/deployment.zip"

clean:
	rm -rf $(VENV) $(INFRA_VENV) .pytest_cache .mypy_cache .ruff_cache .coverage dist node_modules templates/assets/tracekit.css
