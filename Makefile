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

# The suite runs in about 2 minutes on 2 cores once built. TEST_LIMIT stops a hung one with a
# clear message (each test that runs long is named above it) instead of at CI's time limit.
TEST_LIMIT ?= 30m

test: setup
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) test --lib --tests --no-run
	timeout --kill-after=30s $(TEST_LIMIT) $(CARGO) test --lib --tests || { rc=$$?; \
	  if [ $$rc -eq 124 ] || [ $$rc -eq 137 ]; then echo "make test: the suite was still running after $(TEST_LIMIT) and was stopped; a test named above as running for over 60 seconds hangs" >&2; fi; \
	  exit $$rc; }

# Regenerate the PDQ conformance vectors from Meta's reference (needs scripts/setup.sh first).
vectors: setup
	.venv/bin/python scripts/pdq_vectors.py
