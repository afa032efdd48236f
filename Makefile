# The two commands of the README: `make demo` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.balr-installed

.PHONY: install demo test lint bench constraints clean

install: $(STAMP)

# torch==2.13.0 first: a looser requirement would pull gigabytes of CUDA wheels.
# resemblyzer (ships the default GE2E weights) is installed without its dependencies:
# it requires `webrtcvad`, whose import fails with current setuptools; `webrtcvad-wheels`
# (a dependency of balr) provides the same module.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps resemblyzer==0.1.4
	touch $(STAMP)

demo: install
	bash examples/run_demo.sh

test: install
	$(BIN)/python -m pytest -q

lint: install
	$(BIN)/ruff check .

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu//' | grep -v '^resemblyzer' > constraints.txt
