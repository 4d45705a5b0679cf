# libnet-mmdet: `make demo` runs the main job, `make test` installs what is missing and runs the suite,
# `make model` builds the generalist model.
SHELL := /bin/bash
# Use the active virtualenv if there is one, else a local .venv.
ifdef VIRTUAL_ENV
VENV := $(VIRTUAL_ENV)
else
VENV := .venv
endif
PYTHON := $(VENV)/bin/python
PIP := $(PYTHON) -m pip
# The stamp makes a second `make install` a no-op; it is redone when a requirements file, setup.py or this Makefile
# (its install steps) changes.
STAMP := $(VENV)/.libnet-mmdet-installed
REQUIREMENTS := $(wildcard requirements/*.txt) setup.py Makefile
PYTEST_ARGS ?=
DEMO_ARGS ?=
MODEL_ARGS ?=
PHASE_MODEL_ARGS ?=

.PHONY: install test demo model clean

install: $(STAMP)

$(PYTHON):
	python3 -m venv $(VENV)

$(STAMP): $(REQUIREMENTS) | $(PYTHON)
	$(PIP) install -r requirements/build.txt
	@# mmcv 2.1.0 compiles its ops (~11-12 min on 2 idle cores; pip caches the wheel afterwards).
	MMCV_WITH_OPS=1 MAX_JOBS=2 $(PIP) install --no-build-isolation -r requirements/mmcv.txt
	$(PIP) install -r requirements/runtime.txt -r requirements/tests.txt
	$(PIP) install --no-build-isolation --no-deps -e .
	$(PYTHON) -c "import mmcv._ext, mmdet.models, libnet_mmdet; print('libnet_mmdet', libnet_mmdet.__version__, 'installed')"
	touch $@

test: install
	$(PYTHON) -m pytest tests $(PYTEST_ARGS)

# Synthetic data -> train (CPU-tiny) -> 3D segmentation -> evaluation vs watershed -> analysis -> demo_out/report.md
demo: install
	$(PYTHON) tools/demo.py --out demo_out $(DEMO_ARGS)

# Randomised synthetic corpus -> the generalist (CPU-tiny in 2 processes, 51 min on the slowest 2-core machine measured)
# -> models/generalist/, then the phase model on the same draws with bulk carbon-binder added (51-130 min by machine)
# -> models/phases/ (each resumable, kept once built)
model: install
	$(PYTHON) tools/make_model.py $(MODEL_ARGS)
	$(PYTHON) tools/make_model.py --recipe phases $(PHASE_MODEL_ARGS)

clean:
	rm -rf work_dirs demo_out .pytest_cache
