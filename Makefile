# layerlab: install, run and test. Every target installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
HASH := $(shell cat pyproject.toml | sha1sum | cut -c1-12)
# What running needs, and what testing adds (pytest, linters, the browser driver, the fuzzer).
STAMP := $(VENV)/.installed-run-$(HASH)
DEV_STAMP := $(VENV)/.installed-dev-$(HASH)

.PHONY: install install-dev browser run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Each re-installs only when pyproject.toml changed (the stamps carry its hash).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	rm -f $(VENV)/.installed-run-*
	touch $(STAMP)

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-dev-* $(VENV)/.installed-run-*
	touch $(DEV_STAMP) $(STAMP)

# The dashboard's browser libraries (Chart.js), exactly as locked; served as static files, never a CDN.
WEB_VENDOR := src/layerlab/web/static/web/vendor
$(WEB_VENDOR)/node_modules/.package-lock.json: $(WEB_VENDOR)/package-lock.json
	cd $(WEB_VENDOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(WEB_VENDOR)/node_modules/.package-lock.json

install-dev: $(DEV_STAMP) $(WEB_VENDOR)/node_modules/.package-lock.json

# The browser tests drive Debian's Chromium: installed where we may (root with apt-get), else said once.
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  (apt-get update -qq && apt-get install -y -qq chromium >/dev/null) \
	    || echo "note: chromium could not be installed; the browser tests will be skipped"; \
	else \
	  echo "note: /usr/bin/chromium is absent, so the browser tests will be skipped;" \
	       "run 'sudo apt-get install -y chromium' and 'make test' again to run them"; \
	fi

run: install
	$(BIN)/layerlab serve

lint: install-dev
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

test: install-dev lint browser
	$(BIN)/pytest -q

bench: install-dev
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
