"""Transit-fault scenarios (issue #22): bcoin -> fault proxy -> our node -> fault proxy -> light
clients, each scenario one kind of fault, each judged from outside.

"At the tip" is judged by our own P2P client (harness/p2p.py): it syncs from the node's
--listen port, checks every header's link, nBits and proof of work, and compares the tip with
bcoin's RPC (getblockcount, getbestblockhash). Errors are judged by the node's or the light
client's line matching the scenario's pattern (Core's texts where Core has one).

Run through scripts/transit-faults.sh; `--help` lists the options, `--list` the scenarios.
"""

import argparse
import os
import re
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the worktree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import p2p, procs  # noqa: E402

# Node flags the scenarios set, in one place. The ping flags are Core's PING_INTERVAL and
# TIMEOUT_INTERVAL in seconds. stall-message uses the deadline for a getheaders answer
# (Core's HEADERS_RESPONSE_TIME, 2 minutes, here 5 s); a per-message deadline from the
# message's first byte (issue #26's --message-timeout) catches the same stall.
PING_FLAGS = ["--ping-interval", "2", "--timeout-interval", "4"]
MESSAGE_TIMEOUT_FLAGS = ["--headers-timeout", "5"]


class Fail(Exception):
    pass


class Ctx:
    def __init__(self, args, host, bcoin, workdir):
        self.args = args
        self.host = host
        self.bcoin = bcoin
        self.workdir = workdir
        self.started = []

    def scaled(self, seconds):
        return seconds * self.args.time_scale * (2 if self.host == "wasm" else 1)

    def proxy(self, upstream, name, sets=(), faults=()):
        args = ["--seed", str(self.args.seed)]
        for pair in sets:
            args += ["--set", pair]
        for fault in faults:
            args += ["--fault", fault]
        proxy = procs.Proxy(upstream, self.workdir, name=name, args=args)
        self.started.append(proxy)
        return proxy

    def node(self, connect, extra=(), name="node", maxconnections=125):
        node = procs.Node(self.host, self.workdir, connect=f"{connect[0]}:{connect[1]}",
                          maxconnections=maxconnections,
                          extra=list(extra) + self.args.node_arg, name=name)
        self.started.append(node)
        try:
            node.wait_listening(timeout=60)
        except RuntimeError:
            unknown = node.watch.find(r"unknown argument")
            if unknown:
                raise Fail(f"the node lacks a flag this scenario needs ({unknown[1].strip()})")
            raise Fail(f"the node did not start: {node.exit_reason()}")
        return node

    def stop_all(self):
        for thing in reversed(self.started):
            thing.stop()
        self.started = []

    def bcoin_tip(self):
        height, tip = self.bcoin.tip()
        return int(height), tip

    def node_at_tip(self, node, timeout, want=None):
        """Waits until the node serves bcoin's tip (every header checked); returns the
        seconds it took. Fails with where the node is otherwise."""
        want = want or self.bcoin_tip()
        end = time.monotonic() + timeout
        started = time.monotonic()
        last = "nothing served"
        while True:
            if not node.alive():
                raise Fail(f"the node exited: {node.exit_reason()}")
            try:
                # Each check gets at least 5 s, even the last one, so that a check cut short by
                # the scenario's deadline does not hide where the node is.
                left = max(5.0, min(30.0, end - time.monotonic()))
                chain = p2p.sync_once(node.addr, time.monotonic() + left)
                if (chain.height, chain.tip_hex()) == want:
                    return time.monotonic() - started
                last = f"the node serves height {chain.height}, tip {chain.tip_hex()[:16]}..."
            except (OSError, p2p.PeerClosed, p2p.PeerTimeout, ValueError,
                    p2p.HeaderError) as err:
                last = f"our checker failed: {type(err).__name__}: {err}"
            if time.monotonic() >= end:
                raise Fail(f"not at bcoin's tip (height {want[0]}) after {timeout:.0f} s: {last}")
            time.sleep(0.1)

    def expect_node_line(self, node, pattern, timeout, start=0, what="a line"):
        hit = node.watch.wait_for(pattern, timeout, start=start, proc=node.proc)
        if not hit:
            tail = " | ".join(t for _, t in node.watch.since(start)[-4:])
            raise Fail(f"no {what} matching /{pattern}/ within {timeout:.0f} s (last: {tail})")
        return hit

    def light_client(self, addr, timeout=120):
        return procs.run_light_client(self.args.client_host, addr, timeout=timeout)

    def light_client_at_tip(self, addr, timeout=120):
        code, out, took = self.light_client(addr, timeout)
        got = procs.light_client_tip(out)
        want = self.bcoin_tip()
        if code != 0 or got != want:
            last = out.strip().splitlines()[-1:] or ["no output"]
            raise Fail(f"light client: exit {code}, {got or 'no synced line'} vs bcoin {want}: "
                       f"{last[0]}")
        return took


