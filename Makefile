# creditmodel: `make demo` runs the main job, `make test` runs the tests (`make test-fast`: all but the
# slow end-to-end ones), `make lint` runs ruff and mypy; all set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-fast lint lab install bench clean

demo: $(STAMP)
	$(BIN)/creditmodel run

# one pytest-xdist worker per core; a module's tests stay together on one worker, the longest units go first
# (tests/conftest.py says which); `pytest` alone, as for one file, runs in one process as usual
XDIST := -n logical --maxprocesses=4 --dist loadscope --no-loadscope-reorder

# the project's sources byte-compiled first, as pip compiles installed packages: an editable install leaves src/
# to be compiled by each process that imports it, and with PYTHONDONTWRITEBYTECODE set none keeps the result
# (0.3 s of every command, kernel and server the tests start)
COMPILE := $(BIN)/python -m compileall -q src >/dev/null

test: $(STAMP)
	$(COMPILE)
	$(BIN)/python -m pytest -q $(XDIST)

test-fast: $(STAMP)
	$(COMPILE)
	$(BIN)/python -m pytest -q $(XDIST) -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks tools
	$(BIN)/mypy

lab: $(STAMP)
	$(BIN)/jupyter lab --notebook-dir=notebooks

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "creditmodel needs Python 3.11, found " + sys.version.split()[0])'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

bench: $(STAMP)
	@for b in benchmarks/*.py; do echo "== $$b"; $(BIN)/python $$b; done

clean:
	rm -rf $(VENV) data/demo mlruns/mlflow.db mlruns/artifacts
