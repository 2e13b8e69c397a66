# llmlab: build the course site and run the tests.
# `make book` and `make test` are the whole set-up on a fresh machine.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The CPU set-up path pins torch: this release resolves to a CPU build, while
# an open-ended requirement pulls a multi-GB CUDA build. `make TORCH=` skips
# the pin and keeps a torch already installed in .venv (a CUDA build, say).
TORCH  ?= torch==2.13.0

# Offline profile for every execution: no hub, CPU, no progress bars.
export LLMLAB_PROFILE ?= offline
export LLMLAB_BUILD := 1
export HF_HUB_OFFLINE := 1
export PYTHONHASHSEED := 0

NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
NBVAL     := --nbval --nbval-current-env --nbval-sanitize-with tests/sanitize.cfg
PORT      ?= 8000

.PHONY: help venv book test unit nbval site-check execute lab serve clean

help:
	@echo "make book     build the site into _build/html (executes changed chapters)"
	@echo "make test     unit tests, nbval over every chapter, site build check"
	@echo "make execute  re-run chapters in place and store their outputs"
	@echo "make lab      start JupyterLab in the virtual environment"
	@echo "make serve    serve _build/html on http://127.0.0.1:$(PORT)"
	@echo "make clean    remove build outputs (keeps .venv)"

# One stamp per set of extras; re-installs when pyproject.toml changes.
$(VENV)/.stamp-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(if $(TORCH),$(BIN)/python -m pip install -q $(TORCH))
	$(BIN)/python -m pip install -q -e '.[$*]'
	touch $@

venv: $(VENV)/.stamp-test

book: $(VENV)/.stamp-book
	$(BIN)/jupyter-book build . --warningiserror --keep-going --builder html

test: $(VENV)/.stamp-test unit nbval site-check

unit: $(VENV)/.stamp-test
	$(BIN)/python -m pytest tests -q

nbval: $(VENV)/.stamp-test
	$(BIN)/python -m pytest $(NBVAL) $(NOTEBOOKS) -q -p no:cacheprovider

# Build the site from the stored outputs only, into a separate folder.
site-check: $(VENV)/.stamp-test
	mkdir -p _build
	$(BIN)/python scripts/book_config.py --no-execute > _build/config-noexec.yml
	$(BIN)/jupyter-book build . --config _build/config-noexec.yml \
	    --path-output _build/check --warningiserror --keep-going --builder html

execute: $(VENV)/.stamp-test
	$(BIN)/python scripts/execute_notebooks.py $(NOTEBOOKS)

lab: $(VENV)/.stamp-lab
	$(BIN)/jupyter lab notebooks

serve:
	@test -f _build/html/index.html || { echo "no site yet: run 'make book' first"; exit 1; }
	$(PYTHON) -m http.server $(PORT) --bind 127.0.0.1 --directory _build/html

clean:
	rm -rf _build .pytest_cache
	find . -name __pycache__ -not -path './$(VENV)/*' -prune -exec rm -rf {} +
