# tvm: the two commands a newcomer runs are `make demo` and `make test`.
# Everything they need is installed here: pinned Python packages into venvs
# (one per tool family: they conflict), Rust crates by cargo.

SHELL := /bin/bash
PYTHON ?= python3
export SAM_CLI_TELEMETRY := 0

# venv name -> requirements file
VENV := .venv
VENV_SAM := .venv-sam
VENV_CHECKOV := .venv-checkov
VENV_LAMBDA := .venv-lambda
VENV_LOCALSTACK := .venv-localstack
# LocalStack's host mode needs Python 3.13: pyenv's on these machines, else
# python3.13 on PATH; without one the LocalStack check in make test skips.
PYTHON313 ?= $(or $(wildcard /root/.pyenv/versions/3.13*/bin/python3.13),$(shell command -v python3.13 2>/dev/null))
stamp = $(1)/.installed-$(shell sha1sum $(2) | cut -c1-12)

.PHONY: demo test help check venv venv-localstack browser cdk bins lint-infra build package deploy layer release bench bench-smoke fuzz fmt clean

FUZZ_CASES ?= 20000
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := policy render identity_header event

## demo: build, start the local stack, vend for two tenants, show what reached STS, stop
demo: venv bins
	$(VENV)/bin/python scripts/demo.py

## test: format, clippy, unit, integration and end-to-end tests (emulator included), a quick benchmark smoke, infra checks
test: venv venv-localstack browser
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	@# All targets, so that the binaries share the tests' dependency features
	@# (tokio test-util is a dev-dependency): one build, not two.
	cargo build --workspace --all-targets
	cargo test --workspace
	$(VENV)/bin/python -m unittest discover -s scripts -p 'test_*.py'
	$(VENV)/bin/python -m py_compile scripts/bootstrap.py scripts/demo.py scripts/moto_serial.py bench/report.py
	$(MAKE) bench-smoke
	$(MAKE) lint-infra

## help: list the targets with what they do (from the Makefile's own `## target: text` lines)
help:
	@awk '/^## [A-Za-z0-9_-]+: / { sub(/^## /, ""); n = index($$0, ":"); printf "  %-12s %s\n", substr($$0, 1, n - 1), substr($$0, n + 2); more = 1; next } \
	  /^## / && more { sub(/^## /, ""); printf "  %-12s %s\n", "", $$0; next } { more = 0 }' $(MAKEFILE_LIST)

## check: the fast loop: format, clippy, unit tests only (no emulator, no infra linting)
check:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo test --workspace --lib --bins

