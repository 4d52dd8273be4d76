"""Self-test of scripts/fault-proxy.py: each fault against a scripted upstream on loopback,
judged byte for byte by the receiving side. A few seconds, no bcoin, no node.

    python3 scripts/harness/proxy_selftest.py    ends with `fault-proxy self-test: N passed, M failed`
"""

import os
import socket
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the worktree
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from harness import p2p, procs  # noqa: E402

MESSAGES = [p2p.frame("version", b"v" * 100), p2p.frame("headers", b"h" * 10000),
            p2p.frame("headers", b"x" * 10000)]
BLOB = b"".join(MESSAGES)
STARTS = [sum(len(m) for m in MESSAGES[:i]) for i in range(len(MESSAGES))]


class Upstream:
    """Sends BLOB to each connection, records what each sends it, holds it 3 s."""

    def __init__(self, blob=BLOB):
        self.blob = blob
        self.server = socket.create_server(("127.0.0.1", 0))
        self.received = []
        self.sent_at = []
        threading.Thread(target=self.serve, daemon=True).start()

    @property
    def addr(self):
        return self.server.getsockname()

    def serve(self):
        while True:
            conn, _ = self.server.accept()
            threading.Thread(target=self.one, args=(conn,), daemon=True).start()

    def one(self, conn):
        got = bytearray()
        self.received.append(got)
        self.sent_at.append(time.monotonic())
        try:
            conn.sendall(self.blob)
        except OSError:
            pass  # reset already: what arrived before the reset is still read below
        try:
            conn.settimeout(3)
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                got += data
        except OSError:
            pass
        conn.close()


def read_all(addr, limit=10.0, send=b""):
    """Connects, sends `send`, reads until EOF or error: (bytes, error, reads, times)."""
    sock = socket.create_connection(addr, timeout=limit)
    if send:
        sock.sendall(send)
    got, reads, times, error = b"", [], [], None
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                break
            got += data
            reads.append(len(data))
            times.append(time.monotonic())
    except OSError as err:
        error = err
    sock.close()
    return got, error, reads, times


def case(name, results, func):
    try:
        func()
        results.append(True)
        print(f"PASS {name}")
    except AssertionError as err:
        results.append(False)
        print(f"FAIL {name}: {err}")


