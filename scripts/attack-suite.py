#!/usr/bin/env python3
"""Hostile peers against the example node (issue #26), on loopback, natively and in wasmtime.

Each attack starts a fresh node (synced from bcoin, listening), samples its process (the
wasmtime process for the wasm node) for resident memory (/proc/PID/status VmRSS) and open
descriptors (/proc/PID/fd), runs scripted peers that speak Bitcoin P2P, and checks one bound
from the issue's "deliver" list; the thresholds are flags. Prints PASS/FAIL per attack with its
figures, ends with `attack-suite: N passed, M failed`, exits non-zero on any failure.

    scripts/attack-suite.py                    quick mode, our node native (2-3 minutes)
    scripts/attack-suite.py --host both        native, then in wasmtime
    scripts/attack-suite.py --full             the issue's sizes (100,000 cycles, 60 s windows)
    scripts/attack-suite.py --only spam,cycles --node-arg=--max-memory=32000000

Every node gets --message-timeout set to --message-deadline (the bound trickle checks).

Attacks:
  slots     --slots silent or pre-handshake-trickling peers hold every inbound slot
            (--maxconnections = --slots + 1: theirs and the node's own to bcoin): an honest
            client must get its headers within --honest-deadline s.
  trickle   --trickle-peers peers finish the handshake, then send one message a byte per
            second: each must be dropped within --message-deadline s of its first byte.
  partial   --partial-peers peers each send 4,000,000-byte payloads but the last byte: the
            node's memory growth must stay under --memory-budget-mb.
  spam      --spam-peers peers send ping and getheaders (--spam-rate pairs a second each)
            and never read, for --spam-seconds: an honest client's getheaders round trips
            stay within --latency-median-ms / --latency-max-ms, memory within the budget, the
            node's log within --log-rate lines a second.
  cycles    --cycles connect/handshake/disconnect cycles, --parallel at once: memory after
            the first tenth (warm-up) flat: growth within --cycle-bytes a cycle (above a
            --cycle-noise-kb floor) and --cycle-growth-mb; descriptors back.
After every attack the attackers leave; the node must still be alive, serve an honest client,
and its descriptors return to their count before the attack (within 2).
"""

import argparse
import os
import statistics
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the worktree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import p2p, procs  # noqa: E402


class Fail(Exception):
    pass


def mib(kib):
    return kib / 1024


