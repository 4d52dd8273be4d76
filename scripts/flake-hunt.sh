#!/usr/bin/env bash
# Flake hunt: builds every test binary of `cargo test` once, natively and for wasm32-wasip2,
# then runs each binary N times while a CPU burner keeps one core busy, and prints per binary
# how many runs failed and with what message (each failing run's first panic: the test, where,
# and the first line of its message). Exits non-zero when any run failed.
#
#   scripts/flake-hunt.sh [-n N] [-f REGEX] [--native | --wasm | --wasip3] [--timeout SECS]
#       -n N          runs per binary (default 20)
#       -f REGEX      only the binaries whose whole name matches REGEX (extended; the library's
#                     unit tests are `lib`), e.g. -f sockman or -f 'sockman|promises'
#       --native      native binaries only;  --wasm  wasm32-wasip2 binaries only
#       --wasip3      wasm32-wasip2 binaries on the WASI 0.3 backend (`--features wasip3`) only;
#                     without a host flag: native and wasm (0.2), not wasip3
#       --timeout S   a run that takes longer than S seconds fails (default 600)
#
# Not part of scripts/test-all.sh: 20 runs of every binary on both hosts take about half an
# hour on two shared cores, plus the builds (TESTING.md has the last hunt's figures). The
# wasm binaries run as cargo's runner runs them (.cargo/config.toml, or
# CARGO_TARGET_WASM32_WASIP2_RUNNER), with the servers scripts/test-all.sh starts for them
# (two SOCKS5 servers, the resetting peer) and the same environment; doc tests are not
# binaries and are not hunted.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
    sed -n '2,19p' "$0" >&2
    exit 2
}

runs=20
filter='.*'
hosts="native wasm"
timeout_secs=600
while [ $# -gt 0 ]; do
    case $1 in
        -n) runs=${2:?}; shift 2 ;;
        -f) filter=${2:?}; shift 2 ;;
        --native) hosts=native; shift ;;
        --wasm) hosts=wasm; shift ;;
        --wasip3) hosts=wasip3; shift ;;
        --timeout) timeout_secs=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
case $runs in '' | *[!0-9]* | 0) usage ;; esac
case $timeout_secs in '' | *[!0-9]* | 0) usage ;; esac
command -v python3 >/dev/null 2>&1 || {
    echo "FAILED: python3 is needed (cargo's JSON, .cargo/config.toml, scripts/reset-peer.py)" >&2
    exit 1
}

work=$(mktemp -d)
burner_pid=
reset_peer_pid=
socks5_pids=()
cleanup() {
    local pid
    for pid in $burner_pid $reset_peer_pid; do kill "$pid" 2>/dev/null || true; done
    for pid in "${socks5_pids[@]}"; do ./scripts/socks5-server.sh stop "$pid" || true; done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Builds the test binaries of `cargo test "$@"` and prints one "NAME PATH" line each: the
# artifacts cargo would run (the test profile's executables), the library's as `lib`.
build_tests() {
    cargo test --no-run --message-format=json "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    if not msg["profile"]["test"]:
        continue
    target = msg["target"]
    name = "lib" if "lib" in target["kind"] else target["name"]
    print(name, msg["executable"])
'
}

# cargo's runner for wasm32-wasip2: the environment's, else .cargo/config.toml's.
wasm_runner() {
    if [ -n "${CARGO_TARGET_WASM32_WASIP2_RUNNER:-}" ]; then
        echo "$CARGO_TARGET_WASM32_WASIP2_RUNNER"
    else
        python3 -c '
import tomllib
with open(".cargo/config.toml", "rb") as f:
    print(tomllib.load(f)["target"]["wasm32-wasip2"]["runner"])
'
    fi
}

: >"$work/binaries"
for host in $hosts; do
    case $host in
        native)
            echo "==> building the native test binaries" >&2
            build_tests | sed 's/^/native /' >>"$work/binaries"
            ;;
        wasm)
            echo "==> building the wasm32-wasip2 test binaries" >&2
            build_tests --target wasm32-wasip2 | sed 's/^/wasm /' >>"$work/binaries"
            ;;
        wasip3)
            echo "==> building the wasm32-wasip2 test binaries on the WASI 0.3 backend" >&2
            build_tests --target wasm32-wasip2 --features wasip3 | sed 's/^/wasip3 /' >>"$work/binaries"
            ;;
    esac
done
awk -v re="^($filter)\$" '$2 ~ re' "$work/binaries" | sort -k1,1r -k2,2 >"$work/hunted"
if [ ! -s "$work/hunted" ]; then
    echo "FAILED: no test binary matches -f '$filter'" >&2
    exit 1