def main():
    procs.install_cleanup()
    workdir = procs.tempdir("proxy-selftest-")
    up = Upstream()
    results = []

    def proxy(*args):
        return procs.Proxy(up.addr, workdir, args=list(args))

    def reset_inside_message():
        p = proxy("--fault", "action=reset cmd=headers nth=2 offset=half")
        got, err, _, _ = read_all(p.addr)
        want = STARTS[2] + 24 + 5000
        assert len(got) == want and got == BLOB[:want], f"{len(got)} bytes, wanted {want}"
        assert isinstance(err, ConnectionResetError), f"ended with {err!r}, not a reset"
        assert p.watch.wait_for(r"inside message 3 \(headers, 10024 bytes\) at byte 5024", 5)
        p.stop()

    def reset_after_bytes_one_by_one():
        # 3 ms between writes, so that the reader sees the pieces (a reader that falls behind
        # reads several at once: the bound is loose).
        p = proxy("--set", "split=bytes", "--set", "gap_ms=3", "--fault", "action=reset bytes=300")
        got, err, reads, _ = read_all(p.addr)
        assert got == BLOB[:300], f"{len(got)} bytes, wanted 300"
        assert isinstance(err, ConnectionResetError), f"ended with {err!r}"
        assert len(reads) > 30 and max(reads) < 100, \
            f"300 bytes one per write arrived in {len(reads)} reads, the largest {max(reads)}"
        p.stop()

    def close_is_fin():
        p = proxy("--fault", "action=close msg=2 offset=30")
        got, err, _, _ = read_all(p.addr)
        assert got == BLOB[:STARTS[1] + 30] and err is None, f"{len(got)} bytes, {err!r}"
        p.stop()

    def stall_then_resume():
        p = proxy("--fault", "action=stall bytes=100 seconds=1.0")
        got, err, reads, times = read_all(p.addr)
        assert got == BLOB and err is None, f"{len(got)} bytes, {err!r}"
        first = sum(1 for _ in reads)  # at least two reads: before and after the stall
        assert first >= 2 and times[-1] - times[0] >= 0.95, \
            f"the rest came {times[-1] - times[0]:.2f} s after the first bytes"
        p.stop()

    def latency():
        p = proxy("--set", "down.latency_ms=300")
        got, _, _, times = read_all(p.addr)
        delay = times[0] - up.sent_at[-1]
        assert got == BLOB and 0.29 <= delay < 2.0, f"first byte after {delay:.3f} s"
        p.stop()

    def seeded_splits():
        sizes = []
        for seed in (5, 5, 6):
            p = proxy("--seed", str(seed), "--set", "split=random", "--set", "split_max=40",
                      "--set", "gap_ms=30", "--set", "split_until=200",
                      "--fault", "action=close bytes=200")
            _, _, reads, _ = read_all(p.addr)
            sizes.append(reads)
            p.stop()
        assert sizes[0] == sizes[1], f"seed 5 gave {sizes[0]} then {sizes[1]}"
        assert sizes[0] != sizes[2], "seeds 5 and 6 split alike"
        assert sum(sizes[0]) == 200 and max(sizes[0]) <= 40, f"pieces {sizes[0]}"

    def upstream_direction():
        p = proxy("--fault", "action=reset dir=up cmd=ping offset=28")
        ping = p2p.frame("ping", p2p.ping_payload(7))
        before = len(up.received)
        read_all(p.addr, send=p2p.frame("verack") + ping)
        time.sleep(0.3)
        got = [bytes(r) for r in up.received[before:]]
        assert got == [p2p.frame("verack") + ping[:28]], f"upstream got {[len(g) for g in got]}"
        p.stop()

    def restart_refuses_then_accepts():
        p = proxy()
        sock = socket.create_connection(p.addr)
        time.sleep(0.2)
        p.command("restart seconds=1.5")
        time.sleep(0.3)
        try:
            socket.create_connection(p.addr, timeout=1).close()
            refused = False
        except ConnectionRefusedError:
            refused = True
        assert refused, "a connection was accepted while restarting"
        sock.settimeout(2)
        try:
            while sock.recv(65536):
                pass
            ended = "eof"
        except ConnectionResetError:
            ended = "reset"
        assert ended == "reset", f"the open connection ended with {ended}"
        assert p.watch.wait_for(r"accepting again", 5)
        got, _, _, _ = read_all(p.addr)
        assert got == BLOB, "nothing forwarded after the restart"
        p.stop()

    def stats_count_commands():
        p = proxy()
        read_all(p.addr)
        stats = p.stats()
        assert stats["commands"]["down"] == {"version": 1, "headers": 2}, stats["commands"]
        p.stop()

    def loopback_only():
        proc = subprocess.run([sys.executable, os.path.join(procs.REPO, "scripts",
                                                            "fault-proxy.py"),
                               "--upstream", "192.0.2.1:8333"], capture_output=True, timeout=20)
        assert proc.returncode != 0 and b"loopback only" in proc.stderr, proc.stderr

    for name, func in [
        ("reset inside the 2nd headers message, at its middle", reset_inside_message),
        ("reset after 300 bytes sent one per write", reset_after_bytes_one_by_one),
        ("close is a FIN at the exact byte", close_is_fin),
        ("a 1 s stall, then the rest intact", stall_then_resume),
        ("300 ms latency", latency),
        ("random splits: the same seed splits alike", seeded_splits),
        ("a reset in the client-to-upstream direction", upstream_direction),
        ("restart: open connections reset, new ones refused, then accepted",
         restart_refuses_then_accepts),
        ("stats count the commands each way", stats_count_commands),
        ("loopback addresses only", loopback_only),
    ]:
        case(name, results, func)
    passed = sum(results)
    print(f"fault-proxy self-test: {passed} passed, {len(results) - passed} failed")
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
