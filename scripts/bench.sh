#!/usr/bin/env bash
# Runs the benchmarks natively and in wasmtime (see BENCHMARKS.md), then prints the
# cost of portability: each of our figures in wasm against the same figure natively.
#
#   ./scripts/bench.sh                  # the full sizes (~1.5 min native, ~1 min wasm)
#   ./scripts/bench.sh --quick          # smaller sizes
#   ./scripts/bench.sh bulk pingpong    # only these workloads (bulk pingpong terminator
#                                       # wait_many memory)
#
# The outputs are kept in ${CARGO_TARGET_DIR:-target}/bench/{native,wasm}.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

out="${CARGO_TARGET_DIR:-target}/bench"
mkdir -p "$out"
# wasmtime holds both ends of every wasm connection: give it every descriptor allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "==> native: cargo bench --bench sock -- $*"
cargo bench --bench sock -- "$@" | tee "$out/native.txt"
echo
echo "==> wasmtime: cargo bench --bench sock --target wasm32-wasip2 -- $*"
cargo bench --bench sock --target wasm32-wasip2 -- "$@" | tee "$out/wasm.txt"

# Joins the two summary tables on the workload: rates (MB/s, trips/s) as wasm/native, times
# per call as native/wasm, so below 1.00x means wasm is slower.
awk -F'|' '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    function key(name,   m) {
        if (name ~ /^ping-pong/) {
            if (name ~ /vs std/ || name ~ /2 cores/) return ""
            return "ping-pong 32 B (native: 1 core; wasm: 1 thread)"
        }
        if (match(name, /\(of [0-9]+\)/)) {
            return "wait_many " substr(name, RSTART + 4, RLENGTH - 5) " socks"
        }
        if (name ~ /^memory/ || name ~ /byte-at-a-time/) return ""
        return name
    }
    # A figure in base units: MB/s and trips/s as they are, times in seconds.
    function value(cell,   n, unit) {
        n = cell + 0
        unit = cell; sub(/^[0-9.]+/, "", unit)
        if (unit ~ /^ms/) return n / 1e3
        if (unit ~ /^(µs|us)/) return n / 1e6
        if (unit ~ /^ns/) return n / 1e9
        return n
    }
    function is_time(cell) { return cell ~ /\/call/ }
    FNR == 1 { file++ }
    /^Summary/ { in_table = 1; next }
    in_table && /^\| / && $2 !~ /workload/ {
        k = key(trim($2)); if (k == "") next
        cell = trim($3)
        if (file == 1) { native[k] = cell; order[++n] = k }
        else wasm[k] = cell
    }
    END {
        printf "\nwasm / native (our figures; below 1.00x wasm is slower):\n\n"
        printf "| %-50s | %-24s | %-24s | %-7s |\n", "workload", "native", "wasm", "ratio"
        printf "|-%-50s-|-%-24s-|-%-24s-|-%-7s-|\n", "--------------------------------------------------", "------------------------", "------------------------", "-------"
        for (i = 1; i <= n; i++) {
            k = order[i]
            if (!(k in wasm)) continue
            a = value(native[k]); b = value(wasm[k])
            if (a == 0 || b == 0) continue
            r = is_time(native[k]) ? a / b : b / a
            printf "| %-50s | %-24s | %-24s | %6.2fx |\n", k, native[k], wasm[k], r
        }
    }
' "$out/native.txt" "$out/wasm.txt"