class Attack:
    """One attack's node, sampler and figures."""

    def __init__(self, args, host, bcoin, workdir, name, maxconnections=125, extra=()):
        self.args = args
        self.host = host
        self.name = name
        self.figures = []
        self.node = procs.Node(host, workdir, connect=f"127.0.0.1:{bcoin.port}",
                               maxconnections=maxconnections,
                               extra=list(extra) + args.node_arg, name=f"node-{name}")
        try:
            self.node.wait_listening(60)
        except RuntimeError as err:
            raise Fail(str(err)) from err
        want = bcoin.tip()
        end = time.monotonic() + 120
        while True:
            try:
                chain = p2p.sync_once(self.node.addr, time.monotonic() + 30)
                if (chain.height, chain.tip_hex()) == (int(want[0]), want[1]):
                    break
            except (OSError, p2p.PeerClosed, p2p.PeerTimeout, ValueError):
                pass
            if time.monotonic() > end or not self.node.alive():
                raise Fail(f"the node never reached bcoin's tip: {self.node.exit_reason()}")
            time.sleep(0.2)
        self.chain = chain
        # Settled: the checker's connection is closed before the baseline is taken.
        time.sleep(0.5)
        self.sampler = procs.Sampler(self.node.pid, args.sample_interval)
        time.sleep(args.sample_interval * 2)
        first = self.sampler.last()
        if not first:
            raise Fail("cannot sample the node's process")
        self.rss0, self.fds0 = first[1], first[2]
        self.cpu0 = procs.cpu_seconds(self.node.pid)
        self.log0 = self.node.watch.count()
        self.t0 = time.monotonic()

    def note(self, text):
        self.figures.append(text)

    def honest(self, deadline_s):
        """One honest client: connect, handshake, getheaders from genesis. Its seconds, or
        the reason it was not served."""
        started = time.monotonic()
        deadline = started + deadline_s
        try:
            client = p2p.Client(self.node.addr, timeout=deadline_s)
            try:
                client.handshake(deadline)
                headers, _ = client.getheaders([self.chain.hashes[0]], deadline)
                if not headers:
                    return None, "an empty headers answer"
            finally:
                client.close()
        except p2p.PeerTimeout:
            return None, f"no answer within {deadline_s} s"
        except (OSError, p2p.PeerClosed, ValueError) as err:
            return None, f"{type(err).__name__}: {err}"
        return time.monotonic() - started, None

    def finish(self, failures):
        """After the attackers left: alive, serving, descriptors back. Stops the node."""
        try:
            if not self.node.alive():
                failures.append(f"the node died: {self.node.exit_reason()}")
                return
            end = time.monotonic() + 10
            while True:
                now = procs.sample(self.node.pid)
                if now and now[1] <= self.fds0 + 2:
                    break
                if time.monotonic() > end:
                    failures.append(f"descriptors {now[1] if now else '?'} 10 s after the "
                                    f"attackers left, {self.fds0} before")
                    break
                time.sleep(0.2)
            took, why = self.honest(5.0)
            if why:
                failures.append(f"after the attack, an honest client was not served: {why}")
            cpu = procs.cpu_seconds(self.node.pid)
            elapsed = time.monotonic() - self.t0
            after = procs.sample(self.node.pid) or (0, 0)
            last = (time.monotonic(), *after)
            self.note(f"RSS {mib(self.rss0):.1f} -> peak {mib(self.sampler.peak_kib(self.t0)):.1f}"
                      f" -> {mib(last[1]):.1f} MiB after; fds {self.fds0} -> peak "
                      f"{max(s[2] for s in self.sampler.between(self.t0))} -> {last[2]}")
            if cpu is not None and self.cpu0 is not None:
                self.note(f"node CPU {100 * (cpu - self.cpu0) / elapsed:.0f}% of a core")
        finally:
            self.sampler.stop()
            self.node.stop()


def connect_many(addr, count, tries):
    """Opens up to `count` connections that the node keeps (tries at most `tries`): those
    held, and how many the node closed at once."""
    held, closed = [], 0
    for _ in range(tries):
        if len(held) >= count:
            break
        try:
            peer = p2p.RawPeer(addr)
        except OSError:
            closed += 1
            continue
        held.append(peer)
        # A connection refused at -maxconnections is closed by the node straight away.
        p2p.pump([peer], 0.02)
        if peer.closed:
            held.remove(peer)
            peer.close()
            closed += 1
    return held, closed


