# affectlab — `make help` lists the targets.
SHELL := /bin/bash
PY := .venv/bin/python
export PYTHONPATH := $(CURDIR)/src:$(CURDIR)
export PYTHONUNBUFFERED := 1

METHOD ?=
DATA ?=
TRAINER ?=
EXP ?=
DATA_ROOT ?=
ARGS ?=
PROFILE ?= quick
SEED ?= 0
OUT ?= data/synthetic
FILE ?=
COUNT ?= 3
SEEDS ?= 3
EVIDENCE_OUT ?=

# `make train METHOD=tcae method.lr=0.1 seed=1 OMP_NUM_THREADS=1`: make takes every NAME=value as a variable
# of its own. Of those that are not one of the above, names with a lower-case letter (config keys: seed,
# method.lr) are forwarded to the commands that compose a config (train, evidence, config, cv) and refused
# by the others; upper-case names are environment variables (OMP_NUM_THREADS, WANDB_MODE), which make
# exports to every command's environment itself. None is dropped.
OWN_VARS := METHOD DATA TRAINER EXP DATA_ROOT ARGS PROFILE SEED OUT FILE COUNT SEEDS EVIDENCE_OUT PY SHELL
CLI_VARS := $(strip $(foreach v,$(filter-out $(OWN_VARS),$(.VARIABLES)),$(if $(filter command line,$(origin $(v))),$(v))))
has_lower = $(strip $(foreach c,a b c d e f g h i j k l m n o p q r s t u v w x y z,$(findstring $(c),$(1))))
CLI_OVERRIDES := $(strip $(foreach v,$(CLI_VARS),$(if $(call has_lower,$(v)),$(v))))
FORWARD = $(foreach v,$(CLI_OVERRIDES),'$(v)=$($(v))') $(if $(filter command line,$(origin SEED)),seed=$(SEED))
NO_OVERRIDES = $(if $(CLI_OVERRIDES),$(error make $@ takes no config overrides ($(CLI_OVERRIDES)); \
               they apply to train, evidence, config and cv, or pass options with ARGS="..."))

SELECT = $(if $(METHOD),METHOD=$(METHOD)) $(if $(DATA),DATA=$(DATA)) $(if $(TRAINER),TRAINER=$(TRAINER)) \
         $(if $(EXP),EXP=$(EXP)) $(if $(DATA_ROOT),data.root=$(DATA_ROOT)) $(FORWARD)

.PHONY: help env install train test test-full config list synth preview cv sweep leaderboard \
        check-data benchmark clean synth-check evidence

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

env:
	@scripts/ensure_venv.sh

install: env ## create .venv (cached by lock-file hash) and link the `affectlab` command into it
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . && echo "installed: .venv/bin/affectlab"

train: env ## train and test: make train METHOD=tcae [DATA=bp4d] [TRAINER=cpu] [EXP=file] [DATA_ROOT=/path] [k=v ...]
	$(PY) -m affectlab train $(SELECT) $(ARGS)

evidence: env ## default vs its controls over seeds: make evidence METHOD=tcae [SEEDS=3] [EVIDENCE_OUT=dir] [ARGS="k=v"]
	$(PY) -m affectlab evidence $(SELECT) --seeds $(SEEDS) $(if $(EVIDENCE_OUT),--out $(EVIDENCE_OUT)) $(ARGS)

test: env ## run the test suite (what CI runs)
	$(NO_OVERRIDES)$(PY) -m pytest -q

test-full: env ## the test suite including slow tests
	$(NO_OVERRIDES)$(PY) -m pytest -q -m ""

config: env ## print the resolved config: make config METHOD=ial ARGS="data.fold=2"
	$(PY) -m affectlab config $(SELECT) $(ARGS)

list: env ## list methods, datasets, trainer presets and valid combinations
	$(PY) -m affectlab list

synth: env ## write the synthetic datasets: make synth [OUT=dir] [PROFILE=tiny|quick|full] [SEED=0]
	$(NO_OVERRIDES)$(PY) -m affectlab synth --out $(OUT) --profile $(PROFILE) --seed $(SEED)

synth-check: env ## how well the synthetic world separates learned features from pixels: make synth-check [PROFILE=quick]
	$(NO_OVERRIDES)$(PY) -m affectlab synth check --profile $(PROFILE) --seed $(SEED) $(ARGS)

preview: env ## contact sheet of the synthetic faces (docs/img/synth_preview.png)
	$(NO_OVERRIDES)$(PY) -m affectlab synth preview --out docs/img/synth_preview.png

check-data: env ## counts, label rates and skipped items: make check-data DATA=bp4d [DATA_ROOT=/path]
	$(NO_OVERRIDES)$(PY) -m affectlab data summary $(if $(DATA),DATA=$(DATA)) $(if $(DATA_ROOT),root=$(DATA_ROOT)) $(ARGS)

cv: env ## every fold of the protocol: make cv METHOD=baseline DATA=disfa
	$(PY) -m affectlab cv $(SELECT) $(ARGS)

sweep: env ## hyper-parameter sweep: make sweep FILE=experiments/sweeps/baseline.yaml [COUNT=3] [ARGS="--local DATA=toyau"]
	$(NO_OVERRIDES)$(PY) -m affectlab sweep $(FILE) --count $(COUNT) $(ARGS)

leaderboard: env ## render the leaderboard (Markdown, HTML, PNG) from the results store
	$(NO_OVERRIDES)$(PY) -m affectlab leaderboard $(ARGS)

benchmark: env ## run every script in benchmarks/ (prints tables)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## remove runs, results caches and the .venv link (the cached environment stays)
	rm -rf runs .pytest_cache .venv
