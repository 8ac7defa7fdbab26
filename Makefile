# Quick start:  make run   (execute every notebook, figures in build/figures/)
#               make test  (unit tests + headless notebook validation)
# Both create .venv on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
KERNEL := mup-course
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
export KERAS_BACKEND := torch

.PHONY: setup run test lint unit student solutions grade gradescope bench lab clean

setup: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	@# helpers/, coursetools/ and grading/, importable from anywhere without sys.path edits (a path entry, not
	@# an import hook: a submission the grader runs never falls back to the instructor's helpers).
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . \
		--config-settings editable_mode=compat
	$(PY) -c "import torch, papermill, keras; print('torch', torch.__version__)"
	$(PY) -m ipykernel install --prefix $(VENV) --name $(KERNEL) --display-name "Python (muP course)" > /dev/null
	@rm -f $(VENV)/.installed-*; touch $@

# Execute every numbered notebook (two at a time on a small machine); figures in build/figures/<notebook>/.
run: setup
	$(PY) scripts/run_notebooks.py --out build/executed

# Unit tests, and every notebook executed once by nbval (its `# NBVAL_CHECK_OUTPUT` cells compared with the
# committed output, a time limit per cell), that one execution read by the answer tests; pytest-xdist
# spreads the notebooks and the tests over the cores, the notebooks first and the longest first.
NBVAL := --nbval-lax --nbval-cell-timeout=300 --nbval-sanitize-with tests/nbval_sanitize.cfg
test: setup
	$(PY) -m pytest $(NBVAL) -n auto --dist loadscope --no-loadscope-reorder notebooks tests

# One source, two releases: build/student/ (solution regions stubbed, outputs cleared) and
# build/solutions/ (every notebook executed, HTML export, figures).
student: setup
	$(PY) scripts/release.py student --out build/student

solutions: setup
	$(PY) scripts/release.py solutions --out build/solutions

# Grade a folder of submissions (one subfolder or .zip of the student release per student): build/grades/.
grade: setup
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=<folder>"; exit 2; }
	$(PY) scripts/grade.py $(SUBMISSIONS) --out build/grades

# The Gradescope autograder (setup.sh, run_autograder, the hidden tests): build/gradescope/autograder.zip.
gradescope: setup
	$(PY) scripts/gradescope.py build --out build/gradescope/autograder.zip

# make run and make test timed, every notebook's time, loop vs batched LR sweeps; build/bench.json.
bench: setup
	$(PY) benchmarks/bench_sweeps.py

# ruff on the code, the tests and the notebooks (pyproject.toml holds its rules).
lint: setup
	$(VENV)/bin/ruff check .

# The unit tests alone: no notebook is executed.
unit: setup
	$(PY) -m pytest tests -q -m "not notebooks" -n auto

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