# ---------------------------------------------------------------------------------------------
# scenarios: each returns a one-line detail or raises Fail(reason)

def both_legs(ctx, sets, node_seconds):
    """bcoin -> proxy -> node -> proxy -> light client, both proxies with `sets`: how long the
    node took to reach bcoin's tip, then the light client through the node."""
    up = ctx.proxy(ctx.bcoin.addr, "up", sets)
    node = ctx.node(up.addr)
    took = ctx.node_at_tip(node, ctx.scaled(node_seconds))
    down = ctx.proxy(node.addr, "down", sets)
    return took, ctx.light_client_at_tip(down.addr)


def clean(ctx):
    """No fault: bcoin -> proxy -> node -> proxy -> light client ends at bcoin's tip."""
    took, client = both_legs(ctx, (), 60)
    return f"node at tip in {took:.1f} s, light client through the proxy in {client:.1f} s"


def latency(ctx):
    """150 ms each way (+ up to 50 ms seeded jitter) on both legs: ends at the tip."""
    took, client = both_legs(ctx, ["latency_ms=150", "jitter_ms=50"], 60)
    return f"node at tip in {took:.1f} s, light client in {client:.1f} s"


def bytewise(ctx):
    """Every byte in its own write, both directions, both legs: ends at the tip."""
    took, client = both_legs(ctx, ["split=bytes"], 120)
    return f"node at tip in {took:.1f} s, light client in {client:.1f} s"


def random_splits(ctx):
    """Seeded random splits of 1..700 bytes, both directions, both legs: ends at the tip."""
    took, client = both_legs(ctx, ["split=random", "split_max=700"], 60)
    return f"node at tip in {took:.1f} s, light client in {client:.1f} s (seed {ctx.args.seed})"


def reset_mid_headers(ctx):
    """RST inside the 2nd headers message from bcoin: the node logs the reset, reconnects
    (bounded backoff), resumes from the headers it has (its next getheaders starts at height
    2000, not at genesis) and ends at the tip."""
    up = ctx.proxy(ctx.bcoin.addr, "up",
                   faults=["action=reset dir=down cmd=headers nth=2 offset=half conn=1"])
    node = ctx.node(up.addr)
    ctx.expect_node_line(node, r"(reset|recv error)", ctx.scaled(30), what="reset line")
    took = ctx.node_at_tip(node, ctx.scaled(30))
    stats = up.stats()
    if stats["accepted"] < 2:
        raise Fail("at the tip without reconnecting?")
    second = next((c for c in stats["connections"] if c["id"] == 2), None)
    resumed = second and second.get("up", {}).get("getheaders_from", [None])[0]
    want = ctx.bcoin.rpc("getblockhash", [2000])
    if resumed != want:
        raise Fail(f"the second connection's first getheaders starts at {resumed}, not at "
                   f"height 2000 ({want[:16]}...): the sync did not resume")
    return f"reconnected, resumed at height 2000, at tip {took:.1f} s after the reset"


def restart_proxy(ctx):
    """The upstream goes away inside the 1st headers message (every connection reset) and
    refuses connections for 3 s: the node retries, reconnects, and ends at the tip."""
    up = ctx.proxy(ctx.bcoin.addr, "up",
                   faults=["action=restart seconds=3 dir=down cmd=headers nth=1 offset=half"])
    node = ctx.node(up.addr)
    took = ctx.node_at_tip(node, ctx.scaled(30))
    return f"at the tip {took:.1f} s after start ({up.stats()['accepted']} connections)"


