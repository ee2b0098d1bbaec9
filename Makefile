# streamguard: the two commands of the README's quick start, and helpers.
#   make test   install what is missing (scripts/setup.sh), then lint and run the whole suite
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build test lint vectors

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

test: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --all-targets

# Regenerate the PDQ conformance vectors from Meta's reference (needs scripts/setup.sh first).
vectors: setup
	.venv/bin/python scripts/pdq_vectors.py
