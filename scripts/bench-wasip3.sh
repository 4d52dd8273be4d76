#!/usr/bin/env bash
# The WASI 0.3 backend's figures beside the WASI 0.2 backend's: the bench binary built twice
# for wasm32-wasip2 (without and with `--features wasip3`, so each holds one backend), the two
# run alternately ROUNDS times, and for every summary row both builds print, the best figure
# of each and the ratio 0.3 / 0.2 (higher is better: rates as they are, times inverted).
#
# The rows that need no second build (idle-many against a loop on waitable-set.wait and
# against one wasi:io/poll over N, 0.2's floor) are measured inside the 0.3 run itself; see
# benches/sock/sockman/wasip3.rs.
#
#   ./scripts/bench-wasip3.sh                       # --quick bulk pingpong wait_many sockman
#   BENCH_ROUNDS=3 ./scripts/bench-wasip3.sh --quick sockman
#
# The outputs are kept in ${CARGO_TARGET_DIR:-target}/bench/wasip{2,3}-N.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

rounds=${BENCH_ROUNDS:-2}
if [ "$#" -eq 0 ]; then set -- --quick bulk pingpong wait_many sockman; fi
out="${CARGO_TARGET_DIR:-target}/bench"
mkdir -p "$out"
# wasmtime holds both ends of every connection: give it every descriptor allowed.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Builds the bench for one backend and keeps its component apart (both builds uplift to the
# same path).
build() {
    local name=$1 component
    shift
    component=$(cargo bench --no-run --bench sock --target wasm32-wasip2 "$@" 2>&1 |
        sed -n 's/.*Executable .*(\(.*\.wasm\))$/\1/p')
    [ -n "$component" ] || { echo "FAILED: no bench component built ($*)" >&2; exit 1; }
    cp "$component" "$out/$name.wasm"
}
build wasip2
build wasip3 --features wasip3
# The 0.3 bench imports 0.2 sockets too, for its baselines (std::net, 0.2's poll), so
# scripts/check-wasip3-imports.sh does not apply; its run@0.3 export does.
wasm-tools component wit "$out/wasip3.wasm" | grep -q 'export wasi:cli/run@0\.3\.' || {
    echo "FAILED: the 0.3 bench does not export wasi:cli/run@0.3" >&2
    exit 1
}

for round in $(seq "$rounds"); do
    for backend in wasip2 wasip3; do
        echo "==> round $round, $backend: $*" >&2
        wasmtime run -S inherit-network=y -S allow-ip-name-lookup=y "$out/$backend.wasm" "$@" \
            >"$out/$backend-$round.txt"
    done
done

python3 - "$out" "$rounds" <<'PY'
import re, sys
out, rounds = sys.argv[1], int(sys.argv[2])

def rows(path):
    table, found = {}, False
    for line in open(path, encoding="utf-8"):
        if line.startswith("Summary"):
            found = True
            continue
        if not found or not line.startswith("| ") or line.startswith("| workload"):
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        name = re.sub(r"^(\S+ )?\d+ (\S+ )?\(of (\d+)\)", lambda m: (m.group(1) or "") + m.group(3) + " " + (m.group(2) or ""), cells[0]).strip()
        name = re.sub(r"(wait_many|idle-many) \d+ socks \(of (\d+)\)", r"\1 \2 socks", name)
        table[name] = cells[1]
    return table

def value(cell):
    m = re.match(r"([0-9.]+)\s*([^\s]*)", cell)
    if not m:
        return None, None
    n, unit = float(m.group(1)), m.group(2)
    if "/s" in unit:
        return n, "rate"
    scale = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    for prefix, factor in scale.items():
        if unit.startswith(prefix):
            return n * factor, "time"
    return None, None

best = {}
order = []
for backend in ("wasip2", "wasip3"):
    for r in range(1, rounds + 1):
        for name, cell in rows(f"{out}/{backend}-{r}.txt").items():
            v, kind = value(cell)
            if v is None:
                continue
            if name not in order:
                order.append(name)
            key = (backend, name)
            old = best.get(key)
            better = old is None or (v > old[0] if kind == "rate" else v < old[0])
            if better:
                best[key] = (v, kind, cell)

print(f"\nWASI 0.3 backend vs WASI 0.2 backend (best of {rounds} alternating runs each)\n")
print("| workload | 0.3 | 0.2 | ratio 0.3/0.2 |")
print("|---|---|---|---|")
for name in order:
    p2, p3 = best.get(("wasip2", name)), best.get(("wasip3", name))
    if not p2 or not p3 or p2[1] != p3[1]:
        continue
    ratio = p3[0] / p2[0] if p3[1] == "rate" else p2[0] / p3[0]
    print(f"| {name} | {p3[2]} | {p2[2]} | {ratio:.3f}x |")
PY
