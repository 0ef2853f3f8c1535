# The Neural ODE book. Every target sets up .venv itself; a fresh clone needs python3 and make.
#   make book [PROFILE=quick|full] [DEVICE=cpu|cuda|auto] [SEED=0]
#   make test | make notebooks | make lab | make pdf | make clean | make lock

PROFILE ?= quick
DEVICE ?= cpu
SEED ?= 0
PYTHON ?= python3
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
# Chapters share one accelerator badly: execute them in parallel only on the CPU.
BOOK_JOBS := $(if $(filter cpu,$(DEVICE)),$(JOBS),1)

VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BOOK := $(BIN)/python scripts/book.py
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root)

# Prerequisites run in order: the profile check must come before any install or execution.
.NOTPARALLEL:
.PHONY: book notebooks test lab pdf clean check-profile venv lock

## Execute every chapter with papermill into _build/executed/$(PROFILE), build _build/$(PROFILE)/html.
## A chapter that fails is reported (_build/$(PROFILE)/reports/) and the rest of the book still builds.
book: check-profile venv
	$(BOOK) execute --profile $(PROFILE) --device $(DEVICE) --seed $(SEED) --jobs $(BOOK_JOBS); \
	executed=$$?; \
	$(BOOK) build --notebooks _build/executed/$(PROFILE)/notebooks --out _build/$(PROFILE) && exit $$executed

## Refresh the committed notebooks' outputs in place (quick profile, CPU); ONLY="04 06" picks chapters.
notebooks: venv
	$(BOOK) execute --profile quick --device cpu --seed 0 --in-place --jobs $(JOBS) $(if $(ONLY),--only $(ONLY))

## Unit tests, nbval on the committed notebooks (if any: pytest exits 5 when it collects nothing),
## a build of the committed notebooks with warnings as errors and no remote assets, then the built
## pages in headless Chromium (tests/book; they skip, naming the package, without Chromium).
## Both pytest runs use one worker per core (JOBS); a notebook's cells stay together on one worker.
test: venv
	$(BIN)/pytest -n $(JOBS) --dist loadfile tests/ --ignore=tests/book
	$(if $(wildcard notebooks/*.ipynb),$(BIN)/pytest -n $(JOBS) --dist loadfile --nbval-lax notebooks/,@echo "no notebooks to validate")
	$(BOOK) build --notebooks notebooks --out _build/committed --strict
	NODEKIT_BOOK_HTML=_build/committed/html $(BIN)/pytest -n $(JOBS) tests/book

## The book as one PDF, _build/pdf/book.pdf, from the committed notebooks; needs TeX Live (XeLaTeX, latexmk).
pdf: venv
	$(BOOK) pdf --notebooks notebooks --out _build/pdf

lab: venv
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

clean:
	rm -rf _build

# Standard library only, so a typo fails before the venv is created.
check-profile:
	@$(PYTHON) scripts/book.py check-profile $(PROFILE)

venv: $(STAMP)

# The environment comes from requirements.lock (every package, pinned); nodekit itself is installed editable.
$(STAMP): pyproject.toml requirements.lock
	[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -r requirements.lock
	$(BIN)/pip install --no-deps -e .
	touch $@

## Re-resolve pyproject.toml's pins in a fresh virtual environment and write requirements.lock.
lock:
	rm -rf _build/lock-venv
	$(PYTHON) -m venv _build/lock-venv
	_build/lock-venv/bin/pip install ".[book,dev]"
	{ echo "# The whole resolved environment of the book: pip freeze of a fresh install of \".[book,dev]\"."; \
	  echo "# make test / make book install from it; regenerate with \`make lock\` after changing pyproject.toml."; \
	  _build/lock-venv/bin/pip freeze --exclude-editable | grep -v '^neural-ode-book-nodekit'; } > requirements.lock
	rm -rf _build/lock-venv
