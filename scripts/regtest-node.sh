#!/usr/bin/env bash
# A real Bitcoin node on loopback, in regtest, so the light-client example is checked against
# a peer that is not our own code.
#
# Debian has no bitcoind or btcd, and PyPI and crates.io no full node; the npm registry has
# bcoin, a full node in JavaScript (the last release, 1.0.2). This script installs it into
# target/regtest-node (npm, no prebuilt download: leveldown's binary ships inside its npm
# package, mrmr is compiled with node-gyp against the local Node headers), starts it in regtest
# on 127.0.0.1 only, with no outbound connections and no external-address lookup, and mines a
# few blocks so it has headers to serve.
#
#   scripts/regtest-node.sh install   install bcoin (once)
#   scripts/regtest-node.sh start     install, start the node, mine REGTEST_BLOCKS blocks
#   scripts/regtest-node.sh stop      stop the node this script started
#   scripts/regtest-node.sh check     start; run the example against it natively and in
#                                     wasmtime, check the handshake and the headers; stop
#
# Environment: REGTEST_PORT (default 18444), REGTEST_BLOCKS (default 25),
# REGTEST_NODE_DIR (default target/regtest-node).
set -euo pipefail
cd "$(dirname "$0")/.."

BCOIN_VERSION=1.0.2
# leveldown 4.0.1, which bcoin's database layer pins, does not compile against current Node
# headers; 6.1.1 ships prebuilt N-API binaries inside its npm package and keeps the API bcoin
# uses. With --memory the node never opens it anyway, but it is loaded at startup.
LEVELDOWN_VERSION=6.1.1
PORT=${REGTEST_PORT:-18444}
BLOCKS=${REGTEST_BLOCKS:-25}
DIR=${REGTEST_NODE_DIR:-$PWD/target/regtest-node}
PID_FILE=$DIR/node.pid
LOG_FILE=$DIR/node.log

say() { printf '==> %s\n' "$*"; }

install() {
    if [ -f "$DIR/node_modules/mrmr/build/Release/mrmr.node" ] && [ -f "$DIR/launch.js" ]; then
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
    cat >"$DIR/launch.js" <<'EOF'
'use strict';
// bcoin's full node in regtest on 127.0.0.1 only; mines blocks, then serves peers.
const FullNode = require('bcoin/lib/node/fullnode');
const Address = require('bcoin/lib/primitives/address');

const [port, blocks, prefix] = process.argv.slice(2);
const node = new FullNode({
  network: 'regtest',
  prefix,
  memory: true,
  workers: false,
  listen: true,
  host: '127.0.0.1',
  port: Number(port),
  httpHost: '127.0.0.1',
  httpPort: 0,
  logConsole: true,
  logLevel: 'info',
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
  // Coinbases to the all-zero key hash: nobody can spend them, nobody needs to.
  const address = Address.fromPubkeyhash(Buffer.alloc(20)).toString('regtest');
  await node.rpc.generateToAddress([Number(blocks), address]);
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
    say "starting bcoin in regtest on 127.0.0.1:$PORT"
    mkdir -p "$DIR/data"
    # A fresh log: the READY line of an earlier run must not be taken for this one's.
    : >"$LOG_FILE"
    node "$DIR/launch.js" "$PORT" "$BLOCKS" "$DIR/data" >>"$LOG_FILE" 2>&1 &
    echo $! >"$PID_FILE"
    for _ in $(seq 1 600); do
        if grep -q '^READY ' "$LOG_FILE"; then
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
    echo "FAILED: the regtest node did not get ready in 60 s" >&2
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

# Runs the example against the node ("$@" are cargo's extra arguments, e.g. --target) and
# checks it shook hands and got every mined header, ending on the node's tip.
check_run() {
    local tip=$1
    shift
    local output
    if ! output=$(cargo run --quiet --example light_client "$@" -- --network regtest "127.0.0.1:$PORT" 2>&1); then
        echo "$output"
        echo "FAILED: light_client $* against the regtest node" >&2
        return 1
    fi
    echo "$output"
    local want="$BLOCKS headers arrived, chained from genesis to $tip"
    if ! grep -q 'handshake complete' <<<"$output" || ! grep -qF "$want" <<<"$output"; then
        echo "FAILED: expected 'handshake complete' and '$want'" >&2
        return 1
    fi
}

check() {
    trap stop EXIT
    start
    local tip
    tip=$(grep '^READY ' "$LOG_FILE" | awk '{print $NF}')
    say "light_client against the regtest node, native"
    check_run "$tip"
    say "light_client against the regtest node, wasm32-wasip2 in wasmtime"
    check_run "$tip" --target wasm32-wasip2
    say "the light client's handshake and getheaders work against bcoin, native and in wasmtime"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    check) check ;;
    *)
        echo "usage: $0 install|start|stop|check" >&2
        exit 2
        ;;
esac
