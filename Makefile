# citypipe — every target sets up what it needs. Two commands on a fresh machine:
#   make demo   simulate a city day and run it through the stack on the embedded backend
#   make test   the whole suite (unit, integration on moto + LocalStack, end to end)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)

.PHONY: venv demo demo-localstack test test-fast lint check bench layer lock clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

venv: $(STAMP)

demo: venv
	$(BIN)/citypipe demo --out out

demo-localstack: venv
	$(BIN)/citypipe demo --backend localstack --out out-localstack

test: venv
	$(BIN)/pytest -n 2 --dist loadfile

test-fast: venv
	$(BIN)/pytest tests/unit

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict layers/citypipe/python/citypipe functions

check: lint test

bench: venv
	$(BIN)/python bench/run.py

# The Lambda layer for serverless.yml: citypipe plus its runtime dependencies, built for
# Lambda's python3.12 on arm64 (boto3 comes with the runtime).
layer: venv
	rm -rf .build/layer && mkdir -p .build/layer/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --target .build/layer/python \
	  --platform manylinux2014_aarch64 --implementation cp --python-version 3.12 --only-binary=:all: \
	  -c constraints.txt pydantic pydantic-settings pyyaml aws-lambda-powertools pyarrow datasketches
	cp -r layers/citypipe/python/citypipe .build/layer/python/

# Regenerate the pins after changing pyproject.toml's dependencies.
lock:
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet -e '.[dev]' \
	  && .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt; rm -rf .venv-lock

clean:
	rm -rf $(VENV) .venv-localstack .build out out-localstack .citypipe .pytest_cache .mypy_cache .ruff_cache
