#!/usr/bin/env bash
# Runs every wasm32-wasip2 test binary and the examples under jco, the second WASI preview 2
# runtime (Node.js + @bytecodealliance/preview2-shim), pinned in scripts/jco/package.json and
# installed from npm (`npm ci`) when missing. Host differences that make a test meaningless
# there are skipped by scripts/jco-skip.txt, one reasoned line each; nothing else is skipped.
#
# Fails when a test fails, when a binary that has tests ran none of them (or fewer than it
# lists minus its skips), when a skip entry names no test, and when an example prints other
# than natively. The SOCKS5 tests read their servers from BITCOIN_SOCK_SOCKS5 and
# BITCOIN_SOCK_SOCKS5_AUTH (scripts/test-all.sh starts them; so does this script when unset).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

JCO_VERSION=1.35.0
SHIM_VERSION=0.26.1

installed_version() {
    sed -n 's/^  "version": "\(.*\)",$/\1/p' "scripts/jco/node_modules/@bytecodealliance/$1/package.json" 2>/dev/null
}
if [ "$(installed_version jco)" != "$JCO_VERSION" ] || [ "$(installed_version preview2-shim)" != "$SHIM_VERSION" ]; then
    (cd scripts/jco && npm ci --no-audit --no-fund)
fi
jco=$root/scripts/jco/node_modules/.bin/jco
echo "jco $("$jco" --version), preview2-shim $(installed_version preview2-shim), node $(node --version)"

if [ -z "${BITCOIN_SOCK_SOCKS5:-}" ] || [ -z "${BITCOIN_SOCK_SOCKS5_AUTH:-}" ]; then
    export BITCOIN_SOCK_SOCKS5_USER=${BITCOIN_SOCK_SOCKS5_USER:-bitcoin-sock}
    export BITCOIN_SOCK_SOCKS5_PASSWORD=${BITCOIN_SOCK_SOCKS5_PASSWORD:-socks5-test-password}
    socks5_pids=()
    trap 'for pid in "${socks5_pids[@]}"; do ./scripts/socks5-server.sh stop "$pid" || true; done' EXIT
    read -r pid port <<<"$(./scripts/socks5-server.sh start 0)"
    socks5_pids+=("$pid")
    export BITCOIN_SOCK_SOCKS5="127.0.0.1:$port"
    read -r pid port <<<"$(./scripts/socks5-server.sh start 0 "$BITCOIN_SOCK_SOCKS5_USER" "$BITCOIN_SOCK_SOCKS5_PASSWORD")"
    socks5_pids+=("$pid")
    export BITCOIN_SOCK_SOCKS5_AUTH="127.0.0.1:$port"
fi

# The test binaries: artifacts of the test profile that have an executable.
binaries=$(cargo test --target wasm32-wasip2 --no-run --message-format=json |
    grep '"reason":"compiler-artifact"' | grep '"test":true' |
    grep -o '"executable":"[^"]*"' | sed 's/^"executable":"\(.*\)"$/\1/' | sort)
if [ -z "$binaries" ]; then
    echo "FAILED: cargo test --target wasm32-wasip2 --no-run built no test binary" >&2
    exit 1
fi

# BINARY TEST -> skip arguments for that binary; every entry must name a listed test.
skips_for() {
    grep -v '^#' scripts/jco-skip.txt | awk -v binary="$1" '$1 == binary {print $2}'
}

# test_names WASM: the names of the tests in a test binary.
test_names() {
    "$jco" run "$1" -- --list --format=terse | sed -n 's/: test$//p'
}

# jco_tests EXPECTED LABEL JCO_ARGS... -- TEST_ARGS...: runs a test binary under jco; fails
# unless it exits 0 having passed exactly EXPECTED tests, at least one.
total_passed=0
jco_tests() {
    local expected=$1 label=$2 log status=0 passed
    shift 2
    echo "--- jco run $label"
    log=$(mktemp)
    timeout 900 "$jco" run "$@" 2>&1 | tee "$log" || status=$?
    passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{s += $4} END {print s + 0}')
    rm -f "$log"
    if [ "$status" -ne 0 ]; then
        echo "FAILED: $label under jco (exit status $status)" >&2
        exit 1
    fi
    if [ "$passed" -eq 0 ] || [ "$passed" -ne "$expected" ]; then
        echo "FAILED: $label under jco passed $passed tests, not $expected" >&2
        exit 1
    fi
    total_passed=$((total_passed + passed))
}

total_skipped=0
summary=()
for wasm in $binaries; do
    name=$(basename "$wasm" .wasm)
    name=${name%-*}
    tests=$(test_names "$wasm")
    listed=$(printf '%s' "$tests" | grep -c . || true)
    skip_args=()
    skipped=0
    for test in $(skips_for "$name"); do
        if ! printf '%s\n' "$tests" | grep -qx "$test"; then
            echo "FAILED: scripts/jco-skip.txt names $name $test, which is not a test there" >&2
            exit 1
        fi
        skip_args+=(--skip "$test")
        skipped=$((skipped + 1))
    done
    if [ "$listed" -eq 0 ]; then
        # Compiled out on wasm32-wasip2 (native-only files, the socket-less targets' tests).
        summary+=("$name: no tests on wasm32-wasip2")
        continue
    fi
    jco_tests $((listed - skipped)) "$name ($listed tests, $skipped skipped by scripts/jco-skip.txt)" \
        "$wasm" -- --test-threads=1 --exact "${skip_args[@]}"
    total_skipped=$((total_skipped + skipped))
    summary+=("$name: $((listed - skipped)) passed, $skipped skipped")
done

# jco as a host that allows no network (scripts/jco/deny-network.mjs denies the shim's TCP,
# UDP and name lookup): wasm-tests/restricted.rs, as under wasmtime without inherit-network.
restricted=$(cargo test --target wasm32-wasip2 --test restricted --no-run --message-format=json |
    grep '"reason":"compiler-artifact"' | grep -o '"executable":"[^"]*"' |
    sed 's/^"executable":"\(.*\)"$/\1/')
listed=$(test_names "$restricted" | grep -c . || true)
jco_tests "$listed" "restricted, the network denied" \
    --jco-import scripts/jco/deny-network.mjs "$restricted" -- --test-threads=1
summary+=("restricted (network denied): $listed passed")

# The examples print exactly their native output.
cargo build --quiet --target wasm32-wasip2 --example demo --example light_client --example node \
    --example line_echo
for example in demo light_client node line_echo; do
    native=$(cargo run --quiet --example "$example")
    under_jco=$("$jco" run "target/wasm32-wasip2/debug/examples/$example.wasm")
    if [ "$native" != "$under_jco" ]; then
        diff <(echo "$native") <(echo "$under_jco") || true
        echo "FAILED: $example prints differently natively and under jco" >&2
        exit 1
    fi
    summary+=("example $example: identical output natively and under jco ($(echo "$native" | wc -l) lines)")
done

printf '%s\n' "${summary[@]}"
echo "jco: $total_passed tests passed, $total_skipped skipped (scripts/jco-skip.txt)"
