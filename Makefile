# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv when absent and install atomtwin with torch pinned through
# constraints.txt (a CPU wheel here; see README for a CUDA machine).  A stamp keyed on
# pyproject.toml + constraints.txt makes a second call a no-op.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.atomtwin-installed
EXTRAS  ?= test,peers
PIP_CONSTRAINT ?= constraints.txt
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=

export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg

.PHONY: setup demo test lint bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel setuptools

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/python -m pip install -c $(PIP_CONSTRAINT) -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/atomtwin demo --out $(DEMO_OUT) --force

# two pytest workers, one thread each: most of the suite is Python-bound, so two single-
# threaded workers use the two cores better than one worker with two threads
test: $(STAMP)
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 --dist loadfile $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check toolkit engines tests

bench: $(STAMP)
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --small || exit 1; done

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache
