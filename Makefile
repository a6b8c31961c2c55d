# tvm: the two commands a newcomer runs are `make demo` and `make test`.
# Everything they need is installed here: pinned Python packages into .venv,
# Rust crates by cargo.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
STAMP := $(VENV)/.installed-$(shell sha1sum scripts/requirements.txt | cut -c1-12)

.PHONY: demo test venv bins fmt lint unit clean

## demo: build, start the local stack, vend for two tenants, show what reached STS, stop
demo: venv bins
	$(VENV)/bin/python scripts/demo.py

## test: format check, clippy, unit, integration and end-to-end tests (emulator included)
test: venv
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo build --workspace --bins
	cargo test --workspace
	$(VENV)/bin/python -m py_compile scripts/bootstrap.py scripts/demo.py

## venv: the pinned emulator and AWS CLI (moto server, boto3, awscli) in .venv
venv: $(STAMP)
$(STAMP): scripts/requirements.txt
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements.txt
	@rm -f $(VENV)/.installed-*
	@touch $@

bins:
	cargo build --workspace --bins

fmt:
	cargo fmt --all

clean:
	rm -rf $(VENV) .tvm
	cargo clean
