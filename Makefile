# Two commands on a fresh machine: `make figures` and `make test`.
# Each creates .venv and installs the project with its test extras first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
TORCH  := torch==2.13.0
# Many small matrices: one BLAS thread per process beats competing threads (see README, Performance).
export OPENBLAS_NUM_THREADS ?= 1
export OMP_NUM_THREADS ?= 1

.PHONY: figures figures-full test test-all demo bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch first, with an exact pin: an unpinned torch resolves to a multi-GB CUDA build.
	$(PY) -m pip install --quiet $(TORCH)
	$(PY) -m pip install --quiet -e '.[test,peft]'
	touch $(STAMP)

figures: $(STAMP)
	$(VENV)/bin/lora-asym figures --quick --out figures/out

figures-full: $(STAMP)
	$(VENV)/bin/lora-asym figures --full --out figures/out

# Every core: pytest-xdist runs the tests in one worker process per core (JOBS=1 for one process).
JOBS ?= auto

test: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) --durations=25

test-all: $(STAMP)
	$(PY) -m pytest -q -n $(JOBS) -m ''

clean:
	rm -rf $(VENV) figures/out .pytest_cache .hypothesis
