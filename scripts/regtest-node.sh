#!/usr/bin/env bash
# A real Bitcoin node on loopback, in regtest, so the light-client example is checked against
# a peer that is not our own code.
#
# Debian has no bitcoind or btcd, and PyPI and crates.io no full node; the npm registry has
# bcoin, a full node in JavaScript (the last release, 1.0.2). This script installs it into
# target/regtest-node (npm, no prebuilt download: leveldown's binary ships inside its npm
# package, mrmr is compiled with node-gyp against the local Node headers), starts it in regtest
# on 127.0.0.1 only, with no outbound connections and no external-address lookup, and mines
# 4,500 blocks (three getheaders rounds of 2,000) so it has headers to serve.
#
#   scripts/regtest-node.sh install   install bcoin (once)
#   scripts/regtest-node.sh start     install, start the node, mine REGTEST_BLOCKS blocks
#   scripts/regtest-node.sh stop      stop the node this script started
#   scripts/regtest-node.sh check     start; then, each ending on bcoin's tip (its RPC
#                                     getbestblockhash): the light client syncs from bcoin
#                                     (native, wasmtime); our node (examples/node) syncs from
#                                     bcoin natively, then a light client and 100 light clients
#                                     at once sync from it; our node syncs from bcoin in
#                                     wasmtime and 100 light clients at once sync from it;
#                                     the same on the WASI 0.3 backend (`--features wasip3`):
#                                     the light client syncs from bcoin, our node syncs from
#                                     bcoin and 100 light clients at once sync from it;
#                                     stop everything
#   scripts/regtest-node.sh rpc METHOD [PARAMS_JSON]   ask the running node over JSON-RPC
#
# Environment: REGTEST_PORT (default 18444), REGTEST_RPC_PORT (default REGTEST_PORT + 1), the
# example node's ports REGTEST_OUR_PORT (default REGTEST_PORT + 2, + 3 for the wasm one),
# REGTEST_BLOCKS (default 4500), REGTEST_PAYMENTS (KEYHASH@HEIGHT,HEIGHT,...: the coinbases of
# those blocks pay the P2WPKH of the 20-byte hex KEYHASH, every other one the all-zero key hash;
# scripts/edge-tests.sh uses it; bcoin spells regtest's bech32 "rb1", Core and rust-bitcoin
# "bcrt1", so the script is given, not an address), REGTEST_CLIENTS (light clients at once, default 100; against the node in wasmtime
# REGTEST_WASM_CLIENTS, default the same, for both WASI versions), REGTEST_NODE_DIR (default target/regtest-node).
# Nodes on different ports run side by side (their pid, log and data are per port). The node
# serves BIP 37 (bloom filters, merkleblocks) for the edge example.
set -euo pipefail
cd "$(dirname "$0")/.."

BCOIN_VERSION=1.0.2
# leveldown 4.0.1, which bcoin's database layer pins, does not compile against current Node
# headers; 6.1.1 ships prebuilt N-API binaries inside its npm package and keeps the API bcoin
# uses. With --memory the node never opens it anyway, but it is loaded at startup.
LEVELDOWN_VERSION=6.1.1
PORT=${REGTEST_PORT:-18444}
RPC_PORT=${REGTEST_RPC_PORT:-$((PORT + 1))}
BLOCKS=${REGTEST_BLOCKS:-4500}
PAYMENTS=${REGTEST_PAYMENTS:-}
OUR_PORT=${REGTEST_OUR_PORT:-$((PORT + 2))}
CLIENTS=${REGTEST_CLIENTS:-100}
WASM_CLIENTS=${REGTEST_WASM_CLIENTS:-$CLIENTS}
WASMTIME=(wasmtime run -S inherit-network=y -S allow-ip-name-lookup=y)
# Longest any one step may take (cargo builds included), in seconds.
STEP_TIMEOUT=${REGTEST_STEP_TIMEOUT:-600}
DIR=${REGTEST_NODE_DIR:-$PWD/target/regtest-node}
PID_FILE=$DIR/node-$PORT.pid
LOG_FILE=$DIR/node-$PORT.log

say() { printf '==> %s\n' "$*"; }

