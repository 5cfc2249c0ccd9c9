# ECS Autopilot: the two commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
PYTHON ?= python3
CARGO ?= cargo
MINISTACK_VENV := .venv-ministack
LINT_VENV := .venv-lint
FUNCTIONS := task-triage alarm-scaler batch-runner

.PHONY: all build release package ministack lint-tools fmt-check clippy unit-and-integration cfn-lint test demo bench clean

all: build

# ministack pins botocore exactly; aws-sam-translator (its CloudFormation applies the SAM
# transform of template.yaml with it) is resolved together with that pin.
MINISTACK_PACKAGES := 'ministack==1.5.33' cbor2 'aws-sam-translator==1.115.0'
$(MINISTACK_VENV)/.installed: Makefile
	$(PYTHON) -m venv $(MINISTACK_VENV)
	$(MINISTACK_VENV)/bin/pip install --quiet --disable-pip-version-check $(MINISTACK_PACKAGES)
	$(MINISTACK_VENV)/bin/pip check
	touch $@

$(LINT_VENV)/bin/cfn-lint:
	$(PYTHON) -m venv $(LINT_VENV)
	$(LINT_VENV)/bin/pip install --quiet --disable-pip-version-check 'cfn-lint>=1.40,<2'

ministack: $(MINISTACK_VENV)/.installed
lint-tools: $(LINT_VENV)/bin/cfn-lint

build:
	$(CARGO) build $(addprefix -p ,$(FUNCTIONS))

# Release builds are made the way `sam build` makes them (cargo lambda 1.9 runs, per function,
# `cargo build --target <arch>-unknown-linux-gnu --config build.rustflags=["-C", "target-cpu=…"]
# --release --bin <function>` over the workspace's default members: the functions and their
# library), for this machine's architecture: so `make bench` and `make demo` measure and run the
# binaries `sam build` ships (README, "Deploying with SAM": equal hashes for x86_64).
LAMBDA_ARCH := $(shell uname -m)
LAMBDA_TARGET := $(LAMBDA_ARCH)-unknown-linux-gnu
LAMBDA_CPU := $(if $(filter aarch64,$(LAMBDA_ARCH)),neoverse-n1,haswell)
LAMBDA_BUILD := --release --target $(LAMBDA_TARGET) --config 'build.rustflags=["-C", "target-cpu=$(LAMBDA_CPU)"]'
RELEASE_DIR := target/$(LAMBDA_TARGET)/release

release:
	$(CARGO) build $(LAMBDA_BUILD) $(addprefix -p ,$(FUNCTIONS))

# Lambda deployment packages: target/lambda/<function>/bootstrap and <function>.zip.
package: release
	@for f in $(FUNCTIONS); do \
	  mkdir -p target/lambda/$$f && cp $(RELEASE_DIR)/$$f target/lambda/$$f/bootstrap && \
	  (cd target/lambda/$$f && rm -f $$f.zip && $(PYTHON) -c "import zipfile,os; z=zipfile.ZipFile('$$f.zip','w',zipfile.ZIP_DEFLATED); i=zipfile.ZipInfo('bootstrap'); i.external_attr=0o755<<16; i.compress_type=zipfile.ZIP_DEFLATED; z.writestr(i, open('bootstrap','rb').read()); z.close()") && \
	  echo "target/lambda/$$f/$$f.zip: $$(stat -c %s target/lambda/$$f/$$f.zip) bytes"; \
	done

fmt-check:
	$(CARGO) fmt --all --check

clippy:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# Unit and property tests, adapter tests with aws-smithy-mocks, and the integration tests
# against a local cloud the harness starts (they deploy the debug build of each function).
unit-and-integration: ministack
	$(CARGO) build $(addprefix -p ,$(FUNCTIONS))
	$(CARGO) test --workspace

cfn-lint: lint-tools
	$(LINT_VENV)/bin/cfn-lint template.yaml member-template.yaml

test: fmt-check clippy unit-and-integration cfn-lint

# The main job on the local cloud, with the release build of the function.
demo: ministack release
	$(CARGO) build -p autopilot-tests --bin autopilot-demo
	AUTOPILOT_BIN_DIR=$(RELEASE_DIR) ./target/debug/autopilot-demo

# Performance figures for the README: throughput, init time and peak RSS against a local Runtime
# API stub (beside a bare lambda_runtime echo), and package sizes.
bench: package
	$(CARGO) build $(LAMBDA_BUILD) -p autopilot-bench
	./$(RELEASE_DIR)/autopilot-bench tests/fixtures $(RELEASE_DIR)
	@for f in $(FUNCTIONS); do \
	  echo "| $$f bootstrap / zipped | $$(( $$(stat -c %s target/lambda/$$f/bootstrap) / 1024 )) KiB / $$(( $$(stat -c %s target/lambda/$$f/$$f.zip) / 1024 )) KiB | zipped ≤ 4096 KiB |"; \
	done

clean:
	$(CARGO) clean
	rm -rf $(MINISTACK_VENV) $(LINT_VENV)
