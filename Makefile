# kp3d — the two commands of the README, and their set-up.
#   make replicate [PROFILE=cpu-demo|smoke|paper-h36m|paper-3dhp] [DATA=h36m:/root|3dhp:/root|rig:/folder] [RUN=name] [REDO=1]
#   make test
#   make tables [PROFILE=cpu-demo] [SEEDS=1,2] [JOBS=2]   (the paper's Tables 4, 5, 6, S3; cpu-demo also refreshes docs/replication.md)
# Both create .venv when it is missing and install the project (with torch) into it.

PYTHON ?= python3
VENV ?= .venv
PROFILE ?= cpu-demo
RUN ?= $(PROFILE)
REDO ?= 0
DATA ?=
SEEDS ?= 1,2
JOBS ?= 2
PY := $(VENV)/bin/python
STAMP := $(VENV)/.kp3d-installed

.PHONY: setup replicate tables test lab clean-outputs

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	@# PYTHONWARNINGS: setuptools' build-time notes on editable installs are not the project's warnings
	PYTHONWARNINGS=ignore $(PY) -m pip install --quiet -e '.[test,notebooks]'
	@touch $(STAMP)

replicate: $(STAMP)
	$(PY) -m kp3d.replicate --profile $(PROFILE) --run $(RUN) $(if $(filter 1,$(REDO)),--redo,) $(if $(DATA),-p DATA $(DATA),)

tables: $(STAMP)
	$(PY) -m kp3d.tables --profile $(PROFILE) --seeds $(SEEDS) --jobs $(JOBS) $(if $(filter cpu-demo,$(PROFILE)),--docs docs/replication.md,)

test: $(STAMP)
	$(PY) -m pytest --nbval-lax tests notebooks

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/
