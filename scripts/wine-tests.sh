#!/usr/bin/env bash
# Runs every test binary of bitcoin-sock for Windows (x86_64-pc-windows-gnu) under Wine.
#
#   scripts/wine-tests.sh
#
# Installs what is missing (Debian's gcc-mingw-w64-x86-64 links the binaries, wine64 runs
# them), builds them with `cargo test --no-run`, and runs each one under Wine in a private
# prefix (target/wine/prefix; no display needed). Fails when a binary fails, times out, or a
# file of tests/ runs no test. Prints the pass count per binary and "N of M tests pass".
#
# The SOCKS5 tests use the servers in BITCOIN_SOCK_SOCKS5 / BITCOIN_SOCK_SOCKS5_AUTH (set by
# scripts/test-all.sh; Wine passes the environment on and reaches the host's loopback); when
# those are unset this script starts its own with scripts/socks5-server.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
# Per binary; the slowest takes a few seconds under Wine.
BINARY_TIMEOUT=300

# Where Wine 8.0 differs from Windows, each with why. These tests still run, separately: they
# must exist and are expected to fail (a Wine that passes one is reported, so the list can
# shrink). Every other test is as strict under Wine as on Linux and in wasmtime.
#
# A peer's reset: Wine's server reads SO_ERROR as soon as its poll sees POLLERR|POLLHUP
# (server/sock.c, sock_poll_event -> sock_error), which clears the pending ECONNRESET of the
# Unix socket underneath, so the next recv reads end of stream (Ok(0), "closed") where Windows'
# recv fails with WSAECONNRESET, as its documentation says. Waiting is right (RECV | ERR).
WINE_ONLY=(
    "native wait_and_recv_report_a_peer_reset"
    "native is_connected_after_a_peer_reset_gives_the_reset_text"
    "native recv_until_terminator_after_a_peer_reset_fails_with_a_recv_error"
    "sockman peer_resetting_mid_message_gives_a_permanent_read_error"
    "sockman peer_resetting_with_linger_zero_gives_connection_reset"
    "promises a_peer_reset_is_recv_and_err_then_connection_reset_then_end_of_stream"
    "promises a_peer_reset_makes_is_connected_give_the_reset_text"
    "promises a_peer_reset_fails_recv_until_terminator_with_a_recv_error"
    "close a_sock_dropped_with_unread_bytes_and_its_sends_stuck_resets_its_peer_at_once"
    "close a_sockman_connection_closed_with_unread_bytes_and_its_queue_stuck_resets_its_peer_at_once"
    "sock_extras linger_zero_makes_the_close_reset_the_connection"
    # Wine 8.0's getsockopt(SO_ERROR) leaves the error in place; Windows documents that reading
    # SO_ERROR clears it, as Linux and WASI do.
    "promises a_refused_connect_started_by_hand_leaves_its_error_for_take_error"
    "promises a_refused_connect_started_by_hand_shows_in_the_error_option"
    # After shutdown(SD_RECEIVE), Wine's WSAPoll never reports the socket readable, so
    # wait(RECV) times out where Linux and WASI report the end of stream at once.
    "promises shutdown_read_keeps_the_sending_half_of_a_live_sock"
)

# Test files that are empty on Windows by design (scripts/native-only-tests.txt says why):
# they may run no test here.
LINUX_ONLY_FILES=(native_promises sockman_emfile)

step() { printf '\n==> %s\n' "$*"; }
now() { date +%s.%N; }
since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f s", end - start }'; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

