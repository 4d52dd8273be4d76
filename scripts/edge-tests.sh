#!/usr/bin/env bash
# End to end: the edge example (examples/edge/) as a wasi:http component in `wasmtime serve`,
# asked by curl, against a real node: bcoin in regtest with BIP 37 (scripts/regtest-node.sh),
# 2,100 blocks, the coinbases of seven of them paying a known address (P2WPKH of twenty 0x11
# bytes) on both sides of regtest's first halving (height 150) and at the tip, every other one
# the all-zero key hash. Checks, each against bcoin's own RPC (getbestblockhash, and every
# block's coinbase outputs read with getblock):
#   * GET /tip and GET /payments/<address>?from=... answer exactly what the RPC says;
#   * 20 requests at once all answer exactly that;
#   * the native command (the same handler) gives the same status and JSON;
#   * with EDGE_CHECKPOINT (block 2000, hash from the RPC) it syncs from there and answers the
#     same; a `from` below the checkpoint is a 400;
#   * the same component served by jco (`jco serve`, Node.js; scripts/jco, installed with
#     `npm ci` when missing) answers the same;
#   * 400 (bad address, another network's), 404 (a bad path), 502 (a closed port; a server
#     that is not a Bitcoin node, here one that greets like SSH) with Core's error text, and
#     504 (a peer that accepts and goes silent) within the request's deadline, each provoked
#     for real, each by its own `wasmtime serve` (the peer is configuration).
#
#   scripts/edge-tests.sh          the checks above
#   scripts/edge-tests.sh bench    also: time per /tip request (wasmtime serve, a fresh
#                                  instance each) beside the native command, and what of it is
#                                  instantiation (BENCHMARKS.md)
#
# Environment: EDGE_BCOIN_PORT (default 18464; JSON-RPC on the next port), EDGE_SERVE_PORT
# (default 18470; the error cases use the next three, jco the fourth, the checkpoint the
# fifth), EDGE_CONCURRENT (default 20),
# EDGE_BENCH_REQUESTS (default 20), EDGE_PROFILE (debug, the default, or release: which build
# of the component and the command is served and run).
set -euo pipefail
cd "$(dirname "$0")/.."

MODE=${1:-check}
BCOIN_PORT=${EDGE_BCOIN_PORT:-18464}
SERVE_PORT=${EDGE_SERVE_PORT:-18470}
CONCURRENT=${EDGE_CONCURRENT:-20}
BENCH_REQUESTS=${EDGE_BENCH_REQUESTS:-20}
BLOCKS=2100
KEY_HASH=1111111111111111111111111111111111111111
ADDRESS=bcrt1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3lgth6c
SCRIPT_HEX=0014$KEY_HASH
PAID_HEIGHTS=101,102,149,150,151,2000,2100
# Long enough for a sync of 2,100 headers and 2,100 merkleblocks on a loaded machine; the
# silent peer's server has its own, short one.
DEADLINE_MS=60000
SILENT_DEADLINE_MS=3000
WORK=target/edge-tests
PROFILE=${EDGE_PROFILE:-debug}
case "$PROFILE" in
    debug) PROFILE_ARGS=() ;;
    release) PROFILE_ARGS=(--release) ;;
    *) echo "EDGE_PROFILE is debug or release, not $PROFILE" >&2; exit 2 ;;
esac
NATIVE=target/$PROFILE/examples/edge
WASM=target/wasm32-wasip2/$PROFILE/examples/edge.wasm

say() { printf '==> %s\n' "$*"; }
fail() {
    echo "FAILED: $*" >&2
    exit 1
}

pids=()
jco_group=
cleanup() {
    local pid
    if [ -n "$jco_group" ]; then kill -- "-$jco_group" 2>/dev/null || true; fi
    for pid in "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    REGTEST_PORT=$BCOIN_PORT ./scripts/regtest-node.sh stop >/dev/null || true
}
trap cleanup EXIT

command -v curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl; }
command -v wasmtime >/dev/null 2>&1 || fail "wasmtime is not on PATH (scripts/test-all.sh installs it)"
mkdir -p "$WORK"

