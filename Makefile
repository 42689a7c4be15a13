# sst2bench: `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN ?=
KERNEL := sst2bench

.PHONY: help venv browser hub-server lint format test test-all report check checkpoints standin evaluate lab clean

help: ## list the targets with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@# A venv cut short (no pip yet) is made again rather than half-used.
	@test -x $(BIN)/pip || $(PYTHON) -m venv --clear $(VENV)
	@# pip's output goes to a log; this machine's index settings add a warning per package, filtered here.
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]' > $(VENV)/pip.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(VENV)/pip.log; exit 1; }
	@grep -v "is ignored: it is neither" $(VENV)/pip.log || true
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (sst2bench)" >/dev/null
	@touch $(STAMP)

venv: $(STAMP) ## create .venv (Python 3.11, CPU torch 2.13.0) on first use, reuse it after

browser: ## install Debian's Chromium when missing (the report test renders pages in it)
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
		{ apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
		{ echo "install Chromium (Debian: apt-get install chromium) for the report test"; exit 1; }

lint: venv ## ruff: lint and check the formatting of src/ and tests/
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests

format: venv ## ruff: fix what can be fixed and format src/ and tests/
	$(BIN)/ruff check --fix src tests
	$(BIN)/ruff format src tests

test: venv browser hub-server lint ## lint, then the offline tests but those marked slow (what CI runs; needs SST-2 files, see README)
	$(BIN)/pytest -m "not slow"

test-all: venv browser hub-server lint ## lint, then every offline test, the slow ones too
	$(BIN)/pytest

HUB_VENV := .venv-hub
HUB_STAMP := $(HUB_VENV)/.installed-stamp
# olah, a Hub-API server for local git repositories (tests/test_hub_run.py serves the `distilbert`
# run's models and SST-2 from it through HF_ENDPOINT). It needs huggingface_hub 2.x, which the
# transformers 4.45.2 pin forbids, so it lives in its own venv; every package pinned (fast resolve).
HUB_PINS := olah==0.5.4 huggingface_hub==2.4.0 hf-xet==1.8.0 fastapi==0.165.0 fastapi-utils==0.8.0 \
	starlette==1.10.0 uvicorn==0.54.0 h11==0.16.0 anyio==4.16.0 httpx==0.28.1 httpcore==1.0.9 \
	httpx2==2.16.2 httpcore2==2.16.2 GitPython==3.2.1 gitdb==4.0.12 smmap==5.0.3 pydantic==2.14.4 \
	pydantic_core==2.50.5 pydantic-settings==2.16.3 annotated-types==0.8.0 annotated-doc==0.0.7 \
	typing_extensions==4.16.0 typing-inspection==0.4.5 typing-inspect==0.9.0 mypy_extensions==1.2.0 \
	toml==0.10.2 PyYAML==6.0.4 peewee==4.5.3 portalocker==4.4.2 psutil==5.9.8 requests==2.34.2 \
	urllib3==2.8.0 certifi==2026.10.19.post1 charset-normalizer==3.5.3 idna==3.20 brotli==1.2.1 \
	truststore==0.10.5 tenacity==9.2.1 shortuuid==1.0.13 pytz==2026.6 python-multipart==0.0.34 \
	python-dotenv==1.2.4 opentelemetry-api==1.45.2 filelock==4.3.1 fsspec==2026.9.0 packaging==26.4 \
	tqdm==4.70.1 click==8.5.1 rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 Pygments==2.21.0 \
	Jinja2==3.1.6 MarkupSafe==3.0.4

$(HUB_STAMP):
	@test -x $(HUB_VENV)/bin/pip || $(PYTHON) -m venv --clear $(HUB_VENV)
	@echo "installing olah==0.5.4 into $(HUB_VENV) (log: $(HUB_VENV)/pip.log)"
	@$(HUB_VENV)/bin/pip install --quiet --disable-pip-version-check $(HUB_PINS) > $(HUB_VENV)/pip.log 2>&1 \
		|| { grep -v "is ignored: it is neither" $(HUB_VENV)/pip.log; exit 1; }
	@touch $(HUB_STAMP)

hub-server: $(HUB_STAMP) ## create .venv-hub with olah, the local Hub server of the Hub-run test

report: venv ## build reports/ for every run (RUN=standin for one); runs missing the Hub or data show as skipped
	$(BIN)/sst2bench report $(if $(RUN),--runs $(RUN))

check: venv ## run the short `ci` run (or RUN=...), then the accuracy gate against params/baselines/<run>/<ISA class>.json
	$(BIN)/sst2bench report --runs $(or $(RUN),ci) --quick
	$(BIN)/sst2bench check --run $(or $(RUN),ci)

checkpoints: venv ## the stand-in (or RUN=ci) fine-tuned again with seed 2, then each int8 delta on both checkpoints (reports/checkpoints/)
	$(BIN)/sst2bench report --runs $(or $(RUN),standin) $(or $(RUN),standin)-seed2 $(if $(filter ci,$(RUN)),--quick)
	$(BIN)/sst2bench report --checkpoints runs/$(or $(RUN),standin) runs/$(or $(RUN),standin)-seed2

standin: venv ## build the offline stand-in model (convert all-MiniLM-L6-v2, fine-tune on SST-2)
	$(BIN)/sst2bench build-standin

evaluate: venv ## accuracy of the stand-in on SST-2 validation
	$(BIN)/sst2bench evaluate --model models/standin/fp32

# jupyter/ holds this project's Lab settings: each notebook listed once (its .py), no news pop-up.
LAB_ENV := JUPYTER_CONFIG_PATH=$(CURDIR)/jupyter
LAB_ARGS := --notebook-dir=notebooks --ip=127.0.0.1 --no-browser --MappingKernelManager.default_kernel_name=$(KERNEL) \
	$(if $(filter 0,$(shell id -u)),--allow-root)

lab: venv ## start JupyterLab on notebooks/ with the sst2bench kernel (each notebook listed once, opened from its .py)
	$(LAB_ENV) $(BIN)/jupyter lab $(LAB_ARGS)

clean: ## remove generated runs and reports (keeps .venv, models and data)
	rm -rf runs reports/*/ reports/index.html
