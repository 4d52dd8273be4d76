#!/usr/bin/env bash
# Transit-fault scenarios for the example node (issue #22): bcoin (regtest, loopback) ->
# scripts/fault-proxy.py -> our node (native, or in wasmtime with --host wasm|both) ->
# fault-proxy -> light clients. Prints PASS/FAIL per scenario with the reason and ends with
# `transit-faults: N passed, M failed`; exits non-zero on any failure.
#
#   scripts/transit-faults.sh                       every scenario, our node native
#   scripts/transit-faults.sh --host both           native, then in wasmtime
#   scripts/transit-faults.sh --only reset-mid-headers,follow-tip
#   scripts/transit-faults.sh --list                the scenarios, and what today's node does
#   scripts/transit-faults.sh --node-arg=--verbose  pass a flag to every node started
#
# Self-cleaning: bcoin, the proxies, the nodes and the light clients are children of the
# Python runner, ended by it on exit, on SIGINT/SIGTERM, and by the kernel if it is killed
# (PR_SET_PDEATHSIG); its temporary directory is removed. See TESTING.md.
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 scripts/harness/transit.py "$@"
