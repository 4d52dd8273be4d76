#!/usr/bin/env bash
# Fuzzes Core's high-level operations (and the SOCKS5 handshake) through a sock whose results
# come from the fuzzer, for a bounded time: ./scripts/fuzz.sh [SECONDS per target, default 60].
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
for target in $(cargo +nightly fuzz list); do
    echo "==> fuzzing $target for ${seconds}s"
    cargo +nightly fuzz run "$target" -- -max_total_time="$seconds" -timeout=10
done