def restart_bcoin(ctx):
    """bcoin itself restarts mid-sync (stopped while a headers answer is held in the proxy,
    the connection cut, bcoin started again on the same port with the same chain): the node
    reconnects and ends at the tip."""
    up = ctx.proxy(ctx.bcoin.addr, "up",
                   faults=["action=stall dir=down cmd=headers nth=1 offset=half conn=1"])
    node = ctx.node(up.addr)
    if not up.watch.wait_for(r"stall for", ctx.scaled(30)):
        raise Fail("the sync never reached the first headers answer")
    ctx.bcoin.stop()
    up.command("reset-all")
    ctx.bcoin.start(mine=0)
    took = ctx.node_at_tip(node, ctx.scaled(30))
    return f"at the tip {took:.1f} s after bcoin was back"


def stall_message(ctx):
    """bcoin's 1st headers message stalls halfway for 30 s, past the message deadline (node
    flag --message-timeout 5): the node drops the peer within the deadline, saying so,
    reconnects, and ends at the tip."""
    up = ctx.proxy(ctx.bcoin.addr, "up",
                   faults=["action=stall seconds=30 dir=down cmd=headers nth=1 offset=half "
                           "conn=1"])
    node = ctx.node(up.addr, extra=MESSAGE_TIMEOUT_FLAGS)
    if not up.watch.wait_for(r"stall for", ctx.scaled(30)):
        raise Fail("the sync never reached the first headers answer")
    stalled = time.monotonic()
    hit = ctx.expect_node_line(node, r"(timeout|deadline|within|silent for)", ctx.scaled(10),
                               what="drop line")
    took = ctx.node_at_tip(node, ctx.scaled(30))
    return f"dropped {hit[0] - stalled:.1f} s into the stall; at tip {took:.1f} s later"


def ping_timeout(ctx):
    """After the sync, bcoin goes silent (its bytes stall, the connection stays open): with
    --ping-interval 2 --timeout-interval 4 the node pings, gets no pong, drops the peer with Core's "ping timeout"
    within interval + timeout, and reconnects."""
    up = ctx.proxy(ctx.bcoin.addr, "up",
                   faults=["action=stall dir=down cmd=headers nth=2 offset=end conn=1"])
    node = ctx.node(up.addr, extra=PING_FLAGS)
    ctx.node_at_tip(node, ctx.scaled(60))
    if not up.watch.wait_for(r"stall for", ctx.scaled(10)):
        raise Fail("the proxy never stalled")
    stalled = time.monotonic()
    hit = ctx.expect_node_line(node, r"ping timeout", ctx.scaled(15), what="ping timeout line")
    pings = up.stats()["commands"]["up"].get("ping", 0)
    if not pings:
        raise Fail("dropped without a ping")
    end = time.monotonic() + ctx.scaled(15)
    while up.stats()["accepted"] < 2:
        if time.monotonic() > end:
            raise Fail("no reconnect after the ping timeout")
        time.sleep(0.2)
    return f"{pings} ping(s), dropped {hit[0] - stalled:.1f} s after the silence, reconnected"


def keepalive(ctx):
    """An idle, healthy outbound peer is pinged every interval (--ping-interval 2
    --timeout-interval 4) and kept."""
    up = ctx.proxy(ctx.bcoin.addr, "up")
    node = ctx.node(up.addr, extra=PING_FLAGS)
    ctx.node_at_tip(node, ctx.scaled(60))
    time.sleep(ctx.scaled(7))
    stats = up.stats()
    pings = stats["commands"]["up"].get("ping", 0)
    pongs = stats["commands"]["up"].get("pong", 0)
    if pings < 2:
        raise Fail(f"{pings} pings from the node in 7 s with a 2 s interval")
    if stats["accepted"] != 1 or stats["active"] != 1:
        raise Fail(f"the connection did not stay: {stats['accepted']} accepted")
    return f"{pings} pings, {pongs} pongs, one connection kept"


