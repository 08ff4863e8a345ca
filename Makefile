# Two commands for a new user: `make run` (set up, build the default index, open the web chat) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
INDEX  ?= index
CORPUS ?= seeds
HOST   ?= 127.0.0.1
PORT   ?= 7860

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: install install-test browser ocr ocr-if-possible test-pdfs index run chat test lint docs bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: on these machines 2.13.0 is the CPU wheel on disk; a bare `torch` pulls a CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	touch $@

# The test extras include the documentation tools: tests/test_docs.py builds the site strictly.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test,docs]'
	touch $@

$(VENV)/.installed-docs: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[docs]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

# OCR of scanned pages and images: Debian's Tesseract (the web chat and `rag index` read scans with it).
install: $(VENV)/.installed ocr-if-possible

install-test: $(VENV)/.installed-test

# Incremental: unchanged files are skipped without loading the model.
index: install
	$(BIN)/rag index $(CORPUS) --index $(INDEX)

# The web chat on http://$(HOST):$(PORT) (this machine only unless HOST says otherwise).
run: index
	$(BIN)/rag serve --index $(INDEX) --host $(HOST) --port $(PORT)

# The question loop in the terminal.
chat: index
	$(BIN)/rag chat --index $(INDEX)

# The browser tests drive Debian's Chromium through Playwright (never `playwright install`), and audit the
# page with axe-core (npm registry; only its axe.min.js is kept, under .cache/). CI machines are fresh Debian
# and run as root.
AXE_VERSION ?= 4.14.1
AXE_JS      := .cache/axe-core-$(AXE_VERSION)/axe.min.js

browser: $(AXE_JS)
	@command -v chromium >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium)

# Tesseract OCR with English from Debian's packages (as root, or with sudo). It fails unless `tesseract` with its
# English data is there at the end: `make test` and `make bench` need it.
ocr:
	@tesseract --list-langs 2>/dev/null | grep -qx eng || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "error: Tesseract OCR is missing: install tesseract-ocr and tesseract-ocr-eng as root" >&2; exit 1; fi; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y tesseract-ocr tesseract-ocr-eng; }
	@tesseract --list-langs 2>/dev/null | grep -qx eng || { \
	  echo "error: Tesseract with English was not installed (tesseract-ocr, tesseract-ocr-eng)" >&2; exit 1; }

# `make install` (and so `make run`) tries the same, and without apt at hand goes on: scans are then reported, not read.
ocr-if-possible:
	@$(MAKE) --no-print-directory -f $(firstword $(MAKEFILE_LIST)) ocr || echo "note: install tesseract-ocr and tesseract-ocr-eng to read scanned pages"

# Real PDFs the tests read: Debian ships these manuals as PDF documentation.
test-pdfs:
	@test -f /usr/share/doc/libtasn1-doc/libtasn1.pdf -a -f /usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf || \
	  (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y libtasn1-doc shared-mime-info)

$(AXE_JS):
	@command -v npm >/dev/null 2>&1 || (apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y npm)
	rm -rf $(@D).part && mkdir -p $(@D).part
	cd $(@D).part && npm pack --silent axe-core@$(AXE_VERSION) >/dev/null && tar -xzf axe-core-$(AXE_VERSION).tgz package/axe.min.js
	mv $(@D).part/package/axe.min.js $(@D).part/axe.min.js && rm -rf $(@D).part/package $(@D).part/*.tgz
	rm -rf $(@D) && mv $(@D).part $(@D)

# Lint first, then the suite. REQUIRE_PREREQS=1 (as CI=true does) turns every skip into a failure: the targets
# before it install every prerequisite, so a test that skips here would have checked nothing (tests/conftest.py).
# `make test REQUIRE_PREREQS=0` lets tests skip on a machine where something cannot be installed.
REQUIRE_PREREQS ?= 1

test: install-test browser ocr test-pdfs lint
	REQUIRE_PREREQS=$(REQUIRE_PREREQS) $(BIN)/python -m pytest -q

# The documentation site from docs/ into site/ (open site/index.html); a broken link or a missing page fails.
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: install-test
	$(BIN)/ruff check rag ui tests bench
	$(BIN)/mypy

# Every measured claim of the docs: each benchmark prints its figures beside their targets (met / not met, with the
# date and the machine) and writes bench/results/claims/NAME.json; bench/report.py then renders those files into
# the docs' <!-- bench:NAME --> tables (tests/test_bench_claims.py checks the docs match them). Long: about an hour.
bench: $(VENV)/.installed-bench ocr
	$(BIN)/python bench/pdf_eval.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/refusal.py
	$(BIN)/python bench/pdf_stages.py --out bench/results/pdf_stages.json
	$(BIN)/python bench/index_speed.py
	$(BIN)/python bench/ask_loop.py
	$(BIN)/python bench/precision.py
	$(BIN)/python bench/encoders.py
	$(BIN)/python bench/index_memory.py
	$(BIN)/python bench/store_overlap.py
	$(BIN)/python bench/ray_index.py
	$(BIN)/python bench/vector_scale.py --n 1000000
	$(BIN)/python bench/hybrid_scale.py --sizes 100000,1000000 --exact
	$(BIN)/python bench/report.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts .cache site
