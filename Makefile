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

.PHONY: install install-test browser ocr test-pdfs index run chat test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch first, pinned: on these machines 2.13.0 is the CPU wheel on disk; a bare `torch` pulls a CUDA build.
$(VENV)/.torch: | $(BIN)/python
	$(BIN)/pip install -q torch==2.13.0
	touch $@

$(VENV)/.installed: pyproject.toml $(VENV)/.torch
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/pip install -q -e '.[test]'
	touch $@

$(VENV)/.installed-bench: pyproject.toml $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[test,bench]'
	touch $@

# OCR of scanned pages and images: Debian's Tesseract (the web chat and `rag index` read scans with it).
install: $(VENV)/.installed ocr

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

# Tesseract OCR with English, where apt is at hand (as root, or with sudo); without it scans are reported, not read.
ocr:
	@command -v tesseract >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif command -v sudo >/dev/null 2>&1; then SUDO=sudo; else \
	    echo "note: install tesseract-ocr and tesseract-ocr-eng to read scanned pages"; exit 0; fi; \
	  $$SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y tesseract-ocr tesseract-ocr-eng; }

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

test: install-test browser ocr test-pdfs
	REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check rag ui tests
	$(BIN)/mypy

# Speed against the standard recipe on squad-dev, then the vector index at 1M synthetic vectors.
bench: $(VENV)/.installed-bench ocr
	$(BIN)/python bench/pdf_eval.py
	$(BIN)/python bench/pdf_stages.py --out bench/results/pdf_stages.json
	$(BIN)/python bench/index_speed.py
	$(BIN)/python bench/precision.py
	$(BIN)/python bench/encoders.py
	$(BIN)/python bench/index_memory.py
	$(BIN)/python bench/vector_scale.py --n 1000000
	$(BIN)/python bench/hybrid_scale.py --sizes 100000,1000000 --exact

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-artifacts .cache