def follow_tip(ctx):
    """While the node runs, bcoin mines 3 blocks: the node learns them (it sent sendheaders,
    BIP 130; an inv or headers announcement makes it fetch the headers) and, without being
    asked, announces them to a light client that stays connected at its tip (that client sent
    sendheaders: `headers`, or an `inv` it then asks about) within --tip-deadline (1 s)."""
    up = ctx.proxy(ctx.bcoin.addr, "up")
    node = ctx.node(up.addr)
    ctx.node_at_tip(node, ctx.scaled(60))
    client = p2p.Client(node.addr)
    announced = {"headers": 0, "inv": 0}
    try:
        client.handshake(time.monotonic() + 10)
        client.send("sendheaders")
        chain = client.sync(time.monotonic() + 30)
        mined = time.monotonic()
        ctx.bcoin.mine(3)
        want = ctx.bcoin_tip()
        end = mined + ctx.args.tip_deadline
        while (chain.height, chain.tip_hex()) != want:
            left = end - time.monotonic()
            if left <= 0:
                raise Fail(f"{ctx.args.tip_deadline} s after mining 3 blocks the node announced "
                           f"height {chain.height} ({announced}), bcoin is at {want[0]}")
            try:
                command, payload = client.receive_command({"headers", "inv"},
                                                          time.monotonic() + left)
            except p2p.PeerTimeout:
                continue
            announced[command] += 1
            if command == "headers":
                chain.add(p2p.decode_headers(payload))
            else:
                headers, _ = client.getheaders(chain.locator(), time.monotonic() + 10)
                chain.add(headers)
        took = time.monotonic() - mined
    finally:
        client.close()
    sendheaders = up.stats()["commands"]["up"].get("sendheaders", 0)
    if not sendheaders:
        raise Fail(f"at the new tip in {took:.2f} s, but the node never sent sendheaders")
    return (f"new tip (height {want[0]}) announced {took:.2f} s after mining "
            f"({announced['headers']} headers, {announced['inv']} inv); sendheaders sent")


def client_reset(ctx):
    """RST inside the 1st headers message to a light client: it fails at once with a clear
    error (not a hang), and the node goes on serving: the next light client ends at the tip."""
    node = ctx.node(ctx.bcoin.addr)
    ctx.node_at_tip(node, ctx.scaled(60))
    down = ctx.proxy(node.addr, "down",
                     faults=["action=reset dir=down cmd=headers nth=1 offset=half conn=1"])
    code, out, took = ctx.light_client(down.addr, timeout=60)
    error = next((line for line in out.splitlines() if line.startswith("error:")), "")
    if code == 0 or not re.search(r"(reset|closed)", error):
        raise Fail(f"light client exit {code}, error {error!r}")
    after = ctx.light_client_at_tip(down.addr)
    if not node.alive():
        raise Fail("the node died")
    return f"client failed in {took:.1f} s with {error!r}; next client at tip in {after:.1f} s"


def client_stall(ctx):
    """The node's 1st headers answer to a light client stalls halfway for 90 s: the light
    client gives up at its own deadline (30 s for a headers answer) with a timeout error."""
    node = ctx.node(ctx.bcoin.addr)
    ctx.node_at_tip(node, ctx.scaled(60))
    down = ctx.proxy(node.addr, "down",
                     faults=["action=stall seconds=90 dir=down cmd=headers nth=1 offset=half"])
    code, out, took = ctx.light_client(down.addr, timeout=75)
    error = next((line for line in out.splitlines() if line.startswith("error:")), "")
    if code is None:
        raise Fail("the light client hung past 75 s")
    if code == 0 or not re.search(r"timed out|timeout", error) or took > 45:
        raise Fail(f"light client exit {code} after {took:.1f} s, error {error!r}")
    return f"client failed after {took:.1f} s with {error!r}"


def client_restart(ctx):
    """The path to the node restarts inside its 1st headers answer to a light client (reset,
    refused for 2 s): that client fails with a clear error at once, never hangs; one started
    after ends at the tip."""
    node = ctx.node(ctx.bcoin.addr)
    ctx.node_at_tip(node, ctx.scaled(60))
    down = ctx.proxy(node.addr, "down",
                     faults=["action=restart seconds=2 dir=down cmd=headers nth=1 offset=half"])
    code, out, took = ctx.light_client(down.addr, timeout=60)
    error = next((line for line in out.splitlines() if line.startswith("error:")), "")
    if code == 0 or not error or took > 10:
        raise Fail(f"light client exit {code} after {took:.1f} s, error {error!r}")
    if not down.watch.wait_for(r"accepting again", 10):
        raise Fail("the proxy never came back")
    after = ctx.light_client_at_tip(down.addr)
    return f"client failed in {took:.1f} s with {error!r}; next client at tip in {after:.1f} s"


