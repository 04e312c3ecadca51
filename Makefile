# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint format bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, pinned to the CPU wheel; the package itself only asks for a range
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/seqweave demo

test: $(STAMP)
	$(BIN)/ruff check src tests bench recipes
	$(BIN)/ruff format --check src tests bench recipes
	$(BIN)/python -m pytest -q

format: $(STAMP)
	$(BIN)/ruff format src tests bench recipes
	$(BIN)/ruff check --fix src tests bench recipes

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache runs
