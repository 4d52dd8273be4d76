"""The soak (issue #22): our node (native, or in wasmtime) synced from bcoin serves, for a fixed
time, a steady churn of light clients that connect, sync and leave or are cut off mid-sync
(RST), plus clients that never read and clients that trickle; the light-client example
(`--clients N`) runs every so often too. The node's process is sampled every second for
resident memory and descriptors.

It asserts, per host:
* after warm-up, memory is flat: the median RSS over the run's last tenth is within
  --rss-growth-mb of the median over the tenth right after warm-up;
* descriptors: at most the baseline plus the clients open at once plus --fd-slack while it
  runs, and back to the baseline (within --fd-slack) once the clients are gone;
* every completed sync ended at bcoin's tip (RPC; with --mine-interval, at the tip of when
  it started or later), every header checked;
* good clients were answered: the 99th percentile of getheaders round trips within
  --latency-p99-ms while the bad clients were present;
* the node is alive at the end.

Run through scripts/soak.sh (`--help` for the options).
"""

import argparse
import os
import random
import statistics
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the worktree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import p2p, procs  # noqa: E402


class Soak:
    def __init__(self, args, host, bcoin, node):
        self.args = args
        self.host = host
        self.bcoin = bcoin
        self.node = node
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.rng = random.Random(args.seed)
        self.tips = [bcoin.tip()]  # every tip bcoin had during the run
        self.syncs = 0
        self.example_syncs = 0
        self.example_runs = 0
        self.wrong_tip = []
        self.cut_off = 0
        self.good_failures = []
        self.latencies = []
        self.never_read = 0
        self.never_read_dropped = 0
        self.tricklers = 0
        self.tricklers_dropped = 0
        self.open_clients = 0
        self.max_open = 0
        self.opened_at = []  # monotonic time of each connection opened

    def opened(self, n=1):
        with self.lock:
            self.opened_at.extend([time.monotonic()] * n)
            self.open_clients += n
            self.max_open = max(self.max_open, self.open_clients)

    def closed(self, n=1):
        with self.lock:
            self.open_clients -= n

    def tip_ok(self, height, tip, since):
        """Whether (height, tip) is a tip bcoin had at or after index `since` of self.tips.
        The miner appends a tip after its RPCs return, which can be after the node relayed
        the block and a client synced to it: a tip not listed yet counts when it is bcoin's
        block at that height and not below the tip when the sync started."""
        with self.lock:
            if any((int(h), t) == (height, tip) for h, t in self.tips[since:]):
                return True
            floor = int(self.tips[since][0])
        if height < floor:
            return False
        try:
            return self.bcoin.rpc("getblockhash", [height]) == tip
        except Exception:
            return False

    def good_client(self, worker):
        rng = random.Random(self.args.seed * 101 + worker)
        while not self.stop.is_set():
            with self.lock:
                since = len(self.tips) - 1
            cut = rng.random() < self.args.cutoff_fraction
            latencies = []
            self.opened()
            try:
                client = p2p.Client(self.node.addr, timeout=10)
                try:
                    deadline = time.monotonic() + 60
                    client.handshake(deadline)
                    if cut:
                        # Asks, reads part of the answer at most, and resets the connection.
                        client.send("getheaders",
                                    p2p.getheaders_payload([p2p.Chain().hashes[0]]))
                        time.sleep(rng.uniform(0, 0.05))
                        client.close(reset=True)
                        with self.lock:
                            self.cut_off += 1
                        continue
                    chain = client.sync(deadline, latencies=latencies)
                finally:
                    client.close()
                ok = self.tip_ok(chain.height, chain.tip_hex(), since)
                with self.lock:
                    self.syncs += 1
                    self.latencies.extend(latencies)
                    if not ok:
                        self.wrong_tip.append((chain.height, chain.tip_hex()))
            except Exception as err:  # every failure of a good client is a finding
                with self.lock:
                    self.good_failures.append(f"{type(err).__name__}: {err}")
            finally:
                self.closed()
            self.stop.wait(rng.uniform(0, self.args.good_pause))

    def never_reader(self, worker):
        """Handshakes, asks for far more headers than it will ever read, holds, leaves."""
        rng = random.Random(self.args.seed * 211 + worker)
        ask = p2p.frame("getheaders", p2p.getheaders_payload([p2p.Chain().hashes[0]]))
        while not self.stop.is_set():
            self.opened()
            try:
                peer = p2p.RawPeer(self.node.addr)
                try:
                    p2p.handshake_all([peer], time.monotonic() + 10)
                    peer.queue(ask * self.args.never_read_requests)
                    end = time.monotonic() + rng.uniform(5, 15)
                    while time.monotonic() < end and not peer.closed and not self.stop.is_set():
                        p2p.pump([peer], 0.5, read=False)
                    with self.lock:
                        self.never_read += 1
                        self.never_read_dropped += peer.closed
                finally:
                    peer.close(reset=True)
            except OSError:
                pass
            finally:
                self.closed()

    def trickler(self, worker):
        """Handshakes, then sends one message a byte a second; leaves after 5-20 s."""
        rng = random.Random(self.args.seed * 307 + worker)
        message = p2p.frame("getheaders", p2p.getheaders_payload([p2p.Chain().hashes[0]]))
        while not self.stop.is_set():
            self.opened()
            try:
                peer = p2p.RawPeer(self.node.addr)
                try:
                    p2p.handshake_all([peer], time.monotonic() + 10)
                    end = time.monotonic() + rng.uniform(5, 20)
                    sent = 0
                    while time.monotonic() < end and not peer.closed and not self.stop.is_set():
                        if sent < len(message) - 1:
                            peer.queue(message[sent:sent + 1])
                            sent += 1
                        p2p.pump([peer], 1.0, keep=False)
                    with self.lock:
                        self.tricklers += 1
                        self.tricklers_dropped += peer.closed
                finally:
                    peer.close()
            except OSError:
                pass
            finally:
                self.closed()

    def example_clients(self):
        """The light-client example, --clients N, every --example-every seconds."""
        while not self.stop.wait(self.args.example_every):
            with self.lock:
                since = len(self.tips) - 1
            count = self.args.example_clients
            self.opened(count)
            try:
                code, out, _ = procs.run_light_client(self.args.client_host, self.node.addr,
                                                      clients=count, timeout=120)
            finally:
                self.closed(count)
            got = procs.light_client_tip(out)
            with self.lock:
                self.example_runs += 1
            if code == 0 and got and self.tip_ok(got[0], got[1], since):
                with self.lock:
                    self.example_syncs += count
            elif code == 0 and got:
                with self.lock:
                    self.wrong_tip.append(got)
            else:
                last = (out.strip().splitlines() or ["no output"])[-1]
                with self.lock:
                    self.good_failures.append(f"light_client --clients {count}: exit {code}, "
                                              f"{last}")

    def miner(self):
        while not self.stop.wait(self.args.mine_interval):
            try:
                self.bcoin.mine(1)
                tip = self.bcoin.tip()
                with self.lock:
                    self.tips.append(tip)
            except Exception as err:
                with self.lock:
                    self.good_failures.append(f"mining: {err}")


