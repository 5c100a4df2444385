# aimcbench developer tasks. `make help` lists them.
PYTHON ?= python3
# Pinned so pip takes the wheels already on disk here instead of downloading gigabytes.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
SCALE ?= quick

.PHONY: help install lint test test-all dist docs demo reproduce-paper-figures clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

install:  ## install aimcbench (editable) with the test tools
	$(PYTHON) -m pip install $(TORCH_PINS)
	$(PYTHON) -m pip install -e ".[dev]"

lint:  ## the import contracts (layering, no cycles; [tool.importlinter] in pyproject.toml)
	lint-imports

test:  ## fast test suite (.ci/run runs lint and this)
	$(PYTHON) -m pytest -q -m "not slow" -n auto

test-all:  ## every test, including the slow ones
	$(PYTHON) -m pytest -q

dist:  ## build the wheel and the sdist into dist/
	$(PYTHON) -m build

docs:  ## API documentation from the docstrings -> site/ (mkdocs build --strict; `mkdocs serve` to browse)
	$(PYTHON) -m pip install -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --site-dir site

demo:  ## MLP on MNIST, PCM chips, ADC-bits sweep -> results/demo (table + plots)
	$(PYTHON) -m aimcbench sweep hardware=pcm sweep=adc_bits hydra.run.dir=results/demo

# Every figure/table of the studies: the manifests aimcbench/studies/<id>/manifest*.yaml -> results/paper/<id>/ and
# results/paper/index.md (claim, statistic with interval, departures, verdict). SCALE=quick (default): 40 chips, fewer
# test images and grid points; SCALE=paper uses the studies' settings and data (--plan prints what it runs).
# Reruns skip finished points. ONLY=id1,id2 runs some entries; ARGS passes more options.
ONLY ?=
ARGS ?=

reproduce-paper-figures:  ## rerun the studies' figures -> results/paper/index.md (SCALE=quick|paper, ONLY=ids)
	$(PYTHON) scripts/reproduce_paper.py --scale $(SCALE) $(if $(ONLY),--only $(ONLY)) $(ARGS)

clean:  ## remove build leftovers and Hydra's default output folders (not results/ or the model cache)
	rm -rf build dist *.egg-info .pytest_cache outputs multirun
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
