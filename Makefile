# Entry points. `make demo` and `make test` work on a fresh clone: they create .venv first.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -ec
# pip's notes about this machine's extra local indexes are noise; real errors still fail.
PIP_QUIET := 2>&1 | { grep -v -e 'is ignored: it is neither' -e '^$$' || true; }
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
BQX := $(BIN)/bqx
export BQX_HOME ?= $(CURDIR)/.bqx
DEMO_DATA := $(BQX_HOME)/demo_data
DEMO_DAYS ?= 18
# The live segment: the two hours after the batch days (Friday 2024-01-19 00:00-01:59), a
# generated day fed one minute per second while serve runs. It continues a running week, as a
# live feed does: after a weekend, features wait for their longest window (630 minutes).
DEMO_LIVE_DAY := 2024-01-19
DEMO_LIVE_UNTIL := 2024-01-19 01:59
DOCS_PORT ?= 8080

.PHONY: setup demo test lint pytest browser docs bench lambda-package lambda-layer clean help

help:
	@echo "make demo   - generated market → PostgreSQL → dbt features → Granger → autoencoder → multi-task nets"
	@echo "make test   - lint (ruff, import-linter, sqlfluff) + pytest (incl. dbt build/test on generated data)"
	@echo "make docs   - dbt docs site of the demo database on http://127.0.0.1:$(DOCS_PORT)"
	@echo "make bench  - benchmarks under bench/ (needs ../shared/data/fx_m1)"
	@echo "make setup  - create .venv with the pinned dependencies"
	@echo "make lambda-package - dist/lambda.zip: the online handler's code (lambda-layer: its deps)"

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip $(PIP_QUIET)
	$(BIN)/pip install --quiet -e '.[dev]' $(PIP_QUIET)
	touch $@

demo: setup
	$(BQX) db start
	$(BQX) synth --out $(DEMO_DATA) --start 2024-01-01 --days $(DEMO_DAYS) --seed 7
	$(BQX) ingest $(DEMO_DATA)
	$(BQX) build
	$(BQX) granger
	$(BQX) build --select cross_pair_lead_lag+
	$(BQX) train autoencoder
	$(BQX) embed
	$(BQX) interpret embeddings
	$(BQX) train multitask --sample-rows 3000 --validation-rows 1000 --test-rows 2000 --epochs 10
	$(BQX) predict multitask
	$(BQX) online replay --pairs EURUSD,GBPUSD --from 2024-01-16 --to 2024-01-17 --fresh
	$(BQX) evaluate --folds 3 --train-rows 10000 --bootstrap 100 --stages base,cross_pair,embeddings,multitask
	$(BQX) report
	@echo "live: $(DEMO_LIVE_DAY) 00:00-01:59, 28 generated pairs fed one minute per second while serve runs"
	$(BQX) feed --synth --start $(DEMO_LIVE_DAY) --days 1 --speed 60 > $(BQX_HOME)/demo_live_feed.log 2>&1 & \
	feed=$$!; status=0; \
	$(BQX) online serve --until '$(DEMO_LIVE_UNTIL)' > $(BQX_HOME)/demo_live_serve.log 2>&1 || status=$$?; \
	kill $$feed 2>/dev/null || true; wait $$feed 2>/dev/null || true; \
	grep -v " predicted " $(BQX_HOME)/demo_live_serve.log | tail -n 14; exit $$status
	@echo
	@echo "database:      $$($(BQX) db url)"
	@echo "demo data:     $(DEMO_DATA) (ground_truth.json has the planted links)"
	@echo "artifacts:     $(BQX_HOME)/artifacts   reports: $(BQX_HOME)/reports"
	@echo "report:        $(BQX_HOME)/reports/index.html (walk-forward: bqx.evaluation_results)"
	@echo "explore:       $(BQX) --help   |   eval \"\$$($(BQX) db env)\" && psql"

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/sqlfluff lint models --processes 2

pytest: setup browser
	$(BIN)/pytest

test: lint pytest

# The dashboard and docs-site tests drive headless Chromium (Debian's package, ~30 s to
# install); without root they skip with a message instead.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium for the browser tests"; \
	    apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	  else \
	    echo "chromium missing and not root: the browser tests will skip" \
	      "(sudo apt-get install -y chromium)"; \
	  fi; }

# dbt docs need the built models (for the catalog's columns): the demo database, or
# BQX_DATABASE_URL after `bqx build`.
docs: setup
	@if [ -z "$$BQX_DATABASE_URL" ] && [ ! -f "$(BQX_HOME)/pgdata/PG_VERSION" ]; then \
	  echo "make docs: no database under $(BQX_HOME): run 'make demo' first" \
	    "(or set BQX_DATABASE_URL to a built database)"; exit 1; fi
	@$(BQX) features list >/dev/null 2>&1 || { \
	  echo "make docs: the models are not built in this database: run 'make demo'" \
	    "(or 'bqx build') first"; exit 1; }
	$(BQX) dbt docs generate
	$(BQX) dbt docs serve --host 127.0.0.1 --port $(DOCS_PORT) --no-browser

bench: setup
	$(BIN)/python -m bench.run_all $(BENCH)

# The online learner as an AWS Lambda (lambda/template.yaml): the code zip holds handler.py and
# the installed packages bqx_online and bqx core (a non-editable install of this project, minus
# models_ml, the CLI and the dashboard, which the handler never imports); river, numpy and
# psycopg2 go in a layer (boto3 is in the Lambda runtime), built for the Lambda's platform.
LAMBDA_STAGE := $(BQX_HOME)/build/lambda
lambda-package: setup
	rm -rf $(LAMBDA_STAGE) dist/lambda.zip && mkdir -p $(LAMBDA_STAGE) dist
	$(BIN)/pip install --quiet --no-deps --no-compile --target $(LAMBDA_STAGE)/site . $(PIP_QUIET)
	cp lambda/handler.py $(LAMBDA_STAGE)/
	cp -r $(LAMBDA_STAGE)/site/bqx $(LAMBDA_STAGE)/site/bqx_online $(LAMBDA_STAGE)/
	rm -rf $(LAMBDA_STAGE)/site $(LAMBDA_STAGE)/bqx/cli $(LAMBDA_STAGE)/bqx/dashboard
	cd $(LAMBDA_STAGE) && $(CURDIR)/$(BIN)/python -m zipfile -c $(CURDIR)/dist/lambda.zip \
	  handler.py bqx_online bqx
	@echo "dist/lambda.zip ($$(du -k dist/lambda.zip | cut -f1) KiB); dependencies: make lambda-layer"

lambda-layer: setup
	rm -rf $(BQX_HOME)/build/layer dist/lambda-layer.zip && mkdir -p $(BQX_HOME)/build/layer dist
	$(BIN)/pip install --quiet --target $(BQX_HOME)/build/layer/python \
	  --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 \
	  --implementation cp --python-version 3.12 \
	  --only-binary=:all: river==0.26.1 psycopg2-binary==2.9.13 $(PIP_QUIET)
	cd $(BQX_HOME)/build/layer && $(CURDIR)/$(BIN)/python -m zipfile -c \
	  $(CURDIR)/dist/lambda-layer.zip python
	@echo "dist/lambda-layer.zip ($$(du -k dist/lambda-layer.zip | cut -f1) KiB)"

clean:
	rm -rf target logs .pytest_cache