def window_median(samples, start, end, column):
    values = [s[column] for s in samples if start <= s[0] <= end]
    return statistics.median(values) if values else None


def run_host(args, host, bcoin, workdir):
    node = procs.Node(host, workdir, connect=f"127.0.0.1:{bcoin.port}", maxconnections=125,
                      extra=args.node_arg, name="soak-node")
    failures = []
    figures = []
    try:
        node.wait_listening(60)
        want = bcoin.tip()
        end = time.monotonic() + 120
        while True:
            try:
                chain = p2p.sync_once(node.addr, time.monotonic() + 30)
                if (chain.height, chain.tip_hex()) == (int(want[0]), want[1]):
                    break
            except (OSError, p2p.PeerClosed, p2p.PeerTimeout, ValueError):
                pass
            if time.monotonic() > end or not node.alive():
                return [f"the node never reached bcoin's tip: {node.exit_reason()}"], figures
            time.sleep(0.2)
        time.sleep(0.5)
        base = procs.sample(node.pid)
        sampler = procs.Sampler(node.pid, 1.0)
        soak = Soak(args, host, bcoin, node)
        threads = []
        for i in range(args.good):
            threads.append(threading.Thread(target=soak.good_client, args=(i,), daemon=True))
        for i in range(args.never_read):
            threads.append(threading.Thread(target=soak.never_reader, args=(i,), daemon=True))
        for i in range(args.tricklers):
            threads.append(threading.Thread(target=soak.trickler, args=(i,), daemon=True))
        if args.example_every > 0:
            threads.append(threading.Thread(target=soak.example_clients, daemon=True))
        if args.mine_interval > 0:
            threads.append(threading.Thread(target=soak.miner, daemon=True))
        started = time.monotonic()
        cpu_start = procs.cpu_seconds(node.pid)
        for thread in threads:
            thread.start()
        duration = args.duration
        warmup = args.warmup if args.warmup is not None else max(30.0, duration * 0.2)
        report_every = max(30.0, duration / 10)
        next_report = started + report_every
        while time.monotonic() - started < duration:
            time.sleep(1.0)
            if not node.alive():
                failures.append(f"the node died: {node.exit_reason()}")
                break
            if time.monotonic() >= next_report:
                next_report += report_every
                last = sampler.last()
                with soak.lock:
                    print(f"    [{host} {time.monotonic() - started:6.0f} s] RSS "
                          f"{last[1] / 1024:.1f} MiB, fds {last[2]}, syncs {soak.syncs}+"
                          f"{soak.example_syncs}, cut {soak.cut_off}, never-read "
                          f"{soak.never_read}, tricklers {soak.tricklers}", flush=True)
        soak.stop.set()
        cpu_end = procs.cpu_seconds(node.pid)
        cpu_span = time.monotonic() - started
        for thread in threads:
            thread.join(130)
        ended = time.monotonic()
        # Quiet: the clients are gone; the node's descriptors must come back.
        quiet_fds = None
        quiet_end = time.monotonic() + 15
        while time.monotonic() < quiet_end:
            now = procs.sample(node.pid)
            if now is None:
                break
            quiet_fds = now[1]
            if quiet_fds <= base[1] + args.fd_slack:
                break
            time.sleep(0.5)
        sampler.stop()
        samples = sampler.between(started)
        span = ended - started
        after_warm = started + warmup
        tenth = max(5.0, (span - warmup) / 10)
        rss_warm = window_median(samples, after_warm, after_warm + tenth, 1)
        rss_end = window_median(samples, ended - tenth, ended, 1)
        fds_warm = window_median(samples, after_warm, after_warm + tenth, 2)
        fds_end = window_median(samples, ended - tenth, ended, 2)
        peak_rss = max(s[1] for s in samples)
        conns_after_warm = sum(1 for t in soak.opened_at if t >= after_warm)
        peak_fds = max(s[2] for s in samples)
        lat = sorted(soak.latencies)

        def pct(p):
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

        # RSS over the run after warm-up, a tenth at a time: (lowest, median) MiB of each.
        tenths = []
        for i in range(10):
            window = [s[1] for s in samples
                      if after_warm + i * tenth <= s[0] <= after_warm + (i + 1) * tenth]
            if window:
                tenths.append(f"{min(window) / 1024:.1f}/{statistics.median(window) / 1024:.1f}")
        figures += [
            f"RSS after warm-up by tenths (lowest/median MiB): {' '.join(tenths)}",
            f"{span:.0f} s, warm-up {warmup:.0f} s: {soak.syncs} syncs by the harness's clients "
            f"+ {soak.example_syncs} by light_client --clients {args.example_clients} "
            f"({soak.example_runs} runs), {soak.cut_off} cut off mid-sync, "
            f"{soak.never_read} never-read clients ({soak.never_read_dropped} dropped by the "
            f"node), {soak.tricklers} tricklers ({soak.tricklers_dropped} dropped by the node)",
            f"RSS start {base[0] / 1024:.1f} MiB, after warm-up {rss_warm / 1024:.1f}, end "
            f"{rss_end / 1024:.1f}, peak {peak_rss / 1024:.1f} MiB",
            f"fds start {base[1]}, after warm-up {fds_warm:.0f}, end {fds_end:.0f}, peak "
            f"{peak_fds}, after the clients left {quiet_fds} (most clients open at once "
            f"{soak.max_open})",
            f"RSS slope after warm-up {(rss_end - rss_warm) * 60 / max(1.0, span - warmup):.0f}"
            f" KiB a minute, {(rss_end - rss_warm) * 1024 / max(1, conns_after_warm):.0f} B per "
            f"connection opened after warm-up ({conns_after_warm})",
            f"good getheaders round trips: {len(lat)}, median {pct(0.5):.0f} ms, p99 "
            f"{pct(0.99):.0f} ms, max {pct(1.0):.0f} ms",
            f"the node's CPU: {cpu_end - cpu_start:.0f} s in {cpu_span:.0f} s "
            f"({100 * (cpu_end - cpu_start) / cpu_span:.0f}% of one core; load average "
            f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)"
            if cpu_start is not None and cpu_end is not None else "the node's CPU: not read",
        ]
        growth = (rss_end - rss_warm) / 1024
        if growth > args.rss_growth_mb:
            failures.append(f"RSS grew {growth:.1f} MiB after warm-up (bound "
                            f"{args.rss_growth_mb} MiB)")
        if peak_fds > base[1] + soak.max_open + args.fd_slack:
            failures.append(f"descriptors peaked at {peak_fds} with at most {soak.max_open} "
                            f"clients open (baseline {base[1]})")
        if quiet_fds is None or quiet_fds > base[1] + args.fd_slack:
            failures.append(f"descriptors {quiet_fds} after the clients left, {base[1]} before")
        if soak.wrong_tip:
            failures.append(f"{len(soak.wrong_tip)} syncs ended off bcoin's tip, e.g. height "
                            f"{soak.wrong_tip[0][0]}")
        if soak.syncs == 0:
            failures.append("no sync completed")
        if soak.good_failures:
            failures.append(f"{len(soak.good_failures)} good clients failed, e.g. "
                            f"{soak.good_failures[0]}")
        if lat and pct(0.99) > args.latency_p99_ms:
            failures.append(f"good clients' p99 {pct(0.99):.0f} ms > {args.latency_p99_ms} ms")
        if not node.alive():
            failures.append(f"the node is gone: {node.exit_reason()}")
        return failures, figures
    finally:
        node.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", choices=["native", "wasm", "both"], default="native")
    parser.add_argument("--client-host", choices=["native", "wasm"], default="native",
                        help="where the light-client example runs")
    parser.add_argument("--duration", type=float, default=180.0,
                        help="seconds per host (default 180)")
    parser.add_argument("--hours", type=float, default=None, help="the long soak: hours per host")
    parser.add_argument("--warmup", type=float, default=None,
                        help="seconds before flatness is judged (default 20%%, at least 30)")
    parser.add_argument("--blocks", type=int, default=2100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--node-arg", action="append", default=[])
    parser.add_argument("--no-build", action="store_true")
    c = parser.add_argument_group("the churn")
    c.add_argument("--good", type=int, default=4, help="good clients syncing in a loop")
    c.add_argument("--good-pause", type=float, default=0.2,
                   help="most seconds a good client waits before its next connection")
    c.add_argument("--cutoff-fraction", type=float, default=0.2,
                   help="share of good connections reset right after asking")
    c.add_argument("--never-read", type=int, default=3, help="never-reading clients at once")
    c.add_argument("--never-read-requests", type=int, default=40,
                   help="getheaders each never-reading client sends (each answer 162 kB)")
    c.add_argument("--tricklers", type=int, default=3, help="trickling clients at once")
    c.add_argument("--example-every", type=float, default=30.0,
                   help="seconds between runs of light_client --clients N (0: never)")
    c.add_argument("--example-clients", type=int, default=10)
    c.add_argument("--mine-interval", type=float, default=0.0,
                   help="bcoin mines a block every this many seconds (0: never); the syncs "
                        "must then follow the tip")
    b = parser.add_argument_group("bounds")
    b.add_argument("--rss-growth-mb", type=float, default=2.0,
                   help="most RSS growth from after warm-up to the end, MiB")
    b.add_argument("--fd-slack", type=int, default=4)
    b.add_argument("--latency-p99-ms", type=float, default=1000.0)
    args = parser.parse_args()
    if args.hours:
        args.duration = args.hours * 3600
    hosts = ["native", "wasm"] if args.host == "both" else [args.host]
    procs.install_cleanup()
    if not args.no_build:
        procs.build(sorted(set(hosts + [args.client_host])))
    workdir = procs.tempdir("soak-")
    bcoin = procs.Bcoin(args.blocks, workdir)
    procs.say(f"starting bcoin (regtest, {args.blocks} blocks)")
    procs.say(bcoin.start())
    results = []
    for host in hosts:
        procs.say(f"soak, our node {host}, {args.duration:.0f} s")
        try:
            failures, figures = run_host(args, host, bcoin, workdir)
        except Exception as err:  # a broken harness step fails the soak, loudly
            failures, figures = [f"harness error: {type(err).__name__}: {err}"], []
        verdict = "FAIL" if failures else "PASS"
        print(f"{verdict} soak [{host}]" + (": " + "; ".join(failures) if failures else ""),
              flush=True)
        for figure in figures:
            print(f"    {figure}", flush=True)
        results.append(verdict)
    passed = results.count("PASS")
    print(f"load average (1, 5, 15 min) at the end "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    print(f"soak: {passed} passed, {len(results) - passed} failed")
    return 1 if passed < len(results) else 0


if __name__ == "__main__":
    sys.exit(main())
