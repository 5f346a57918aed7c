# `make run` and `make test` each do all set-up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The UI's third-party libraries (d3, d3-flame-graph) come from npm at set-up time and are
# served from the package; nothing is fetched from a CDN at run time.
VENDOR := profd/web/static/vendor
ASSETS := $(VENDOR)/.installed
NPM_DIST := web/node_modules

.PHONY: run examples test test-fast lint typecheck clean assets browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

$(ASSETS): web/package.json web/package-lock.json
	npm ci --prefix web --no-audit --no-fund
	mkdir -p $(VENDOR)
	cp $(NPM_DIST)/d3/dist/d3.min.js $(NPM_DIST)/d3-flame-graph/dist/d3-flamegraph.min.js \
		$(NPM_DIST)/d3-flame-graph/dist/d3-flamegraph.css $(VENDOR)/
	cp $(NPM_DIST)/d3/LICENSE $(VENDOR)/d3.LICENSE
	cp $(NPM_DIST)/d3-flame-graph/LICENSE $(VENDOR)/d3-flame-graph.LICENSE
	touch $@

assets: $(ASSETS)

# Debian's Chromium for the UI tests (Playwright drives it; its own browser builds cannot be
# downloaded here). Without root the install is skipped and the UI tests say why they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] \
		&& { DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; }; } \
		|| echo "chromium is not installed (needs root: apt-get install chromium); the UI tests will skip"

run: $(STAMP) $(ASSETS)
	$(BIN)/profd serve --data-dir profd-data

examples: $(STAMP)
	$(BIN)/profd process --data-dir profd-data examples/*.json
	$(BIN)/profd outcomes --data-dir profd-data
	$(BIN)/profd profiles list --data-dir profd-data

lint: $(STAMP)
	$(BIN)/ruff check profd tests bench
	$(BIN)/ruff format --check profd tests bench

typecheck: $(STAMP)
	$(BIN)/mypy

test: lint typecheck $(ASSETS) browser
	$(BIN)/pytest

# The unit tests alone: no server, no npm, no browser (a minute or two).
test-fast: lint typecheck
	$(BIN)/pytest -m unit

clean:
	rm -rf $(VENV) profd-data .pytest_cache .mypy_cache .ruff_cache web/node_modules $(VENDOR) test-artifacts