install() {
    # The launcher is written every time, so a change to it reaches an existing install.
    write_launcher
    if [ -f "$DIR/node_modules/mrmr/build/Release/mrmr.node" ]; then
        return
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        say "installing Node.js and npm (Debian packages)"
        apt-get update -qq
        apt-get install -y -qq nodejs npm
    fi
    if ! command -v make >/dev/null 2>&1 || ! command -v g++ >/dev/null 2>&1; then
        say "installing make and g++ for node-gyp (Debian packages)"
        apt-get update -qq
        apt-get install -y -qq make g++ python3
    fi
    say "installing bcoin $BCOIN_VERSION into $DIR"
    mkdir -p "$DIR"
    cat >"$DIR/package.json" <<EOF
{
  "name": "bitcoin-sock-regtest-node",
  "private": true,
  "dependencies": { "bcoin": "$BCOIN_VERSION" },
  "overrides": { "leveldown": "$LEVELDOWN_VERSION" }
}
EOF
    local nodedir=()
    # Build against the installed Node headers instead of letting node-gyp download them.
    if [ -f /usr/include/node/node.h ]; then nodedir=(--nodedir=/usr); fi
    (
        cd "$DIR"
        # --ignore-scripts: skip the native builds that cannot work (leveldown 4, bcrypto's
        # optional one: it falls back to JavaScript); then build the one that is needed.
        npm install --ignore-scripts --no-audit --no-fund --loglevel=error
        npm rebuild mrmr "${nodedir[@]}" --loglevel=error
    )
}