say "building the edge example ($PROFILE): native command and wasm32-wasip2 component"
cargo build --quiet "${PROFILE_ARGS[@]}" --example edge
cargo build --quiet "${PROFILE_ARGS[@]}" --example edge --target wasm32-wasip2
wasm-tools component wit "$WASM" 2>/dev/null | grep -q 'export wasi:http/incoming-handler' ||
    fail "$WASM does not export wasi:http/incoming-handler"
# Compiled once, so each `wasmtime serve` below starts at once.
wasmtime compile "$WASM" -o "$WORK/edge.cwasm"

say "bcoin: regtest, BIP 37, $BLOCKS blocks, coinbases at $PAID_HEIGHTS to $ADDRESS"
REGTEST_PORT=$BCOIN_PORT REGTEST_BLOCKS=$BLOCKS REGTEST_PAYMENTS="$KEY_HASH@$PAID_HEIGHTS" \
    ./scripts/regtest-node.sh start
rpc() { REGTEST_PORT=$BCOIN_PORT ./scripts/regtest-node.sh rpc "$@"; }
TIP=$(rpc getbestblockhash)
HEIGHT=$(rpc getblockcount)
[ "$HEIGHT" -eq "$BLOCKS" ] || fail "bcoin has $HEIGHT blocks, not $BLOCKS"

# What the answers must be, from bcoin's RPC alone: every output of every block from genesis to
# the tip whose script is the address's, in block order (one keep-alive connection), as lines
# of "height txid vout satoshis"; expected_payments FROM makes the JSON the edge must answer.
rpc_payments() {
    timeout 600 node -e '
        const http = require("http");
        const [port, tip, script] = process.argv.slice(1);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        const call = (method, params) => new Promise((resolve, reject) => {
          const req = http.request({ host: "127.0.0.1", port: Number(port), method: "POST", path: "/",
              agent, headers: { "Content-Type": "application/json" } }, (res) => {
            let text = "";
            res.on("data", (chunk) => { text += chunk; });
            res.on("end", () => {
              const reply = JSON.parse(text);
              if (reply.error) reject(new Error(JSON.stringify(reply.error))); else resolve(reply.result);
            });
          });
          req.on("error", reject);
          req.end(JSON.stringify({ method, params, id: 1 }));
        });
        (async () => {
          for (let height = 0; height <= Number(tip); height++) {
            const block = await call("getblock", [await call("getblockhash", [height]), true, true]);
            for (const tx of block.tx) {
              for (const out of tx.vout) {
                if (out.scriptPubKey.hex === script) {
                  console.log(`${height} ${tx.txid} ${out.n} ${Math.round(out.value * 1e8)}`);
                }
              }
            }
          }
          agent.destroy();
        })().catch((err) => { console.error(err.message); process.exit(1); });
    ' "$((BCOIN_PORT + 1))" "$HEIGHT" "$SCRIPT_HEX" >"$WORK/rpc-payments"
}

expected_payments() {
    local from=$1
    printf '{"network":"regtest","address":"%s","from":%s,"tip":{"height":%s,"hash":"%s"},"payments":[%s]}\n' \
        "$ADDRESS" "$from" "$HEIGHT" "$TIP" \
        "$(awk -v from="$from" -v tip="$HEIGHT" '$1 >= from {
            printf "%s{\"txid\":\"%s\",\"vout\":%s,\"amount\":%s,\"height\":%s,\"confirmations\":%s}",
                (n++ ? "," : ""), $2, $3, $4, $1, tip - $1 + 1 }' "$WORK/rpc-payments")"
}

# The body without the timing field, which differs between any two answers.
strip_timing() { sed -E 's/,"p2p_ms":[0-9]+//'; }

# Starts `wasmtime serve` on port $1 with the component configured by "${@:2}" (NAME=VALUE);
# waits until it answers.
serve() {
    local port=$1 env=() pair
    shift
    for pair in "$@"; do env+=(--env "$pair"); done
    wasmtime serve -S cli=y -S inherit-network=y --addr "127.0.0.1:$port" "${env[@]}" \
        --allow-precompiled "$WORK/edge.cwasm" >"$WORK/serve-$port.log" 2>&1 &
    pids+=("$!")
    for _ in $(seq 1 300); do
        if curl -s -o /dev/null "http://127.0.0.1:$port/"; then return; fi
        kill -0 "${pids[-1]}" 2>/dev/null || { cat "$WORK/serve-$port.log" >&2; fail "wasmtime serve on $port exited"; }
        sleep 0.1
    done
    fail "wasmtime serve on $port did not answer in 30 s"
}

