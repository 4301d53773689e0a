# layerlab: install, run and test. Every target installs what it needs first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha1sum | cut -c1-12)

.PHONY: install install-dev run test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# Re-installs only when pyproject.toml changed (the stamp carries its hash).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

# The dashboard's browser libraries (Chart.js), exactly as locked; served as static files, never a CDN.
WEB_VENDOR := src/layerlab/web/static/web/vendor
$(WEB_VENDOR)/node_modules/.package-lock.json: $(WEB_VENDOR)/package-lock.json
	cd $(WEB_VENDOR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(WEB_VENDOR)/node_modules/.package-lock.json

install-dev: install

run: install
	$(BIN)/layerlab serve

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

test: install lint
	$(BIN)/pytest -q

bench: install
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m bench.run_all

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
