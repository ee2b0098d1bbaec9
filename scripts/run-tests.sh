#!/usr/bin/env bash
# Runs the (already built) test suite under a time limit, TEST_LIMIT (default 30m): a test
# that hangs stops the run with a message saying so, instead of holding CI until its own
# limit. Used by `make test`.
set -uo pipefail
limit=${TEST_LIMIT:-30m}
cargo=${CARGO:-cargo}

# timeout runs the suite in a process group of its own, so that at the limit every process
# of the suite is killed. A Ctrl-C at the terminal does not reach that group: pass it on.
timeout --kill-after=30s "$limit" "$cargo" test --no-fail-fast --lib --tests &
suite=$!
trap 'kill -TERM "$suite" 2>/dev/null' INT TERM
while :; do
    wait "$suite"
    rc=$?
    # `wait` also returns when a trapped signal arrives: wait again until the suite is gone.
    kill -0 "$suite" 2>/dev/null || break
done
if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    echo "make test: the suite was still running after $limit and was stopped; a test named above as running for over 60 seconds hangs" >&2
fi
exit "$rc"
