# `make run` starts the whole local stack; `make test` runs every check. Both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat requirements*.txt | sha256sum | cut -c1-12)

# Node is confined to the WhatsApp engine's bridge and to the fake WhatsApp server used in tests.
NODE_DIRS := provider/engines/whatsapp/bridge tests/peers/whatsapp sdk/typescript
NODE_STAMPS := $(addsuffix /node_modules/.installed,$(NODE_DIRS))

.PHONY: install browser run reset test lint typecheck unit bench clean

$(STAMP): requirements.txt requirements-provider.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

%/node_modules/.installed: %/package-lock.json %/package.json
	cd $* && npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(STAMP) $(NODE_STAMPS) browser

# The pages' browser tests (tests/test_pages_browser.py) drive the system Chromium through Playwright,
# which cannot download its own browsers here. Installed with apt when missing and we are root.
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
		echo "chromium is missing: the browser tests of the pages will be skipped (apt-get install chromium)"

run: install
	$(PY) -m stack

# A fresh start: `make run` restores the instances kept in DATA_DIR (./data); this deletes it. It stops
# nothing, and refuses while a stack seems to be running (scripts/reset-data says how it tells).
reset:
	@$(PYTHON) scripts/reset-data

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest -q --ignore=tests/e2e

test: lint typecheck
	$(PY) -m pytest -q
	cd tests/peers/whatsapp && node --test

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(addsuffix /node_modules,$(NODE_DIRS))