## lint-infra: SAM, cfn-lint, checkov, hadolint, terraform fmt, cross-checks, LocalStack hooks
lint-infra: venv $(call stamp,$(VENV_SAM),scripts/requirements-sam.txt) $(call stamp,$(VENV_CHECKOV),scripts/requirements-checkov.txt)
	$(VENV_SAM)/bin/sam validate --lint -t template.yaml
	$(VENV_SAM)/bin/cfn-lint template.yaml infra/cloudformation/*.yaml
	$(VENV_CHECKOV)/bin/checkov --quiet --compact --skip-download -f template.yaml
	$(VENV_CHECKOV)/bin/checkov --quiet --compact --skip-download -d infra/cloudformation
	$(VENV_CHECKOV)/bin/checkov --quiet --compact --skip-download -d infra/terraform
	$(VENV_CHECKOV)/bin/hadolint Dockerfile && echo "hadolint: Dockerfile clean"
	@if command -v terraform >/dev/null; then terraform fmt -check -recursive infra/terraform && echo "terraform fmt: clean"; \
	  else echo "terraform not installed: skipping terraform fmt -check (the hcl2 cross-checks below still run)"; fi
	$(VENV)/bin/python -m unittest discover -s infra/tests
	$(MAKE) --no-print-directory cdk
	bash -n localstack/init/ready.d/*.sh
	$(VENV)/bin/shellcheck localstack/init/ready.d/*.sh layer/tvm-wrapper
	$(VENV)/bin/python -c "import yaml; yaml.safe_load(open('localstack/docker-compose.yml'))"

## build: the release bootstrap for Lambda (arm64), with cargo-lambda from PyPI (it brings zig)
build: $(call stamp,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
	PATH="$(CURDIR)/$(VENV_LAMBDA)/bin:$$PATH" cargo lambda build --release --arm64 -p tvm-lambda --bin bootstrap

## package: the deploy zip, target/lambda/bootstrap/bootstrap.zip
package: $(call stamp,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
	PATH="$(CURDIR)/$(VENV_LAMBDA)/bin:$$PATH" cargo lambda build --release --arm64 -p tvm-lambda --bin bootstrap --output-format zip
	@ls -l target/lambda/bootstrap/bootstrap.zip

## layer: the client's Lambda layer for arm64 and x86_64 (bin/tvm + the exec wrapper), in dist/
DIST := dist
CROSS = PATH="$(CURDIR)/$(VENV_LAMBDA)/bin:$$PATH" cargo lambda build --release -p tvm-cli --bin tvm
layer: venv $(call stamp,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
	@mkdir -p $(DIST)
	$(CROSS) --arm64
	$(VENV)/bin/python scripts/layer.py $(DIST)/tvm-layer-arm64.zip target/lambda/tvm/bootstrap
	$(CROSS) --x86-64
	$(VENV)/bin/python scripts/layer.py $(DIST)/tvm-layer-x86_64.zip target/lambda/tvm/bootstrap

## release: the client for linux x86_64 and aarch64 (glibc 2.17 and later, cross-built with zig),
## the layers, the function's zip, and SHA256SUMS, in dist/
release: layer package
	$(CROSS) --target x86_64-unknown-linux-gnu.2.17
	cp target/lambda/tvm/bootstrap $(DIST)/tvm-linux-x86_64
	$(CROSS) --target aarch64-unknown-linux-gnu.2.17
	cp target/lambda/tvm/bootstrap $(DIST)/tvm-linux-aarch64
	cp target/lambda/bootstrap/bootstrap.zip $(DIST)/tvm-lambda-arm64.zip
	cd $(DIST) && sha256sum tvm-linux-x86_64 tvm-linux-aarch64 tvm-layer-arm64.zip tvm-layer-x86_64.zip tvm-lambda-arm64.zip > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

## deploy: sam build + sam deploy (--guided the first time, which writes samconfig.toml)
deploy: $(call stamp,$(VENV_SAM),scripts/requirements-sam.txt) $(call stamp,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
	PATH="$(CURDIR)/$(VENV_LAMBDA)/bin:$$PATH" $(VENV_SAM)/bin/sam build --beta-features
	@if [ -f samconfig.toml ]; then $(VENV_SAM)/bin/sam deploy; else $(VENV_SAM)/bin/sam deploy --guided; fi

## bench: measure (criterion, sizes, the release bootstrap on the local stack) and regenerate docs/performance.md
## (BENCH_FLAGS=--quick for a short run; its numbers are not for the docs)
BENCH_FLAGS ?=
bench: venv $(call stamp,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
	cargo bench -p tvm-core --bench core -- --warm-up-time 1 --measurement-time 3
	cargo bench -p tvm-lambda --bench handler -- --warm-up-time 1 --measurement-time 3
	cargo build --release -p tvm-bench
	@# Last, so that the measured bootstrap has the function's features only
	@# (cargo bench rebuilds it with the dev-dependencies' features).
	cargo build --release -p tvm-lambda --bin bootstrap
	PATH="$(CURDIR)/$(VENV_LAMBDA)/bin:$$PATH" cargo lambda build --release --arm64 -p tvm-lambda --bin bootstrap --output-format zip
	@mkdir -p bench/results
	target/release/tvm-bench target/release/bootstrap bench/results/runtime.json $(BENCH_FLAGS)
	$(VENV)/bin/python bench/report.py

## bench-smoke: part of make test: the benchmark pipeline end to end with --quick on the
## debug bootstrap, so that make bench cannot rot; its numbers are thrown away
bench-smoke: venv
	@mkdir -p target/bench-smoke
	target/debug/tvm-bench target/debug/bootstrap target/bench-smoke/runtime.json --quick
	$(VENV)/bin/python bench/report.py target/bench-smoke/runtime.json target/bench-smoke/performance.md

## venv: the Python venv the demo and the tests use (.venv, from scripts/requirements.txt)
venv: $(call stamp,$(VENV),scripts/requirements.txt)

## venv-localstack: LocalStack in host mode (.venv-localstack, Python 3.13) for the LocalStack check
venv-localstack:
	@if [ -z "$(PYTHON313)" ]; then echo "no Python 3.13 found: the LocalStack check in make test will skip"; \
	else $(MAKE) --no-print-directory $(call stamp,$(VENV_LOCALSTACK),scripts/requirements-localstack.txt); fi

## browser: the browser test's parts: Debian's chromium (apt-get, if missing; the test says
## SKIPPED without it, or fails under TVM_REQUIRE_BROWSER=1), browser/'s npm packages
## (npm ci from package-lock.json), and the page's bundle (esbuild)
export CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,$(shell command -v sudo 2>/dev/null))
browser: $(call stamp,browser/node_modules,browser/package-lock.json)
	@if [ ! -x "$(CHROMIUM)" ]; then \
	  echo "installing Debian's chromium for the browser test"; \
	  $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null 2>&1 || \
	  { $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y chromium >/dev/null; } || \
	  echo "could not install chromium: the browser test will say SKIPPED"; fi
	cd browser && npm run --silent build

## cdk: the CDK construct (cdk/): npm ci from its lockfile, tsc, cdk synth offline of its
## example app, and the check that it deploys the SAM template's resources and IAM
cdk: $(call stamp,cdk/node_modules,cdk/package-lock.json) $(call stamp,$(VENV_SAM),scripts/requirements-sam.txt)
	@# cdk synth's validation warns about SAM's Function.Alias (resolved by the transform at deploy): kept in cdk/synth.log.
	cd cdk && npm run --silent build && { CDK_DISABLE_CLI_TELEMETRY=true npm run --silent synth > synth.log 2>&1 || { cat synth.log; exit 1; }; }
	AWS_DEFAULT_REGION=eu-west-1 $(VENV_SAM)/bin/python infra/tests/cdk_check.py

cdk/node_modules/.installed-%: cdk/package-lock.json
	cd cdk && npm ci --no-audit --no-fund --loglevel=error
	touch $(call stamp,cdk/node_modules,cdk/package-lock.json)

browser/node_modules/.installed-%: browser/package-lock.json
	cd browser && npm ci --no-audit --no-fund --loglevel=error
	touch $(call stamp,browser/node_modules,browser/package-lock.json)

# One rule for every venv: create it, install its pinned requirements, stamp it.
.venv/.installed-%: scripts/requirements.txt
	@$(call install,$(VENV),scripts/requirements.txt)
.venv-sam/.installed-%: scripts/requirements-sam.txt
	@$(call install,$(VENV_SAM),scripts/requirements-sam.txt)
.venv-checkov/.installed-%: scripts/requirements-checkov.txt
	@$(call install,$(VENV_CHECKOV),scripts/requirements-checkov.txt)
.venv-lambda/.installed-%: scripts/requirements-lambda.txt
	@$(call install,$(VENV_LAMBDA),scripts/requirements-lambda.txt)
.venv-localstack/.installed-%: scripts/requirements-localstack.txt
	@$(call install,$(VENV_LOCALSTACK),scripts/requirements-localstack.txt,$(PYTHON313))

define install
	test -x $(1)/bin/python || $(or $(3),$(PYTHON)) -m venv $(1)
	$(1)/bin/pip install --quiet --disable-pip-version-check -r $(2)
	rm -f $(1)/.installed-*
	touch $(call stamp,$(1),$(2))
endef

## fuzz: cargo-fuzz (libFuzzer, coverage-guided) on every parser for FUZZ_SECONDS each,
## then the proptest targets with FUZZ_CASES inputs (make test runs 256 of each)
fuzz:
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --version 0.13.2
	cargo fuzz build -s none
	@set -o pipefail; for t in $(FUZZ_TARGETS); do \
	  mkdir -p fuzz/.work/$$t && \
	  echo "== $$t ($(FUZZ_SECONDS) s)" && \
	  cargo fuzz run -s none $$t fuzz/.work/$$t $$(if [ $$t = event ]; then echo fixtures/events; else echo fuzz/corpus/$$t; fi) -- -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ *DONE|Done|stat::number_of_executed_units|==)|panicked|ERROR" || exit 1; \
	done
	PROPTEST_CASES=$(FUZZ_CASES) cargo test --release -p tvm-core -p tvm-lambda --lib fuzz_

## bins: debug builds of every workspace binary (the demo and the tests run them)
bins:
	cargo build --workspace --all-targets

## fmt: format the Rust and the Terraform
fmt:
	cargo fmt --all
	terraform fmt -recursive infra/terraform

## clean: remove the venvs, the local stack's state, SAM's build and cargo's target
clean:
	rm -rf $(VENV) $(VENV_SAM) $(VENV_CHECKOV) $(VENV_LAMBDA) $(VENV_LOCALSTACK) .tvm .aws-sam $(DIST) browser/node_modules browser/dist cdk/node_modules cdk/dist cdk/cdk.out
	cargo clean
