# aimcbench developer tasks. `make help` lists them.
PYTHON ?= python3
# Pinned so pip takes the wheels already on disk here instead of downloading gigabytes.
TORCH_PINS ?= torch==2.14.1 torchvision==0.29.1
SCALE ?= quick

.PHONY: help install test test-all demo reproduce-paper-figures clean

help:  ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-26s %s\n", $$1, $$2}'

install:  ## install aimcbench (editable) with the test tools
	$(PYTHON) -m pip install $(TORCH_PINS)
	$(PYTHON) -m pip install -e ".[dev]"

test:  ## fast test suite (what .ci/run runs)
	$(PYTHON) -m pytest -q -m "not slow"

test-all:  ## every test, including the slow ones
	$(PYTHON) -m pytest -q

demo:  ## MLP on MNIST, PCM chips, ADC-bits sweep -> results/demo (table + plots)
	$(PYTHON) -m aimcbench sweep hardware=pcm sweep=adc_bits hydra.run.dir=results/demo

# Presets that exist so far (configs/experiment); issue 8 adds the rest and the index page.
# SCALE=quick reduces chips and test images; SCALE=paper uses the presets' own settings.
ifeq ($(SCALE),quick)
SCALE_ARGS = mc.chips=10 eval.n=1000
endif
EXPERIMENTS = $(basename $(notdir $(wildcard configs/experiment/*.yaml)))

reproduce-paper-figures:  ## run every experiment preset into results/paper/<name> (SCALE=quick|paper)
	@set -e; for e in $(EXPERIMENTS); do \
	  echo "== $$e"; \
	  $(PYTHON) -m aimcbench sweep experiment=$$e $(SCALE_ARGS) hydra.run.dir=results/paper/$(SCALE)/$$e; \
	done

clean:  ## remove build leftovers and Hydra's default output folders (not results/ or the model cache)
	rm -rf build dist *.egg-info .pytest_cache outputs multirun
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