fi
runner=()
if grep -Eq '^(wasm|wasip3) ' "$work/hunted"; then
    read -r -a runner <<<"$(wasm_runner)"
    command -v "${runner[0]}" >/dev/null 2>&1 || {
        echo "FAILED: the wasm runner ${runner[0]} is not on PATH (scripts/test-all.sh installs wasmtime)" >&2
        exit 1
    }
fi

# The servers, as scripts/test-all.sh starts them (the same scripts, variables and values).
echo "==> SOCKS5 servers and the resetting peer on loopback" >&2
export BITCOIN_SOCK_SOCKS5_USER=bitcoin-sock BITCOIN_SOCK_SOCKS5_PASSWORD=socks5-test-password
socks5=$(./scripts/socks5-server.sh start 0)
read -r socks5_pid socks5_port <<<"$socks5"
socks5_pids+=("$socks5_pid")
socks5=$(./scripts/socks5-server.sh start 0 "$BITCOIN_SOCK_SOCKS5_USER" "$BITCOIN_SOCK_SOCKS5_PASSWORD")
read -r socks5_auth_pid socks5_auth_port <<<"$socks5"
socks5_pids+=("$socks5_auth_pid")
export BITCOIN_SOCK_SOCKS5="127.0.0.1:$socks5_port"
export BITCOIN_SOCK_SOCKS5_AUTH="127.0.0.1:$socks5_auth_port"
reset_peer=$(python3 scripts/reset-peer.py start 0)
read -r reset_peer_pid reset_peer_port <<<"$reset_peer"
export BITCOIN_SOCK_RESET_PEER="127.0.0.1:$reset_peer_port"
echo "SOCKS5 $BITCOIN_SOCK_SOCKS5 and $BITCOIN_SOCK_SOCKS5_AUTH, resetting peer $BITCOIN_SOCK_RESET_PEER" >&2

# What failed in a run's output: the first panic as "TEST at FILE:LINE:COL: MESSAGE", else the
# first line that names an error (a trap, a signal), else the last line.
first_failure() {
    awk '
        # One test at a time (wasm: no threads) prints its name before it runs, and a panic
        # there comes from thread main: name the test that was running.
        /^test .* \.\.\. / { running = $2 }
        /^thread .* panicked at / {
            test = $0; sub(/^thread \047/, "", test); sub(/\047 .*/, "", test)
            if ((test == "main" || test == "<unnamed>") && running != "") test = running
            where = $0; sub(/.* panicked at /, "", where); sub(/:$/, "", where)
            if ((getline message) <= 0) message = ""
            print test " at " where ": " message
            found = 1
            exit
        }
        !error && /[Ee]rror|trap|[Ss]ignal|SIG[A-Z]/ { error = $0 }
        NF { last = $0 }
        END {
            if (found) exit
            if (error != "") print error; else print last
        }
    ' "$1"
}

hunt_start=$(date +%s)
yes >/dev/null &
burner_pid=$!
echo "==> $runs runs of each of $(wc -l <"$work/hunted") binaries, one core kept busy (pid $burner_pid)" >&2

total_failed=0
: >"$work/summary"
while read -r host name path; do
    failed=0
    : >"$work/messages"
    start=$(date +%s)
    for run in $(seq "$runs"); do
        if [ "$host" != native ]; then
            command=("${runner[@]}" "$path")
        else
            command=("$path")
        fi
        status=0
        timeout "$timeout_secs" "${command[@]}" </dev/null >"$work/out" 2>&1 || status=$?
        if [ "$status" -ne 0 ]; then
            failed=$((failed + 1))
            if [ "$status" -eq 124 ]; then
                echo "timed out after ${timeout_secs}s" >>"$work/messages"
            else
                echo "exit $status: $(first_failure "$work/out")" >>"$work/messages"
            fi
            cp "$work/out" "$work/failed-$host-$name-$run.log"
        fi
    done
    line="$host $name: $failed of $runs runs failed ($(($(date +%s) - start)) s)"
    echo "$line" | tee -a "$work/summary"
    if [ "$failed" -gt 0 ]; then
        sort "$work/messages" | uniq -c | sort -rn | sed 's/^ */    /' | tee -a "$work/summary"
        total_failed=$((total_failed + failed))
    fi
done <"$work/hunted"

elapsed=$(($(date +%s) - hunt_start))
echo
echo "==> summary: $(wc -l <"$work/hunted") binaries x $runs runs, $total_failed failed, $((elapsed / 60)) min $((elapsed % 60)) s"
grep -v ': 0 of ' "$work/summary" || true
if [ "$total_failed" -gt 0 ]; then
    logs=${FLAKE_HUNT_LOGS:-target/flake-hunt}/$(date -u +%Y%m%dT%H%M%SZ)
    mkdir -p "$logs"
    cp "$work"/failed-*.log "$logs"/
    echo "FAILED: $total_failed runs failed; their whole output is in $logs/" >&2
    exit 1
fi
echo "every run of every binary passed"
