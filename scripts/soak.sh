#!/usr/bin/env bash
# The soak for the example node (issue #22): our node (native, or in wasmtime with --host
# wasm|both) synced from bcoin serves a churn of light clients that sync and leave or are cut
# off, clients that never read and clients that trickle, while its RSS and descriptors are
# sampled; after warm-up they must stay flat, every completed sync must end at bcoin's tip and
# good clients must be answered in time. Prints PASS/FAIL per host with the figures, ends with
# `soak: N passed, M failed`; exits non-zero on any failure.
#
#   scripts/soak.sh                         3 minutes, our node native
#   scripts/soak.sh --host both             3 minutes each, native and in wasmtime
#   scripts/soak.sh --hours 6 --host wasm   the long soak
#   scripts/soak.sh --mine-interval 20      bcoin mines as it runs: the node must follow
#   scripts/soak.sh --node-arg=--ping-interval=30
#
# Self-cleaning: bcoin, the proxies, nodes and clients are children of the Python runner,
# ended by it on exit and on SIGINT/SIGTERM, and by the kernel if it is killed
# (PR_SET_PDEATHSIG); this script's trap ends the runner and removes the temporary directory
# they all work in. See TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
HARNESS_TMP=$(mktemp -d -t soak.XXXXXX)
export HARNESS_TMP
runner=
cleanup() {
    if [ -n "$runner" ]; then kill "$runner" 2>/dev/null || true; wait "$runner" 2>/dev/null || true; fi
    rm -rf "$HARNESS_TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
python3 scripts/harness/soak.py "$@" &
runner=$!
wait "$runner"
