#!/usr/bin/env bash
# Transit-fault scenarios for the example node (issue #22): bcoin (regtest, loopback) ->
# scripts/fault-proxy.py -> our node (native, or in wasmtime with --host wasm|both) ->
# fault-proxy -> light clients. Prints PASS/FAIL per scenario with the reason and ends with
# `transit-faults: N passed, M failed`; exits non-zero on any failure.
#
#   scripts/transit-faults.sh                       every scenario, our node native
#   scripts/transit-faults.sh --host both           native, then in wasmtime
#   scripts/transit-faults.sh --only reset-mid-headers,follow-tip
#   scripts/transit-faults.sh --list                the scenarios, and what the node did before #22
#   scripts/transit-faults.sh --node-arg=--verbose  pass a flag to every node started
#
# Self-cleaning: bcoin, the proxies, nodes and clients are children of the Python runner,
# ended by it on exit and on SIGINT/SIGTERM, and by the kernel if it is killed
# (PR_SET_PDEATHSIG); this script's trap ends the runner and removes the temporary directory
# they all work in. See TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS_TMP=$(mktemp -d -t transit-faults.XXXXXX)
export HARNESS_TMP
runner=
cleanup() {
    if [ -n "$runner" ]; then kill "$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; fi
    rm -rf "$HARNESS_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
python3 scripts/harness/transit.py "$@" &
runner=$!
wait "$runner"