# ask PORT PATH OUT: curl's status to stdout, the body to OUT.
ask() { curl -s -o "$3" -w '%{http_code}' "http://127.0.0.1:$1$2"; }

# expect_answer PORT PATH STATUS BODY: the component answers STATUS and exactly BODY
# (timing stripped), and the native command, configured alike, the same.
expect_answer() {
    local port=$1 path=$2 status=$3 body=$4 got
    got=$(ask "$port" "$path" "$WORK/body")
    [ "$got" = "$status" ] || { cat "$WORK/body" >&2; fail "GET $path: status $got, not $status"; }
    if [ "$(strip_timing <"$WORK/body")" != "$body" ]; then
        diff <(echo "$body") <(strip_timing <"$WORK/body") >&2 || true
        fail "GET $path: the component's answer differs from bcoin's RPC"
    fi
    local native
    native=$(EDGE_PEER="127.0.0.1:$BCOIN_PORT" EDGE_NETWORK=regtest EDGE_DEADLINE_MS=$DEADLINE_MS \
        "$NATIVE" "$path" || true)
    if [ "$(head -n1 <<<"$native")" != "$status" ] || [ "$(tail -n +2 <<<"$native" | strip_timing)" != "$body" ]; then
        echo "$native" >&2
        fail "GET $path: the native command answers differently"
    fi
    echo "GET $path: $status, as bcoin's RPC says ($(wc -c <"$WORK/body") bytes); the native command: the same"
}

say "wasmtime serve on 127.0.0.1:$SERVE_PORT, peer bcoin at 127.0.0.1:$BCOIN_PORT"
GOOD=(EDGE_PEER="127.0.0.1:$BCOIN_PORT" EDGE_NETWORK=regtest EDGE_DEADLINE_MS=$DEADLINE_MS)
serve "$SERVE_PORT" "${GOOD[@]}"

rpc_payments
paid=$(wc -l <"$WORK/rpc-payments")
[ "$paid" -eq 7 ] || fail "bcoin's RPC shows $paid payments to $ADDRESS, not the 7 mined"
echo "bcoin's RPC: height $HEIGHT, tip $TIP, $paid coinbase outputs paying $ADDRESS"
TIP_JSON="{\"network\":\"regtest\",\"height\":$HEIGHT,\"hash\":\"$TIP\"}"
expect_answer "$SERVE_PORT" /tip 200 "$TIP_JSON"
for from in 0 150 2100 2101; do
    expect_answer "$SERVE_PORT" "/payments/$ADDRESS?from=$from" 200 "$(expected_payments "$from")"
done

say "$CONCURRENT requests at once (half /tip, half /payments from 140), each a fresh instance"
PAYMENTS_JSON=$(expected_payments 140)
concurrent_pids=()
for i in $(seq 1 "$CONCURRENT"); do
    if [ $((i % 2)) -eq 0 ]; then path=/tip; else path="/payments/$ADDRESS?from=140"; fi
    (ask "$SERVE_PORT" "$path" "$WORK/concurrent-$i.body" >"$WORK/concurrent-$i.status") &
    concurrent_pids+=("$!")
done
for pid in "${concurrent_pids[@]}"; do wait "$pid"; done
for i in $(seq 1 "$CONCURRENT"); do
    if [ $((i % 2)) -eq 0 ]; then want=$TIP_JSON; else want=$PAYMENTS_JSON; fi
    [ "$(cat "$WORK/concurrent-$i.status")" = 200 ] || { cat "$WORK/concurrent-$i.body" >&2; fail "concurrent request $i: status $(cat "$WORK/concurrent-$i.status")"; }
    [ "$(strip_timing <"$WORK/concurrent-$i.body")" = "$want" ] || fail "concurrent request $i answered wrong"
done
echo "$CONCURRENT of $CONCURRENT concurrent requests answered exactly bcoin's tip and payments"

