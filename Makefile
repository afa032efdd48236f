# The two commands of the README: `make demo` (install + main job) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.balr-installed

.PHONY: install demo test test-fast lint bench constraints clean wheel-check

install: $(STAMP)

# torch==2.13.0 first: a looser requirement would pull gigabytes of CUDA wheels.
# Everything else, the default models included, comes with balr itself.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

demo: install
	bash examples/run_demo.sh

test: install
	$(BIN)/python -m pytest -q

# the edit-test loop: every test not marked slow (@pytest.mark.slow: models, CLI processes)
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

lint: install
	$(BIN)/ruff check .

constraints:
	$(BIN)/python -m pip freeze --exclude-editable | sed 's/+cpu//' | grep -iv '^resemblyzer' > constraints.txt

# The wheel alone gives a working offline tool: build it, install it into a fresh venv that
# has nothing but torch, and compare two bundled clips (default models from the package).
WHEEL_DIR := build/wheel-check
wheel-check: install
	rm -rf $(WHEEL_DIR) && mkdir -p $(WHEEL_DIR)
	$(BIN)/python -m pip wheel --quiet --no-deps --no-build-isolation -w $(WHEEL_DIR)/dist .
	$(PYTHON) -m venv $(WHEEL_DIR)/venv
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet torch==2.13.0
	$(WHEEL_DIR)/venv/bin/python -m pip install --quiet -c constraints.txt $(WHEEL_DIR)/dist/balr-*.whl
	cd $(WHEEL_DIR) && venv/bin/balr compare $(CURDIR)/examples/audio/id00906/00014.flac \
		--test $(CURDIR)/examples/audio/id00906/00028.flac --report report.html
	test -s $(WHEEL_DIR)/report.html