SCENARIOS = [
    ("clean", clean, "passes"),
    ("latency", latency, "passes"),
    ("bytewise", bytewise, "passes"),
    ("random-splits", random_splits, "passes"),
    ("reset-mid-headers", reset_mid_headers, "no reconnect: stays at height 2000"),
    ("restart-proxy", restart_proxy, "no reconnect: stays at genesis"),
    ("restart-bcoin", restart_bcoin, "no reconnect: stays at genesis"),
    ("stall-message", stall_message, "no --message-timeout (and no message deadline)"),
    ("ping-timeout", ping_timeout, "no --ping-interval / --timeout-interval"),
    ("keepalive", keepalive, "no --ping-interval / --timeout-interval"),
    ("follow-tip", follow_tip, "ignores announcements: never learns the new blocks, "
     "announces nothing"),
    ("client-reset", client_reset, "passes"),
    ("client-stall", client_stall, "passes (takes the client's 30 s deadline)"),
    ("client-restart", client_restart, "passes"),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", choices=["native", "wasm", "both"], default="native",
                        help="where our node runs (wasm: wasmtime 48)")
    parser.add_argument("--client-host", choices=["native", "wasm"], default="native",
                        help="where the light-client example runs")
    parser.add_argument("--only", default="", help="comma-separated scenario names")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument("--blocks", type=int, default=2100,
                        help="bcoin's chain (default 2100: two getheaders rounds)")
    parser.add_argument("--seed", type=int, default=1, help="the proxies' random seed")
    parser.add_argument("--node-arg", action="append", default=[],
                        help="one more argument for every node started (repeatable)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="multiplies every deadline (a slow machine)")
    parser.add_argument("--tip-deadline", type=float, default=1.0,
                        help="follow-tip: seconds from mining to the node serving the tip")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if args.list:
        for name, func, today in SCENARIOS:
            doc = " ".join((func.__doc__ or "").split())
            print(f"{name}: {doc}\n    before #22: {today}")
        return 0
    wanted = [s for s in args.only.split(",") if s]
    unknown = set(wanted) - {name for name, _, _ in SCENARIOS}
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if args.blocks <= p2p.MAX_HEADERS:
        # Resuming "at height 2000" and the 2nd headers answer need a second round.
        print("--blocks must be above 2000 (two getheaders rounds)", file=sys.stderr)
        return 2
    hosts = ["native", "wasm"] if args.host == "both" else [args.host]
    procs.install_cleanup()
    if not args.no_build:
        procs.build(sorted(set(hosts + [args.client_host])))
    workdir = procs.tempdir("transit-")
    bcoin = procs.Bcoin(args.blocks, workdir)
    procs.say(f"starting bcoin (regtest, {args.blocks} blocks)")
    procs.say(bcoin.start())
    results = []
    for host in hosts:
        for name, func, today in SCENARIOS:
            if wanted and name not in wanted:
                continue
            ctx = Ctx(args, host, bcoin, workdir)
            started = time.monotonic()
            try:
                detail = func(ctx)
                verdict = "PASS"
            except Fail as err:
                verdict, detail = "FAIL", str(err)
            except Exception as err:  # a broken harness step fails the scenario, loudly
                verdict, detail = "FAIL", f"harness error: {type(err).__name__}: {err}"
            finally:
                ctx.stop_all()
                if bcoin.proc is None or bcoin.proc.poll() is not None:
                    bcoin.start(mine=0)
            took = time.monotonic() - started
            print(f"{verdict} {name} [{host}] ({took:.1f} s): {detail}", flush=True)
            results.append((verdict, name, host))
    passed = sum(1 for r in results if r[0] == "PASS")
    failed = len(results) - passed
    failing = ", ".join(f"{n}[{h}]" for v, n, h in results if v == "FAIL")
    if failing:
        print(f"failed: {failing}")
    print(f"load average (1, 5, 15 min) at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"transit-faults: {passed} passed, {failed} failed")
    return 1 if failed or not results else 0


if __name__ == "__main__":
    sys.exit(main())