write_launcher() {
    mkdir -p "$DIR"
    cat >"$DIR/launch.js" <<'EOF'
'use strict';
// bcoin's full node in regtest on 127.0.0.1 only; mines blocks, then serves peers.
const FullNode = require('bcoin/lib/node/fullnode');
const Address = require('bcoin/lib/primitives/address');

const [port, rpcPort, blocks, prefix, payments] = process.argv.slice(2);
const node = new FullNode({
  network: 'regtest',
  prefix,
  memory: true,
  workers: false,
  listen: true,
  host: '127.0.0.1',
  port: Number(port),
  // JSON-RPC on loopback, where bcoin needs no API key.
  httpHost: '127.0.0.1',
  httpPort: Number(rpcPort),
  logConsole: true,
  logLevel: 'info',
  // BIP 37: filterload, merkleblock (the edge example's proven payments).
  bip37: true,
  // bcoin's default is 8 inbound peers; the edge tests send 20 requests at once, each its
  // own connection.
  maxInbound: 128,
});
// Loopback only: no DNS query for an external address, no outbound peers (regtest's
// "seed" would be dialled over and over), so the only peers are those that connect to it.
node.pool.discoverExternal = async () => {};
node.pool.discoverSeeds = async () => {};
node.pool.fillOutbound = () => {};

process.on('unhandledRejection', (err) => { throw err; });

(async () => {
  await node.ensure();
  await node.open();
  await node.connect();
  node.startSync();
  // Coinbases to the all-zero key hash: nobody can spend them, nobody needs to; those of the
  // heights in `payments` (KEYHASH@H1,H2,...) to the P2WPKH of KEYHASH. In runs of at most 500 blocks to
  // one address, so a long chain shows its progress; the time is the node's own.
  const address = Address.fromPubkeyhash(Buffer.alloc(20)).toString('regtest');
  const [keyHash, heightList] = payments ? payments.split('@') : ['', ''];
  const paid = keyHash
    ? Address.fromWitnessPubkeyhash(Buffer.from(keyHash, 'hex')).toString('regtest')
    : address;
  const paidHeights = new Set(heightList ? heightList.split(',').map(Number) : []);
  const to = (height) => (paidHeights.has(height) ? paid : address);
  const started = Date.now();
  const total = Number(blocks);
  while (node.chain.height < total) {
    const next = node.chain.height + 1;
    let count = 1;
    while (count < 500 && next + count <= total && to(next + count) === to(next)) count++;
    await node.rpc.generateToAddress([count, to(next)]);
    if (node.chain.height % 500 === 0 || node.chain.height === total) {
      console.log(`MINED height ${node.chain.height}`);
    }
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.log(`MINED ${blocks} blocks in ${seconds} s`);
  console.log(`READY 127.0.0.1:${port} height ${node.chain.height} tip ${node.chain.tip.rhash()}`);
})().catch((err) => {
  console.error(err.stack);
  process.exit(1);
});
EOF
}

running() {
    [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

start() {
    install
    if running; then
        say "a regtest node is already running (pid $(cat "$PID_FILE"))"
        return
    fi
    say "starting bcoin in regtest on 127.0.0.1:$PORT (JSON-RPC on $RPC_PORT), mining $BLOCKS blocks"
    mkdir -p "$DIR/data-$PORT"
    # A fresh log: the READY line of an earlier run must not be taken for this one's.
    : >"$LOG_FILE"
    node "$DIR/launch.js" "$PORT" "$RPC_PORT" "$BLOCKS" "$DIR/data-$PORT" "$PAYMENTS" >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    # Polls the log: mining 4,500 blocks takes bcoin about 20 s on a quiet machine.
    for _ in $(seq 1 1800); do
        if grep -q '^READY ' "$LOG_FILE"; then
            grep '^MINED [0-9]* blocks' "$LOG_FILE" || true
            grep '^READY ' "$LOG_FILE"
            return
        fi
        if ! running; then
            cat "$LOG_FILE" >&2
            echo "FAILED: the regtest node exited" >&2
            exit 1
        fi
        sleep 0.1
    done
    cat "$LOG_FILE" >&2
    stop
    echo "FAILED: the regtest node did not get ready in 180 s" >&2
    exit 1
}

stop() {
    if running; then
        local pid
        pid=$(cat "$PID_FILE")
        kill "$pid"
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        say "stopped the regtest node (pid $pid)"
    fi
    rm -f "$PID_FILE"
}

# JSON-RPC to the running node: prints the result (a JSON string's value bare).
rpc() {
    local method=$1 params=${2:-[]}
    timeout 30 node -e '
        const [port, method, params] = process.argv.slice(1);
        const body = JSON.stringify({ method, params: JSON.parse(params), id: 1 });
        const req = require("http").request({ host: "127.0.0.1", port: Number(port), method: "POST",
            path: "/", headers: { "Content-Type": "application/json" } }, (res) => {
          let text = "";
          res.on("data", (chunk) => { text += chunk; });
          res.on("end", () => {
            const reply = JSON.parse(text);
            if (reply.error) { console.error(JSON.stringify(reply.error)); process.exit(1); }
            console.log(typeof reply.result === "string" ? reply.result : JSON.stringify(reply.result));
          });
        });
        req.on("error", (err) => { console.error(err.message); process.exit(1); });
        req.end(body);
    ' "$RPC_PORT" "$method" "$params"
}

# Runs the light client ("${@:4}": the command, native binary or wasmtime + .wasm) against
# 127.0.0.1:$1 and checks it synced to height $2 and tip $3.
check_light_client() {
    local port=$1 height=$2 tip=$3
    shift 3
    local output
    if ! output=$(timeout "$STEP_TIMEOUT" "$@" --network regtest "127.0.0.1:$port" 2>&1); then
        echo "$output"
        echo "FAILED: $* against 127.0.0.1:$port" >&2
        return 1
    fi
    grep -E '^(connected|handshake|<- headers|synced)' <<<"$output"
    local want="synced: height $height, tip $tip"
    if ! grep -qxF "$want" <<<"$output"; then
        echo "$output"
        echo "FAILED: expected '$want'" >&2
        return 1
    fi
}

# Background processes of this script (our node, native or in wasmtime), stopped on exit.
our_pids=()
stop_all() {
    local pid
    for pid in "${our_pids[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    our_pids=()
    stop
}

# Starts our node ("$@": the command, native binary or wasmtime + .wasm) syncing from bcoin and
# listening on 127.0.0.1:$1; waits for its "synced:" line and checks height $2 and tip $3.
start_our_node() {
    local port=$1 height=$2 tip=$3 log=$4
    shift 4
    : >"$log"
    "$@" --network regtest --connect "127.0.0.1:$PORT" --listen "127.0.0.1:$port" \
        --maxconnections $((CLIENTS + WASM_CLIENTS * 2 + 25)) >"$log" 2>&1 &
    our_pids+=("$!")
    local pid=$!
    for _ in $(seq 1 $((STEP_TIMEOUT * 10))); do
        if grep -q '^synced:' "$log"; then break; fi
        if ! kill -0 "$pid" 2>/dev/null; then
            cat "$log" >&2
            echo "FAILED: our node exited" >&2
            return 1
        fi
        sleep 0.1
    done
    grep -E '^(listening|node: synced|synced:)' "$log" || true
    local want="synced: height $height, tip $tip, from 1 of 1 outbound peers"
    if ! grep -qF "$want" "$log"; then
        cat "$log" >&2
        echo "FAILED: expected our node's '$want'" >&2
        return 1
    fi
}

# Runs $4 light clients at once against our node on 127.0.0.1:$1 (log $5) and checks they all
# synced to height $2 and tip $3.
check_clients() {
    local port=$1 height=$2 tip=$3 count=$4 log=$5 output
    local want="$count of $count clients synced: height $height, tip $tip"
    if ! output=$(timeout "$STEP_TIMEOUT" target/debug/examples/light_client --network regtest --clients "$count" "127.0.0.1:$port" 2>&1) \
        || ! grep -qF "$want" <<<"$output"; then
        echo "$output"
        grep -v 'the peer closed the connection' "$log" | tail -20 >&2
        echo "FAILED: expected '$want'" >&2
        return 1
    fi
    grep -v '^network:' <<<"$output"
}

check() {
    trap stop_all EXIT
    start
    local tip height
    tip=$(rpc getbestblockhash)
    height=$(rpc getblockcount)
    say "bcoin: height $height, tip $tip (RPC getbestblockhash)"
    if [ "$height" -lt 4500 ]; then
        echo "FAILED: bcoin has $height blocks, fewer than three getheaders rounds" >&2
        return 1
    fi
    say "building the examples (native and wasm32-wasip2)"
    timeout "$STEP_TIMEOUT" cargo build --quiet --example light_client --example node
    timeout "$STEP_TIMEOUT" cargo build --quiet --example light_client --example node --target wasm32-wasip2
    # The WASI 0.3 build lands on the same paths: each kept apart under $DIR.
    local native=target/debug/examples wasm=$DIR/wasip2 wasip3=$DIR/wasip3
    mkdir -p "$wasm" "$wasip3"
    cp target/wasm32-wasip2/debug/examples/{light_client,node}.wasm "$wasm/"
    timeout "$STEP_TIMEOUT" cargo build --quiet --example light_client --example node --target wasm32-wasip2 --features wasip3
    cp target/wasm32-wasip2/debug/examples/{light_client,node}.wasm "$wasip3/"
    # The 0.3 components import wasi:sockets@0.3 and no 0.2 sockets.
    ./scripts/check-wasip3-imports.sh "$wasip3/light_client.wasm" "$wasip3/node.wasm"

    say "light_client <- bcoin, native"
    check_light_client "$PORT" "$height" "$tip" "$native/light_client"
    say "light_client <- bcoin, wasm32-wasip2 in wasmtime"
    check_light_client "$PORT" "$height" "$tip" "${WASMTIME[@]}" "$wasm/light_client.wasm"
    say "light_client <- bcoin, WASI 0.3 (wasip3) in wasmtime"
    check_light_client "$PORT" "$height" "$tip" "${WASMTIME[@]}" "$wasip3/light_client.wasm"

    say "our node <- bcoin, native; light_client <- our node"
    start_our_node "$OUR_PORT" "$height" "$tip" "$DIR/our-node.log" "$native/node"
    check_light_client "$OUR_PORT" "$height" "$tip" "$native/light_client"
    say "$CLIENTS light clients at once <- our node (native)"
    check_clients "$OUR_PORT" "$height" "$tip" "$CLIENTS" "$DIR/our-node.log"

    say "our node <- bcoin, wasm32-wasip2 in wasmtime; $WASM_CLIENTS light clients at once <- our node"
    start_our_node $((OUR_PORT + 1)) "$height" "$tip" "$DIR/our-node-wasm.log" "${WASMTIME[@]}" "$wasm/node.wasm"
    check_clients $((OUR_PORT + 1)) "$height" "$tip" "$WASM_CLIENTS" "$DIR/our-node-wasm.log"

    say "our node <- bcoin, WASI 0.3 (wasip3) in wasmtime; $WASM_CLIENTS light clients at once <- our node"
    start_our_node $((OUR_PORT + 2)) "$height" "$tip" "$DIR/our-node-wasip3.log" "${WASMTIME[@]}" "$wasip3/node.wasm"
    check_clients $((OUR_PORT + 2)) "$height" "$tip" "$WASM_CLIENTS" "$DIR/our-node-wasip3.log"
    say "bcoin -> light client (native, wasmtime on WASI 0.2 and 0.3); bcoin -> our node (native)" \
        "-> light client and $CLIENTS at once; bcoin -> our node (wasmtime, WASI 0.2 and 0.3) ->" \
        "$WASM_CLIENTS light clients at once: all at height $height, tip $tip"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    check) check ;;
    rpc)
        shift
        rpc "$@"
        ;;
    *)
        echo "usage: $0 install|start|stop|check|rpc METHOD [PARAMS_JSON]" >&2
        exit 2
        ;;
esac