def attack_slots(args, attack):
    """Silent and pre-handshake-trickling peers in every slot; an honest client comes."""
    addr = attack.node.addr
    held, refused = connect_many(addr, args.slots, args.slots * 4)
    attack.note(f"{len(held)} bad peers hold slots ({refused} refused at once)")
    trickle = held[len(held) // 2:]
    version = p2p.frame("version", p2p.version_payload())
    position = {id(p): 0 for p in trickle}
    failures = []
    served_at = None
    started = time.monotonic()
    end = started + args.lockout_window
    next_try = started
    tries = 0
    first_why = None
    while time.monotonic() < end:
        for peer in trickle:
            if not peer.closed and position[id(peer)] < len(version):
                peer.queue(version[position[id(peer)]:position[id(peer)] + 1])
                position[id(peer)] += 1
        p2p.pump(held, 0.0)
        if time.monotonic() >= next_try:
            tries += 1
            took, why = attack.honest(args.honest_deadline)
            if took is not None:
                served_at = time.monotonic() - started
                attack.note(f"honest client served in {took * 1000:.0f} ms "
                            f"(try {tries}, {served_at:.1f} s into the attack)")
                if tries > 1:
                    failures.append(f"honest client refused until {served_at:.1f} s "
                                    f"({tries - 1} tries failed first: {first_why})")
                break
            if tries == 1:
                first_why = why
            next_try = time.monotonic() + 1.0
        p2p.pump(held, 1.0)
    if served_at is None:
        failures.append(f"honest client never served in {args.lockout_window:.0f} s "
                        f"({tries} tries; first: {first_why})")
    dropped = sum(1 for p in held if p.closed)
    attack.note(f"{dropped} of {len(held)} bad peers dropped by the node meanwhile")
    for peer in held:
        peer.close()
    return failures


def attack_trickle(args, attack):
    """Peers that finished the handshake send one message a byte per second."""
    peers, _ = connect_many(attack.node.addr, args.trickle_peers, args.trickle_peers * 2)
    done = p2p.handshake_all(peers, time.monotonic() + 30)
    attack.note(f"{done} of {len(peers)} peers finished the handshake")
    # A getheaders of 1 + 32 + 32 + 4 bytes' payload, announced in full, sent a byte at a time.
    message = p2p.frame("getheaders", p2p.getheaders_payload([attack.chain.hashes[0]]))
    sent = {id(p): 0 for p in peers}
    first_byte = time.monotonic()
    dropped_at = {}
    end = first_byte + args.message_deadline + args.trickle_slack
    while time.monotonic() < end:
        for peer in peers:
            if peer.closed:
                dropped_at.setdefault(id(peer), time.monotonic() - first_byte)
                continue
            # The last byte is never sent: the message stays unfinished.
            if sent[id(peer)] < len(message) - 1:
                peer.queue(message[sent[id(peer)]:sent[id(peer)] + 1])
                sent[id(peer)] += 1
        p2p.pump(peers, 1.0, keep=False)
    for peer in peers:
        if peer.closed:
            dropped_at.setdefault(id(peer), time.monotonic() - first_byte)
    in_time = sum(1 for t in dropped_at.values() if t <= args.message_deadline + 1.0)
    attack.note(f"{len(dropped_at)} of {len(peers)} dropped within "
                f"{args.message_deadline + args.trickle_slack:.0f} s of their first byte "
                f"({in_time} within the {args.message_deadline:.0f} s deadline + 1 s)")
    for peer in peers:
        peer.close()
    if in_time < len(peers):
        return [f"{len(peers) - in_time} of {len(peers)} trickling peers not dropped within "
                f"{args.message_deadline:.0f} s (+1 s) of their first byte"]
    return []


def attack_partial(args, attack):
    """Peers each hold an unfinished 4,000,000-byte payload."""
    peers, _ = connect_many(attack.node.addr, args.partial_peers, args.partial_peers * 2)
    done = p2p.handshake_all(peers, time.monotonic() + 30)
    size = p2p.MAX_PAYLOAD
    header = (p2p.REGTEST_MAGIC + b"headers".ljust(12, b"\0") + struct.pack("<I", size)
              + b"\0\0\0\0")
    chunk = bytes(size - 1)
    for peer in peers:
        peer.queue(header + chunk)
    started = time.monotonic()
    p2p.pump(peers, args.partial_send_seconds, keep=False)
    unsent = sum(len(p.out) for p in peers if not p.closed)
    delivered = len(peers) * (len(header) + len(chunk)) - unsent
    p2p.pump(peers, args.hold_seconds, keep=False)
    peak = attack.sampler.peak_kib(started)
    growth = mib(peak - attack.rss0)
    dropped = sum(1 for p in peers if p.closed)
    attack.note(f"{done} peers, {delivered / 1e6:.0f} MB delivered, {dropped} dropped; RSS "
                f"growth {growth:.1f} MiB (budget {args.memory_budget_mb} MiB)")
    for peer in peers:
        peer.close()
    if growth > args.memory_budget_mb:
        return [f"RSS grew {growth:.1f} MiB past the {args.memory_budget_mb} MiB budget"]
    return []


def attack_spam(args, attack):
    """Peers spam ping and getheaders and never read; an honest client measures."""
    peers, _ = connect_many(attack.node.addr, args.spam_peers, args.spam_peers * 2)
    done = p2p.handshake_all(peers, time.monotonic() + 30)
    pair = (p2p.frame("ping", p2p.ping_payload(1))
            + p2p.frame("getheaders", p2p.getheaders_payload([attack.chain.hashes[0]])))
    latencies, errors = [], []
    stop = threading.Event()
    # The honest client syncs before the spam starts; then it measures round trips.
    client = p2p.Client(attack.node.addr, timeout=10)
    client.handshake(time.monotonic() + 10)
    chain = client.sync(time.monotonic() + 30)

    def honest_loop():
        try:
            while not stop.is_set():
                # Ask from one block below the tip: the answer is one header.
                _, took = client.getheaders([chain.hashes[-2]], time.monotonic() + 10)
                latencies.append(took)
                stop.wait(0.1)
        except Exception as err:  # reported, not raised: the thread's outcome is a figure
            errors.append(f"{type(err).__name__}: {err}")

    log_start = attack.node.watch.count()
    started = time.monotonic()
    thread = threading.Thread(target=honest_loop, daemon=True)
    thread.start()
    end = started + args.spam_seconds
    # --spam-rate ping+getheaders pairs a second per peer (0: as fast as the socket takes).
    owed = 0.0
    last = time.monotonic()
    while time.monotonic() < end:
        now = time.monotonic()
        owed += args.spam_rate * (now - last) if args.spam_rate else 64
        last = now
        pairs = int(owed)
        owed -= pairs
        for peer in peers:
            # Bounded on our side too: a node that stops reading leaves at most 1 MiB here.
            if pairs and not peer.closed and len(peer.out) < (1 << 20):
                peer.queue(pair * pairs)
        p2p.pump(peers, 0.05, read=False)
    stop.set()
    thread.join(15)
    client.close()
    elapsed = time.monotonic() - started
    lines = attack.node.watch.count() - log_start
    dropped = sum(1 for p in peers if p.closed)
    peak = attack.sampler.peak_kib(started)
    growth = mib(peak - attack.rss0)
    failures = []
    if latencies:
        median = statistics.median(latencies) * 1000
        worst = max(latencies) * 1000
        attack.note(f"honest getheaders: {len(latencies)} round trips, median {median:.0f} ms, "
                    f"max {worst:.0f} ms")
        if median > args.latency_median_ms:
            failures.append(f"honest median {median:.0f} ms > {args.latency_median_ms} ms")
        if worst > args.latency_max_ms:
            failures.append(f"honest max {worst:.0f} ms > {args.latency_max_ms} ms")
    else:
        failures.append("the honest client got no answer")
    if errors:
        failures.append(f"honest client failed: {errors[0]}")
    attack.note(f"{done} spammers, {dropped} dropped; RSS growth {growth:.1f} MiB; "
                f"{lines} log lines in {elapsed:.0f} s")
    if growth > args.memory_budget_mb:
        failures.append(f"RSS grew {growth:.1f} MiB past the {args.memory_budget_mb} MiB budget")
    if lines / elapsed > args.log_rate:
        failures.append(f"{lines / elapsed:.0f} log lines a second > {args.log_rate}")
    for peer in peers:
        peer.close()
    return failures


def attack_cycles(args, attack):
    """connect / handshake / disconnect, --parallel at a time, --cycles in all."""
    addr = attack.node.addr
    version = p2p.frame("version", p2p.version_payload())
    verack = p2p.frame("verack")
    done = failed = 0
    warm = max(1, args.cycles // 10)
    warm_rss = None
    started = time.monotonic()
    end = started + args.cycles_seconds
    live = []
    while (done + failed < args.cycles or live) and time.monotonic() < end:
        while len(live) < args.parallel and done + failed + len(live) < args.cycles:
            try:
                peer = p2p.RawPeer(addr)
            except OSError:
                failed += 1
                continue
            peer.queue(version)
            live.append(peer)
        p2p.pump(live, 0.05)
        still = []
        for peer in live:
            for command, _ in peer.messages():
                if command == "version":
                    peer.version = True
                elif command == "verack":
                    peer.verack = True
            if peer.version and peer.verack:
                peer.sock.setblocking(True)
                peer.sock.settimeout(1)
                try:
                    peer.sock.sendall(verack)
                except OSError:
                    pass
                peer.close()
                done += 1
                if done == warm:
                    time.sleep(0.5)
                    warm_rss = procs.sample(attack.node.pid)[0]
            elif peer.closed:
                peer.close()
                failed += 1
            else:
                still.append(peer)
        live = still
    for peer in live:
        peer.close()
    elapsed = time.monotonic() - started
    time.sleep(1.0)
    end_rss, end_fds = procs.sample(attack.node.pid)
    failures = []
    attack.note(f"{done} cycles in {elapsed:.1f} s ({done / elapsed:.0f}/s), {failed} failed")
    if warm_rss is None:
        return failures + [f"only {done} cycles done: no warm-up point"]
    growth = mib(end_rss - warm_rss)
    per = (end_rss - warm_rss) * 1024 / max(1, done - warm)
    attack.note(f"RSS after {warm} cycles {mib(warm_rss):.1f} MiB, after {done} "
                f"{mib(end_rss):.1f} MiB ({per:.0f} B per cycle)")
    if done < args.cycles:
        failures.append(f"only {done} of {args.cycles} cycles in {args.cycles_seconds:.0f} s")
    # Flat means: no more than a little noise, whatever the number of cycles. The bound grows
    # with the cycles (so a short run can still see a per-connection leak) from a noise floor
    # up to --cycle-growth-mb.
    allowed = min(args.cycle_growth_mb,
                  max(args.cycle_noise_kb / 1024, args.cycle_bytes * (done - warm) / 2**20))
    if growth > allowed:
        failures.append(f"RSS grew {growth:.2f} MiB over {done - warm} cycles after warm-up "
                        f"(bound {allowed:.2f} MiB)")
    return failures


ATTACKS = {
    "slots": (attack_slots, lambda a: a.slots + 1),
    "trickle": (attack_trickle, lambda a: a.trickle_peers + 5),
    "partial": (attack_partial, lambda a: a.partial_peers + 5),
    "spam": (attack_spam, lambda a: a.spam_peers + 5),
    "cycles": (attack_cycles, lambda a: 125),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", choices=["native", "wasm", "both"], default="native")
    parser.add_argument("--only", default="", help="comma-separated attacks")
    parser.add_argument("--full", action="store_true",
                        help="the issue's sizes: 100 trickling/spamming, 120 partial, "
                             "100,000 cycles, 60 s lockout window")
    parser.add_argument("--node-arg", action="append", default=[],
                        help="one more argument for every node started (repeatable)")
    parser.add_argument("--blocks", type=int, default=2000)
    parser.add_argument("--no-build", action="store_true")
    parser.add_argument("--sample-interval", type=float, default=0.2)
    g = parser.add_argument_group("sizes")
    g.add_argument("--slots", type=int, default=20)
    g.add_argument("--lockout-window", type=float, default=None,
                   help="how long the honest client keeps trying (quick 10 s, full 65 s)")
    g.add_argument("--trickle-peers", type=int, default=None)
    g.add_argument("--trickle-slack", type=float, default=5.0)
    g.add_argument("--partial-peers", type=int, default=120)
    g.add_argument("--partial-send-seconds", type=float, default=10.0)
    g.add_argument("--hold-seconds", type=float, default=3.0)
    g.add_argument("--spam-peers", type=int, default=None)
    g.add_argument("--spam-seconds", type=float, default=None)
    g.add_argument("--spam-rate", type=float, default=5.0,
                   help="ping+getheaders pairs a second per spammer (0: as fast as it goes)")
    g.add_argument("--cycles", type=int, default=None)
    g.add_argument("--cycles-seconds", type=float, default=None)
    g.add_argument("--parallel", type=int, default=50, help="cycles at once")
    t = parser.add_argument_group("bounds (the issue's deliver list)")
    t.add_argument("--honest-deadline", type=float, default=1.0,
                   help="an honest client served within this many seconds")
    t.add_argument("--message-deadline", type=float, default=10.0,
                   help="a message completes within this many seconds of its first byte")
    t.add_argument("--memory-budget-mb", type=float, default=64.0,
                   help="most the node's RSS may grow under attack, MiB")
    t.add_argument("--latency-median-ms", type=float, default=100.0)
    t.add_argument("--latency-max-ms", type=float, default=1000.0)
    t.add_argument("--log-rate", type=float, default=50.0, help="most node log lines a second")
    t.add_argument("--cycle-growth-mb", type=float, default=1.0,
                   help="most RSS growth over the cycles after warm-up, MiB")
    t.add_argument("--cycle-bytes", type=float, default=50.0,
                   help="... and at most this many bytes a cycle, above --cycle-noise-kb")
    t.add_argument("--cycle-noise-kb", type=float, default=256.0,
                   help="RSS growth taken for noise whatever the cycles, KiB")
    args = parser.parse_args()
    full = args.full
    defaults = {
        "lockout_window": (10.0, 65.0),
        "trickle_peers": (50, 100),
        "spam_peers": (100, 100),
        "spam_seconds": (15.0, 40.0),
        "cycles": (10000, 100000),
        "cycles_seconds": (60.0, 600.0),
    }
    for key, (quick, long) in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, long if full else quick)
    wanted = [a for a in args.only.split(",") if a] or list(ATTACKS)
    unknown = set(wanted) - set(ATTACKS)
    if unknown:
        print(f"unknown attacks: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    hosts = ["native", "wasm"] if args.host == "both" else [args.host]
    procs.install_cleanup()
    if not args.no_build:
        procs.build(hosts)
    workdir = procs.tempdir("attack-")
    bcoin = procs.Bcoin(args.blocks, workdir)
    procs.say(f"starting bcoin (regtest, {args.blocks} blocks)")
    procs.say(bcoin.start())
    results = []
    suite_started = time.monotonic()
    for host in hosts:
        for name in wanted:
            func, maxconn = ATTACKS[name]
            started = time.monotonic()
            figures = []
            try:
                # The node's message deadline is the one the suite checks (a --node-arg
                # given later wins).
                extra = ["--message-timeout", f"{args.message_deadline:g}"]
                attack = Attack(args, host, bcoin, workdir, name, maxconnections=maxconn(args),
                                extra=extra)
                figures = attack.figures
                failures = []
                try:
                    failures = func(args, attack)
                finally:
                    attack.finish(failures)
            except Fail as err:
                failures = [str(err)]
            except Exception as err:  # a broken harness step fails the attack, loudly
                failures = [f"harness error: {type(err).__name__}: {err}"]
            verdict = "FAIL" if failures else "PASS"
            took = time.monotonic() - started
            print(f"{verdict} {name} [{host}] ({took:.1f} s)" +
                  (": " + "; ".join(failures) if failures else ""), flush=True)
            for figure in figures:
                print(f"    {figure}", flush=True)
            results.append((verdict, name, host))
    passed = sum(1 for r in results if r[0] == "PASS")
    failing = ", ".join(f"{n}[{h}]" for v, n, h in results if v == "FAIL")
    if failing:
        print(f"failed: {failing}")
    # Figures that depend on the CPU the node gets (spam above all) need the machine's load.
    print(f"in {time.monotonic() - suite_started:.0f} s; load average (1, 5, 15 min) at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"attack-suite: {passed} passed, {len(results) - passed} failed")
    return 1 if passed < len(results) or not results else 0


if __name__ == "__main__":
    sys.exit(main())
