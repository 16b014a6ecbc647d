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

SELECT = $(if $(METHOD),METHOD=$(METHOD)) $(if $(DATA),DATA=$(DATA)) $(if $(TRAINER),TRAINER=$(TRAINER)) \
         $(if $(EXP),EXP=$(EXP)) $(if $(DATA_ROOT),data.root=$(DATA_ROOT))

.PHONY: help env install train test test-full config list synth preview cv sweep leaderboard \
        check-data benchmark clean synth-check evidence

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

env:
	@scripts/ensure_venv.sh

install: env ## create .venv (cached by lock-file hash) and link the `affectlab` command into it
	@$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . && echo "installed: .venv/bin/affectlab"

train: env ## train and test: make train METHOD=tcae [DATA=bp4d] [TRAINER=cpu] [EXP=file] [DATA_ROOT=/path] [ARGS="k=v"]
	$(PY) -m affectlab train $(SELECT) $(ARGS)

evidence: env ## default vs its controls over seeds: make evidence METHOD=tcae [SEEDS=3] [EVIDENCE_OUT=dir] [ARGS="k=v"]
	$(PY) -m affectlab evidence $(SELECT) --seeds $(SEEDS) $(if $(EVIDENCE_OUT),--out $(EVIDENCE_OUT)) $(ARGS)

test: env ## run the test suite (what CI runs)
	$(PY) -m pytest -q

test-full: env ## the test suite including slow tests
	$(PY) -m pytest -q -m ""

config: env ## print the resolved config: make config METHOD=ial ARGS="data.fold=2"
	$(PY) -m affectlab config $(SELECT) $(ARGS)

list: env ## list methods, datasets, trainer presets and valid combinations
	$(PY) -m affectlab list

synth: env ## write the synthetic datasets: make synth [OUT=dir] [PROFILE=tiny|quick|full] [SEED=0]
	$(PY) -m affectlab synth --out $(OUT) --profile $(PROFILE) --seed $(SEED)

synth-check: env ## how well the synthetic world separates learned features from pixels: make synth-check [PROFILE=quick]
	$(PY) -m affectlab synth check --profile $(PROFILE) --seed $(SEED) $(ARGS)

preview: env ## contact sheet of the synthetic faces (docs/img/synth_preview.png)
	$(PY) -m affectlab synth preview --out docs/img/synth_preview.png

check-data: env ## counts, label rates and skipped items: make check-data DATA=bp4d [DATA_ROOT=/path]
	$(PY) -m affectlab data summary $(if $(DATA),DATA=$(DATA)) $(if $(DATA_ROOT),root=$(DATA_ROOT)) $(ARGS)

cv: env ## every fold of the protocol: make cv METHOD=baseline DATA=disfa
	$(PY) -m affectlab cv $(SELECT) $(ARGS)

sweep: env ## hyper-parameter sweep: make sweep FILE=experiments/sweeps/baseline.yaml [COUNT=3] [ARGS="--local DATA=toyau"]
	$(PY) -m affectlab sweep $(FILE) --count $(COUNT) $(ARGS)

leaderboard: env ## render the leaderboard (Markdown, HTML, PNG) from the results store
	$(PY) -m affectlab leaderboard $(ARGS)

benchmark: env ## run every script in benchmarks/ (prints tables)
	@for f in benchmarks/*.py; do echo "== $$f"; $(PY) $$f || exit 1; done

clean: ## remove runs, results caches and the .venv link (the cached environment stays)
	rm -rf runs .pytest_cache .venv
