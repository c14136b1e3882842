# citypipe — every target sets up what it needs. On a fresh machine:
#   make demo   simulate a city day and run it through the stack on the embedded backend
#   make test   the whole suite (unit, integration on moto + LocalStack, end to end): needs
#               only the repository (its own hub payloads, DCAT-AP/HVD shapes, SDM schemas)
#   make conformance  the same checks against the third-party reference set (official
#               DCAT-AP and HVD shapes, Smart Data Models schemas, real hub payloads) in
#               CITYPIPE_REFERENCE_DIR: fails, never skips, without it (tests/conformance/README.md)
#   make mutation  mutation testing of the privacy cores (not part of make test: ~16 CPU-minutes):
#               a score per module, each at least 95 %, survivors in out/mutation/report.md
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HASH   := $(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)
# The demo needs the `local` extra (the CLI, moto, the bridge); the suite and the linters the
# `dev` extra on top of it: a venv made for the suite serves the demo too.
LOCAL_STAMP := $(VENV)/.installed-local-$(HASH)
STAMP  := $(VENV)/.installed-dev-$(HASH)

.PHONY: venv venv-local browser broker demo demo-localstack test test-fast conformance mutation lint check bench bench-big fuzz soak layer package package-scaleway rehearse lock clean

$(LOCAL_STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[local]'
	rm -f $(VENV)/.installed-local-* && touch $@

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@ $(LOCAL_STAMP)

venv: $(STAMP)

venv-local: $(LOCAL_STAMP)

demo: venv-local
	$(BIN)/citypipe demo --out out/demo

demo-localstack: venv-local
	$(BIN)/citypipe demo --backend localstack --out out/demo-localstack

# Debian's Chromium for the portal's browser test (installed when missing, as root).
browser:
	./.ci/chromium

# Debian's Mosquitto for the MQTT bridge's tests (installed when missing, as root).
broker:
	./.ci/mosquitto

test: venv browser broker node_modules/.installed
	$(BIN)/pytest -n 2 --dist loadfile

# Against the third-party reference set (never copied here): CITYPIPE_REFERENCE_DIR=<dir>
conformance: venv
	$(BIN)/pytest -n 2 --dist loadfile tests/conformance

# The inner loop: everything but full replays, artefact builds and LocalStack.
test-fast: venv broker
	$(BIN)/pytest -n 2 --dist loadfile -m "not slow and not localstack"

# Mutation testing of the privacy cores (tests/mutation/modules.toml): each mutant of them
# run against the unit tests that guard it; a survivor fails the run unless
# tests/mutation/equivalent.toml says why no test can see it. One module:
#   make mutation ARGS="--module core/noise.py"
mutation: venv
	$(BIN)/python tests/mutation/run.py $(ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --strict layers/citypipe/python/citypipe bridge/citypipe_bridge tools/citypipe_local functions
	$(BIN)/lint-imports

check: lint test

# The pipeline against a plain script (bench/floor.py) on the same files, at three sizes of
# the example city's day (x0.25, x1, x4): ratio, readings/s, CPU, round trips and memory per
# function, cost per million readings. Writes docs/benchmarks.md and bench/results.json.
bench: venv
	$(BIN)/python bench/run.py

# A day of a city 14 times the example (10.4 M readings) on LocalStack, with its floor:
# ~7 minutes and ~2 GB of captures (in a temporary folder, removed) on a 2-core machine;
# make bench reports it from bench/big.json.
bench-big: venv
	$(BIN)/python bench/run.py --scales 14 --backend localstack --results bench/big.json --quick

# The edge fuzzed long: 5,000 malformed payloads per format, random each run (make test runs
# a CI-sized, derandomized search of the same properties).
fuzz: venv
	HYPOTHESIS_PROFILE=long $(BIN)/pytest -q tests/unit/test_fuzz.py

# The MQTT bridge soaked: six hours of the city through Mosquitto with 30 random restarts of
# the broker and the bridge, a random seed each run (make test runs a CI-sized soak).
soak: venv broker
	CITYPIPE_SOAK_HOURS=$${CITYPIPE_SOAK_HOURS:-6} CITYPIPE_SOAK_RESTARTS=$${CITYPIPE_SOAK_RESTARTS:-30} \
	  CITYPIPE_SOAK_SEED=$${CITYPIPE_SOAK_SEED:-$$(date +%s)} \
	  $(BIN)/pytest -q -s tests/integration/test_mosquitto.py -k random_restarts

# The Lambda layer for serverless.yml: the citypipe library plus its runtime dependencies,
# built for Lambda's python3.12 on arm64 (boto3 comes with the runtime), trimmed, and
# compiled by a Python 3.12 of this machine's (PATH or pyenv): decision 113.
layer: venv
	$(BIN)/python -m citypipe_local.package layer --out .build/layer

# A city's AWS stack, packaged offline (osls 4 from package-lock.json, a local moto server,
# fake credentials) into .serverless/, then checked by cfn-lint. The city file is checked
# first: a region outside the EU/EEA is refused before anything is built.
#   make package CITY=infra/cities/<city>.yaml
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error && touch $@

package: venv node_modules/.installed
	$(BIN)/python -m citypipe_local.package stack --city $(or $(CITY),infra/cities/velden.yaml) --build-layer

# The Scaleway deployment of a city (x86_64 zip <= 100 MiB, built offline; region from the
# city file, which must be Scaleway's; PREFIX: the deployment's name prefix, as given to
# `stack up`): make package-scaleway CITY=infra/cities/<city>.yaml PREFIX=<org>-
package-scaleway: venv
	$(BIN)/python -m citypipe_local.scaleway_package --city $(or $(CITY),infra/cities/velden-scaleway.yaml) --prefix "$(PREFIX)"

# The deployment rehearsed from its artefacts: each cloud's, built as the two targets above
# build them (for this machine's architecture), unpacked into empty folders, runs an hour
# of the city in bare Python 3.12 interpreters (the oldest supported SDK behind Lambda's);
# its open data must equal the source tree's run (docs/deploy.md, "Rehearse first").
#   make rehearse CITY=infra/cities/<city>.yaml SCW_CITY=infra/cities/<city>-scaleway.yaml
rehearse: venv node_modules/.installed
	$(BIN)/python -m citypipe_local.rehearse --cloud aws --city $(or $(CITY),infra/cities/velden.yaml)
	$(BIN)/python -m citypipe_local.rehearse --cloud scaleway --city $(or $(SCW_CITY),infra/cities/velden-scaleway.yaml)

# Regenerate the pins after changing pyproject.toml's dependencies.
lock:
	$(PYTHON) -m venv .venv-lock && .venv-lock/bin/pip install --quiet -e '.[dev]' \
	  && .venv-lock/bin/pip freeze --exclude-editable | grep -v '^-e' > constraints.txt; rm -rf .venv-lock

# Every output (out/ and the out-* folders of earlier releases), every venv and build.
clean:
	rm -rf $(VENV) .venv-localstack .venv-lock .build .serverless node_modules infra/scaleway/node_modules out out-* .citypipe .pytest_cache .mypy_cache .ruff_cache .import_linter_cache .hypothesis .benchmarks citypipe.egg-info