find_wine() {
    # Debian's wine64 package puts the loader in /usr/lib/wine; `wine` (a wrapper) is optional.
    local candidate
    for candidate in "$(command -v wine64 || true)" /usr/lib/wine/wine64 "$(command -v wine || true)"; do
        if [ -n "$candidate" ] && [ -x "$candidate" ]; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

step "toolchain: mingw-w64 linker, Wine, the $TARGET target"
started=$(now)
if ! command -v x86_64-w64-mingw32-gcc >/dev/null 2>&1 || ! find_wine >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    # --no-install-recommends: no fonts, no 32-bit Wine, no desktop pieces; about 200 MB.
    packages=(gcc-mingw-w64-x86-64 wine64)
    if ! as_root apt-get install -y -q --no-install-recommends "${packages[@]}"; then
        as_root apt-get update -q
        as_root apt-get install -y -q --no-install-recommends "${packages[@]}"
    fi
    echo "installed ${packages[*]} in $(since "$started")"
fi
rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
WINE=$(find_wine)
WINESERVER="$(dirname "$WINE")/wineserver"
[ -x "$WINESERVER" ] || WINESERVER=$(command -v wineserver)
"$WINE" --version

step "build: cargo test --no-run --target $TARGET"
started=$(now)
# The linker is x86_64-w64-mingw32-gcc, rustc's default for this target.
# Test harnesses only (`"test":true`), not the examples cargo also builds.
binaries=$(cargo test --no-run --target "$TARGET" --message-format=json \
    | grep '"test":true' | grep -o '"executable":"[^"]*"' \
    | sed 's/^"executable":"//; s/"$//' | sort -u)
[ -n "$binaries" ] || { echo "FAILED: cargo built no test binary" >&2; exit 1; }
echo "built $(echo "$binaries" | wc -l) test binaries in $(since "$started")"

step "Wine prefix (private to this checkout)"
export WINEPREFIX="$PWD/target/wine/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
started=$(now)
mkdir -p "$WINEPREFIX"
# One wineserver for wineboot and every run instead of one per binary (saves about 2 s each);
# stopped on exit. It fails only when one already runs for this prefix, which serves as well.
"$WINESERVER" -p 2>/dev/null || true
trap '"$WINESERVER" -k 2>/dev/null || true' EXIT
if [ ! -f "$WINEPREFIX/system.reg" ]; then
    # No display: wineboot only warns about the missing window driver. mscoree/mshtml are
    # disabled so it never offers to download Mono or Gecko.
    if ! timeout 300 "$WINE" wineboot --init >target/wine/wineboot.log 2>&1; then
        cat target/wine/wineboot.log
        echo "FAILED: wineboot could not create $WINEPREFIX" >&2
        exit 1
    fi
    echo "created $WINEPREFIX in $(since "$started")"
fi

# Rust's std imports ProcessPrng from bcryptprimitives.dll, which Wine 8.0 lacks.
if [ -e "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" ]; then
    echo "this Wine has bcryptprimitives.dll"
else
    shim=target/wine/bcryptprimitives.dll
    if [ ! -f "$shim" ] || [ scripts/wine/bcryptprimitives.c -nt "$shim" ]; then
        x86_64-w64-mingw32-gcc -shared -O2 -s -o "$shim" scripts/wine/bcryptprimitives.c -ladvapi32
    fi
    for dir in $(echo "$binaries" | xargs -n1 dirname | sort -u); do
        cp "$shim" "$dir/"
    done
    echo "this Wine lacks bcryptprimitives.dll: ProcessPrng shim ($shim) beside the binaries"
fi

step "SOCKS5 servers on loopback for tests/socks5_server.rs"
socks5_pids=()
stop_socks5() {
    local pid
    for pid in "${socks5_pids[@]}"; do ./scripts/socks5-server.sh stop "$pid" || true; done
    "$WINESERVER" -k 2>/dev/null || true
}
trap stop_socks5 EXIT
if [ -z "${BITCOIN_SOCK_SOCKS5:-}" ] || [ -z "${BITCOIN_SOCK_SOCKS5_AUTH:-}" ]; then
    export BITCOIN_SOCK_SOCKS5_USER=${BITCOIN_SOCK_SOCKS5_USER:-bitcoin-sock}
    export BITCOIN_SOCK_SOCKS5_PASSWORD=${BITCOIN_SOCK_SOCKS5_PASSWORD:-socks5-test-password}
    read -r pid port <<<"$(./scripts/socks5-server.sh start 0)"
    socks5_pids+=("$pid")
    export BITCOIN_SOCK_SOCKS5="127.0.0.1:$port"
    read -r pid port <<<"$(./scripts/socks5-server.sh start 0 "$BITCOIN_SOCK_SOCKS5_USER" "$BITCOIN_SOCK_SOCKS5_PASSWORD")"
    socks5_pids+=("$pid")
    export BITCOIN_SOCK_SOCKS5_AUTH="127.0.0.1:$port"
fi
echo "SOCKS5 servers: $BITCOIN_SOCK_SOCKS5 (no auth), $BITCOIN_SOCK_SOCKS5_AUTH (username/password)"

# Runs one binary under Wine with the given test-harness arguments; prints its output and
# sets `result` to "PASSED FAILED TOTAL" (TOTAL counts filtered-out tests too).
run_binary() {
    local binary=$1 log status
    shift
    log=$(mktemp)
    set +e
    # The working directory stays the package root, as under `cargo test`.
    timeout --kill-after=10 "$BINARY_TIMEOUT" "$WINE" "$binary" "$@" >"$log" 2>&1
    status=$?
    set -e
    result=$(awk '/^test result:/ { p = $4; f = $6; i = $8; x = $12; print p, f, p + f + i + x; found = 1 }
                  END { if (!found) print "0 0 -1" }' "$log")
    if [ "$status" -ne 0 ] && [ "$status" -ne 101 ]; then
        cat "$log"
        rm -f "$log"
        echo "FAILED: $(basename "$binary") exited with $status (124: timed out after ${BINARY_TIMEOUT}s)" >&2
        return 1
    fi
    run_log=$(cat "$log")
    rm -f "$log"
}

step "tests: $TARGET under Wine"
started=$(now)
total_passed=0
total_tests=0
known_failing=0
failed=0
for binary in $binaries; do
    name=$(basename "$binary" .exe)
    name=${name%-*}
    skips=()
    only=()
    for entry in "${WINE_ONLY[@]}"; do
        read -r file test_name <<<"$entry"
        if [ "$file" = "$name" ]; then
            skips+=(--skip "$test_name")
            only+=("$test_name")
        fi
    done
    binary_started=$(now)
    run_binary "$binary" --exact "${skips[@]}" || { failed=1; continue; }
    read -r passed failures tests <<<"$result"
    if [ "$tests" -lt 0 ] || [ "$failures" -ne 0 ]; then
        echo "$run_log"
        echo "FAILED: $name under Wine" >&2
        failed=1
        continue
    fi
    if [ -f "tests/$name.rs" ] && [ "$passed" -eq 0 ] &&
        ! printf '%s\n' "${LINUX_ONLY_FILES[@]}" | grep -qx "$name"; then
        echo "$run_log"
        echo "FAILED: tests/$name.rs ran no test under Wine" >&2
        failed=1
        continue
    fi
    line="$name: $passed passed"
    if [ "${#only[@]}" -gt 0 ]; then
        # The Wine-only differences, on their own: each must exist and still fail.
        run_binary "$binary" --exact "${only[@]}" || { failed=1; continue; }
        read -r now_passing now_failing _ <<<"$result"
        if [ "$((now_passing + now_failing))" -ne "${#only[@]}" ]; then
            echo "$run_log"
            echo "FAILED: WINE_ONLY names a test that $name does not have" >&2
            failed=1
            continue
        fi
        if [ "$now_passing" -gt 0 ]; then
            echo "$run_log" | grep -E '^test .* ok$' || true
            echo "NOTE: $now_passing of the WINE_ONLY tests pass under this Wine; the list can shrink"
        fi
        passed=$((passed + now_passing))
        known_failing=$((known_failing + now_failing))
        line="$line, $now_failing Wine-only differences fail as expected"
    fi
    if [ "$tests" -eq 0 ]; then
        line="$name: no tests for this target"
    fi
    echo "$line ($(since "$binary_started"))"
    total_passed=$((total_passed + passed))
    total_tests=$((total_tests + tests))
done
echo "ran in $(since "$started")"
[ "$failed" -eq 0 ] || exit 1
[ "$total_passed" -gt 0 ] || { echo "FAILED: no test ran under Wine" >&2; exit 1; }
echo "Wine: $total_passed of $total_tests tests pass ($known_failing fail only under Wine: WINE_ONLY in $0)"
