# ECS Autopilot: the two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
CARGO ?= cargo
MINISTACK_VENV := .venv-ministack
LINT_VENV := .venv-lint
FUNCTIONS := task-triage alarm-scaler batch-runner

.PHONY: all build build-tools release package dist schema schema-check ministack lint-tools fmt-check clippy unit-and-integration cfn-lint test demo bench bench-load fuzz clean

all: build

# ministack pins botocore exactly; aws-sam-translator (its CloudFormation applies the SAM
# transform of template.yaml with it) is resolved together with that pin.
MINISTACK_PACKAGES := 'ministack==1.5.33' cbor2 'aws-sam-translator==1.115.0'
$(MINISTACK_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --disable-pip-version-check $(MINISTACK_PACKAGES)
	$(MINISTACK_VENV)/bin/pip check
	touch $@

$(LINT_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.40,<2' 'check-jsonschema>=0.29,<1'
	touch $@

ministack: $(MINISTACK_VENV)/.installed
lint-tools: $(LINT_VENV)/.installed

build:
	$(CARGO) build $(addprefix -p ,$(FUNCTIONS))

# Release builds are made by the tool `sam build` runs, cargo-lambda 1.9.2 (PyPI, with the zig it
# links with) in a project-local virtualenv, with the same arguments (`--release --bin <function>`
# over the workspace's default members: the functions and their library; `--arm64` on aarch64):
# so `make package`, `make bench` and `make demo` build, measure and run the bytes `sam build`
# ships (README, "Build from source (SAM)"). The bench and its echo baseline are built the same way.
BUILD_VENV := .venv-build
LAMBDA_ARCH := $(shell uname -m)
# cargo lambda moves each binary to target/lambda/<name>/bootstrap; target/lambda/bin names them.
RELEASE_DIR := target/lambda/bin
CARGO_LAMBDA_BUILD := PATH="$(CURDIR)/$(BUILD_VENV)/bin:$$PATH" cargo-lambda lambda build --release $(if $(filter aarch64,$(LAMBDA_ARCH)),--arm64,)

$(BUILD_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(BUILD_VENV)
	$(BUILD_VENV)/bin/pip install --quiet --disable-pip-version-check 'cargo-lambda==1.9.2'
	touch $@

build-tools: $(BUILD_VENV)/.installed

release: build-tools
	@for f in $(FUNCTIONS); do $(CARGO_LAMBDA_BUILD) --bin $$f || exit 1; done
	@mkdir -p $(RELEASE_DIR) && for f in $(FUNCTIONS); do ln -sfn ../$$f/bootstrap $(RELEASE_DIR)/$$f; done

# Lambda deployment packages: target/lambda/<function>/bootstrap and <function>.zip.
package: release
	@for f in $(FUNCTIONS); do \
	  (cd target/lambda/$$f && rm -f $$f.zip && $(PYTHON) -c "import zipfile,os; z=zipfile.ZipFile('$$f.zip','w',zipfile.ZIP_DEFLATED); i=zipfile.ZipInfo('bootstrap'); i.external_attr=0o755<<16; i.compress_type=zipfile.ZIP_DEFLATED; z.writestr(i, open('bootstrap','rb').read()); z.close()") && \
	  echo "target/lambda/$$f/$$f.zip: $$(stat -c %s target/lambda/$$f/$$f.zip) bytes"; \
	done

# Release artifacts in dist/ (README, "Deploy without building"): each function's zip per
# architecture (arm64 when the aarch64 Rust target is installed, and x86_64), packaged.yaml and
# SHA256SUMS. Built in their own target directory with the workspace and cargo home paths
# remapped, so that the same sources give the same bytes from any clone. RUSTFLAGS replaces the
# target CPU cargo lambda sets through build.rustflags, so it is named again: the one `sam
# build` uses.
DIST_ARCHES ?= $(shell rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$' && echo arm64) x86_64
DIST_BUILD := target/dist-build
DIST_RUSTFLAGS := --remap-path-prefix=$(CURDIR)=/autopilot --remap-path-prefix=$(or $(CARGO_HOME),$(HOME)/.cargo)=/cargo
dist: build-tools
	@for arch in $(DIST_ARCHES); do 	  flag=$$([ $$arch = arm64 ] && echo --arm64 || echo --x86-64); 	  cpu=$$([ $$arch = arm64 ] && echo neoverse-n1 || echo haswell); 	  for f in $(FUNCTIONS); do 	    CARGO_TARGET_DIR=$(DIST_BUILD) RUSTFLAGS="$(DIST_RUSTFLAGS) -C target-cpu=$$cpu" PATH="$(CURDIR)/$(BUILD_VENV)/bin:$$PATH" 	      cargo-lambda lambda build --release $$flag --lambda-dir $(DIST_BUILD)/lambda-$$arch --bin $$f || exit 1; 	    mkdir -p $(DIST_BUILD)/bin-$$arch && cp $(DIST_BUILD)/lambda-$$arch/$$f/bootstrap $(DIST_BUILD)/bin-$$arch/$$f; 	  done; 	done
	$(CARGO) build -p autopilot-dist
	./target/debug/autopilot-dist dist $(foreach a,$(DIST_ARCHES),$(a)=$(DIST_BUILD)/bin-$(a))
	@echo "built for: $(DIST_ARCHES)"

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and property tests, adapter tests with aws-smithy-mocks, and the integration tests
# against a local cloud the harness starts (they deploy the debug build of each function).
unit-and-integration: ministack
	$(CARGO) build $(addprefix -p ,$(FUNCTIONS))
	$(CARGO) test --workspace

# cfn-lint with the project's security walk (lint-rules/security_walk.py, E9001: no write on
# Resource "*", iam:PassRole only with iam:PassedToService, queues and topics encrypted, no
# sts:AssumeRole in any account, no role trusted by wildcard), which must also refuse its
# counter-example with exactly its seven findings.
cfn-lint: lint-tools
	$(LINT_VENV)/bin/cfn-lint template.yaml member-template.yaml --append-rules lint-rules
	@found=$$($(LINT_VENV)/bin/cfn-lint lint-rules/insecure.yaml --append-rules lint-rules | grep -c '^E9001'); \
	  if [ "$$found" -ne 7 ]; then echo "security walk: expected 7 E9001 findings in lint-rules/insecure.yaml, got $$found"; exit 1; fi; \
	  echo "security walk: lint-rules/insecure.yaml refused with its 7 findings"

# config.schema.json is generated from the configuration types (a unit test holds the file to
# them); the example parts an editor would check with it pass check-jsonschema and check-config.
schema:
	UPDATE_SCHEMA=1 $(CARGO) test -p autopilot-core --lib config_schema_json_is_what_the_types_make

schema-check: lint-tools
	$(LINT_VENV)/bin/check-jsonschema --schemafile config.schema.json examples/config/*.json
	@if $(LINT_VENV)/bin/check-jsonschema --schemafile config.schema.json tests/fixtures/config/misspelt-key.json > /dev/null; then \
	  echo "config.schema.json took a misspelt key (tests/fixtures/config/misspelt-key.json)"; exit 1; fi
	@echo "config.schema.json refuses tests/fixtures/config/misspelt-key.json"
	$(CARGO) run -q -p task-triage -- check-config examples/config

test: fmt-check clippy unit-and-integration cfn-lint schema-check

# The main job on the local cloud, with the release build of the function.
demo: ministack release
	$(CARGO) build -p autopilot-tests --bin autopilot-demo
	AUTOPILOT_BIN_DIR=$(RELEASE_DIR) ./target/debug/autopilot-demo

# Performance figures (docs/performance.md): throughput, init time and peak RSS against a local Runtime
# API stub (beside a bare lambda_runtime echo), and package sizes.
bench: package
	$(CARGO_LAMBDA_BUILD) -p autopilot-bench --bins
	@for b in autopilot-bench lambda-echo; do ln -sfn ../$$b/bootstrap $(RELEASE_DIR)/$$b; done
	./$(RELEASE_DIR)/autopilot-bench tests/fixtures $(RELEASE_DIR)
	@for f in $(FUNCTIONS); do \
	  echo "| $$f bootstrap / zipped | $$(( $$(stat -c %s target/lambda/$$f/bootstrap) / 1024 )) KiB / $$(stat -c %s target/lambda/$$f/$$f.zip) bytes | no budget below 8 MB zipped |"; \
	done

# A burst of 2,000 mixed events through the deployed task-triage (release build) on the local
# cloud: counts, handler duration p50/p99 and AWS calls per event (the short version in `make
# test` is the 200-event burst of tests/tests/faults_local_cloud.rs).
bench-load: ministack release
	$(CARGO) build -p autopilot-tests --bin autopilot-bench-load
	AUTOPILOT_BIN_DIR=$(RELEASE_DIR) ./target/debug/autopilot-bench-load

# The long fuzzing run: a million structure-aware mutations of the fixtures per function, in
# release, through each function's parse + decide path (offline); findings go to fuzz/findings/.
# `make test` runs 20,000 per function (fuzz/tests/short_run.rs).
FUZZ_INPUTS ?= 1000000
FUZZ_SEED ?= 1
fuzz:
	$(CARGO) run --release -p autopilot-fuzz -- --inputs $(FUZZ_INPUTS) --seed $(FUZZ_SEED)

clean:
	$(CARGO) clean
	rm -rf $(MINISTACK_VENV) $(LINT_VENV) $(BUILD_VENV) dist
