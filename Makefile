# Quick start:  make run   (execute every notebook, figures in build/figures/)
#               make test  (unit tests + headless notebook validation)
# Both create .venv on first use.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
KERNEL := mup-course
STAMP  := $(VENV)/.installed-$(shell cksum < requirements.txt | cut -d' ' -f1)
NOTEBOOKS := $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
export KERAS_BACKEND := torch

.PHONY: setup run test unit student solutions bench lab clean

setup: $(STAMP)

$(STAMP): requirements.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -c "import torch, papermill, nbval, keras; print('torch', torch.__version__)"
	$(PY) -m ipykernel install --prefix $(VENV) --name $(KERNEL) --display-name "Python (muP course)" > /dev/null
	@rm -f $(VENV)/.installed-*; touch $@

# Execute every numbered notebook at full size; figures go to build/figures/<notebook>/.
run: setup
	$(PY) scripts/run_notebooks.py --out build/executed

# Unit tests, then nbval (lax, quick mode) on every notebook as committed.
test: setup
	COURSE_QUICK=1 $(PY) -m pytest tests $(NOTEBOOKS) --nbval-lax --nbval-kernel-name $(KERNEL) -p no:cacheprovider

# One source, two releases: build/student/ (solution regions stubbed, outputs cleared) and
# build/solutions/ (every notebook executed, HTML export, figures).
student: setup
	$(PY) scripts/release.py student --out build/student

solutions: setup
	$(PY) scripts/release.py solutions --out build/solutions

# Loop vs batched LR sweeps (Adam 7x9x100, muP 7x6x100) and every notebook's time; build/bench.json.
bench: setup
	$(PY) benchmarks/bench_sweeps.py

unit: setup
	$(PY) -m pytest tests -q

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf build .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
