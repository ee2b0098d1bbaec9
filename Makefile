# streamguard: the two commands of the README's quick start, and helpers.
#   make demo   install what is missing, build, run the daemon on the embedded demo config
#   make test   install what is missing (scripts/setup.sh), then lint and run the whole suite
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: setup build demo test lint vectors

setup:
	bash scripts/setup.sh

build: setup
	$(CARGO) build --release

demo: build
	./target/release/streamguard run

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The suite runs in about 2 minutes on 2 cores once built; scripts/run-tests.sh stops a hung
# one after TEST_LIMIT with a message saying so (each test that runs long is named above it).
TEST_LIMIT ?= 30m
export TEST_LIMIT CARGO

test: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --lib --tests --no-run
	bash scripts/run-tests.sh

# Regenerate the PDQ conformance vectors from Meta's reference (needs scripts/setup.sh first).
vectors: setup
	.venv/bin/python scripts/pdq_vectors.py
