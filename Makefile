# xcloud: `make demo` masks the bundled sample; `make test` runs the test suite.
# Both create .venv on first use. torch is pinned to the CPU wheel first where none is
# installed (an unpinned torch would pull a multi-GB CUDA build).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.xcloud-installed

.PHONY: setup demo test test-all lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e ".[all]"
	touch $(STAMP)

demo: setup
	$(BIN)/xcloud demo --out demo_output

test: setup
	$(BIN)/python -m pytest -q -m "not slow and not gpu and not benchmark" --doctest-modules xcloud tests

test-all: setup
	$(BIN)/python -m pytest -q --doctest-modules xcloud tests

lint: setup
	$(BIN)/ruff check xcloud tests benchmarks
	$(BIN)/ruff format --check xcloud tests benchmarks
	$(BIN)/mypy xcloud

bench: setup
	$(BIN)/python benchmarks/accuracy.py
	$(BIN)/python benchmarks/overhead.py

.PHONY: notebooks docs

notebooks: setup
	$(BIN)/python -m pytest -q -m notebook tests/test_notebooks.py

docs: setup
	$(BIN)/python docs/gen_api.py
	$(BIN)/python docs/make_figures.py

clean:
	rm -rf demo_output .pytest_cache