expect_status() {
    local port=$1 path=$2 status=$3 text=$4 got
    got=$(ask "$port" "$path" "$WORK/body")
    [ "$got" = "$status" ] || { cat "$WORK/body" >&2; fail "GET $path on $port: status $got, not $status"; }
    grep -qF "$text" "$WORK/body" || { cat "$WORK/body" >&2; fail "GET $path on $port: the error does not say '$text'"; }
    echo "GET $path: $status $(cat "$WORK/body")"
}

say "a checkpoint: EDGE_CHECKPOINT=2000:<bcoin's hash of block 2000>, headers synced from there"
CHECKPOINT="2000:$(rpc getblockhash '[2000]')"
serve $((SERVE_PORT + 5)) "${GOOD[@]}" EDGE_CHECKPOINT="$CHECKPOINT"
expect_checkpoint_answer() {
    local path=$1 status=$2 body=$3 got
    got=$(ask $((SERVE_PORT + 5)) "$path" "$WORK/body")
    [ "$got" = "$status" ] && [ "$(strip_timing <"$WORK/body")" = "$body" ] ||
        { cat "$WORK/body" >&2; fail "GET $path from the checkpoint: not $status with bcoin's answer"; }
    echo "GET $path from the checkpoint: $status, as bcoin's RPC says"
}
expect_checkpoint_answer /tip 200 "$TIP_JSON"
expect_checkpoint_answer "/payments/$ADDRESS?from=2000" 200 "$(expected_payments 2000)"
expect_status $((SERVE_PORT + 5)) "/payments/$ADDRESS?from=1999" 400 'below the checkpoint at height 2000'

say "the same component under jco serve (Node.js, preview2-shim) on 127.0.0.1:$((SERVE_PORT + 4))"
JCO=scripts/jco/node_modules/.bin/jco
[ -x "$JCO" ] || (cd scripts/jco && npm ci --no-audit --no-fund --loglevel=error)
# jco passes its own environment to the component. Its own process group: jco serves from a
# child Node.js process, which must go with it.
setsid env "${GOOD[@]}" "$JCO" serve --port $((SERVE_PORT + 4)) --host 127.0.0.1 "$WASM" \
    >"$WORK/jco-serve.log" 2>&1 &
jco_group=$!
pids+=("$jco_group")
# Transpiling a debug component takes a while.
for _ in $(seq 1 1200); do
    curl -s -o /dev/null "http://127.0.0.1:$((SERVE_PORT + 4))/" && break
    kill -0 "${pids[-1]}" 2>/dev/null || { cat "$WORK/jco-serve.log" >&2; fail "jco serve exited"; }
    sleep 0.1
done
expect_answer $((SERVE_PORT + 4)) /tip 200 "$TIP_JSON"
expect_answer $((SERVE_PORT + 4)) "/payments/$ADDRESS?from=0" 200 "$(expected_payments 0)"
kill -- "-$jco_group" 2>/dev/null || true

say "bad questions: 400 and 404, before any peer is asked"
expect_status "$SERVE_PORT" /payments/nonsense 400 'bad address'
expect_status "$SERVE_PORT" /payments/bc1qzyg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3h8ffkz 400 'is not a regtest address'
expect_status "$SERVE_PORT" /blocks 404 'no such path'

say "peers that fail, each behind its own wasmtime serve: a closed port, a server that is not a Bitcoin node, a peer that goes silent"
# A port nobody listens on: bound by the OS, then closed.
CLOSED_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
# An SSH-like server greeting every connection, and a server that accepts and never speaks.
python3 - "$WORK/peers.ports" <<'EOF' &
import socket, sys, threading
def serve(greeting):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    def loop():
        while True:
            conn, _ = listener.accept()
            if greeting:
                conn.sendall(greeting)
            held.append(conn)  # never closed, never read: silence
    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1]
