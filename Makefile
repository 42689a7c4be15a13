# sst2bench: `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
RUN ?=
KERNEL := sst2bench

.PHONY: help venv browser test report check standin evaluate lab clean

help: ## list the targets with one line each
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
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

test: venv browser ## run the offline test suite (what CI runs; needs SST-2 files, see README)
	$(BIN)/pytest

report: venv ## build reports/ for every run (RUN=standin for one); runs missing the Hub or data show as skipped
	$(BIN)/sst2bench report $(if $(RUN),--runs $(RUN))

check: venv ## run the short `ci` run (or RUN=...), then the accuracy gate against params/baselines/<run>.json
	$(BIN)/sst2bench report --runs $(or $(RUN),ci) --quick
	$(BIN)/sst2bench check --run $(or $(RUN),ci)

standin: venv ## build the offline stand-in model (convert all-MiniLM-L6-v2, fine-tune on SST-2)
	$(BIN)/sst2bench build-standin

evaluate: venv ## accuracy of the stand-in on SST-2 validation
	$(BIN)/sst2bench evaluate --model models/standin/fp32

lab: venv ## start JupyterLab with the sst2bench kernel
	$(BIN)/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 --no-browser \
		--MappingKernelManager.default_kernel_name=$(KERNEL) $(if $(filter 0,$(shell id -u)),--allow-root)

clean: ## remove generated runs and reports (keeps .venv, models and data)
	rm -rf runs reports/*/ reports/index.html