ports = [serve(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"), serve(b"")]
with open(sys.argv[1] + ".tmp", "w") as out:
    out.write(" ".join(map(str, ports)) + "\n")
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
threading.Event().wait()
EOF
pids+=("$!")
for _ in $(seq 1 100); do [ -s "$WORK/peers.ports" ] && break; sleep 0.1; done
read -r SSH_PORT SILENT_PORT <"$WORK/peers.ports"
rm -f "$WORK/peers.ports"
serve $((SERVE_PORT + 1)) EDGE_PEER="127.0.0.1:$CLOSED_PORT" EDGE_NETWORK=regtest
serve $((SERVE_PORT + 2)) EDGE_PEER="127.0.0.1:$SSH_PORT" EDGE_NETWORK=regtest
serve $((SERVE_PORT + 3)) EDGE_PEER="127.0.0.1:$SILENT_PORT" EDGE_NETWORK=regtest EDGE_DEADLINE_MS=$SILENT_DEADLINE_MS
expect_status $((SERVE_PORT + 1)) /tip 502 "connect() to 127.0.0.1:$CLOSED_PORT failed: Connection refused ("
expect_status $((SERVE_PORT + 2)) /tip 502 "Header error: Wrong MessageStart 5353482d received"
started=$(date +%s%N)
expect_status $((SERVE_PORT + 3)) /tip 504 "waiting for the version handshake: Receive timeout (received 0 of 24 bytes before that)"
took_ms=$((($(date +%s%N) - started) / 1000000))
echo "the silent peer's 504 came after $took_ms ms (deadline $SILENT_DEADLINE_MS ms)"
# The same answers from the native command.
for case in "$CLOSED_PORT 502" "$SSH_PORT 502" "$SILENT_PORT 504"; do
    read -r port status <<<"$case"
    got=$(EDGE_PEER="127.0.0.1:$port" EDGE_NETWORK=regtest EDGE_DEADLINE_MS=$SILENT_DEADLINE_MS "$NATIVE" /tip || true)
    got=$(head -n1 <<<"$got")
    [ "$got" = "$status" ] || fail "the native command answers $got for the peer on $port, not $status"
done
echo "the native command: 502, 502, 504 for the same three peers"

if [ "$MODE" = bench ]; then
    say "time per GET /tip: wasmtime serve (a fresh instance per request) vs the native command (a process per request), $BENCH_REQUESTS each, alternating"
    serve_total=0 serve_p2p=0 native_total=0 native_p2p=0 empty_total=0
    for _ in $(seq 1 "$BENCH_REQUESTS"); do
        t=$(curl -s -o "$WORK/body" -w '%{time_total}' "http://127.0.0.1:$SERVE_PORT/tip")
        serve_total=$(echo "$serve_total + $t" | bc -l)
        serve_p2p=$((serve_p2p + $(grep -o '"p2p_ms":[0-9]*' "$WORK/body" | cut -d: -f2)))
        # The same instance and HTTP round trip with nothing to do: a 404 answered before any
        # P2P (instantiation, request, routing, response).
        t=$(curl -s -o /dev/null -w '%{time_total}' "http://127.0.0.1:$SERVE_PORT/nothing")
        empty_total=$(echo "$empty_total + $t" | bc -l)
        started=$(date +%s%N)
        out=$(EDGE_PEER="127.0.0.1:$BCOIN_PORT" EDGE_NETWORK=regtest "$NATIVE" /tip)
        native_total=$((native_total + ($(date +%s%N) - started) / 1000))
        native_p2p=$((native_p2p + $(grep -o '"p2p_ms":[0-9]*' <<<"$out" | cut -d: -f2)))
    done
    awk -v n="$BENCH_REQUESTS" -v st="$serve_total" -v sp="$serve_p2p" -v et="$empty_total" \
        -v nt="$native_total" -v np="$native_p2p" 'BEGIN {
        s = st * 1000 / n; e = et * 1000 / n; nn = nt / 1000 / n;
        printf "wasmtime serve, GET /tip:        %7.1f ms a request (P2P part %5.1f ms)\n", s, sp / n;
        printf "wasmtime serve, GET /nothing:    %7.1f ms a request (instance + HTTP, no P2P)\n", e;
        printf "native command, edge /tip:       %7.1f ms a run     (P2P part %5.1f ms)\n", nn, np / n;
        printf "ratio wasmtime serve / native:   %7.2f (P2P part alone: %.2f)\n", s / nn, sp / np;
        printf "instantiation and HTTP, of the wasmtime request: %.0f%%\n", e * 100 / s;
    }'
fi

say "edge: /tip and /payments equal bcoin's RPC (component and native command), $CONCURRENT at once, 400/404/502/502/504 provoked"
