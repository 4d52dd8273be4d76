#!/usr/bin/env python3
"""A fault-injecting TCP proxy for Bitcoin P2P on loopback.

Placed between our node and bcoin, or between light clients and our node, it forwards each
accepted connection to the upstream and can, per direction ("up": client to upstream, "down":
upstream to client):

* add latency (and seeded jitter) to every chunk, without limiting throughput;
* deliver the bytes one per write, or in seeded random splits (reproducible with --seed);
* stall (forward nothing) for a given time, longer than a peer's deadline;
* reset (SO_LINGER 0, so the peers see RST) or close (FIN) after N bytes, or inside the Nth
  P2P message or the Nth message with a given command (it parses the 24-byte headers);
* play the upstream restarting: reset every connection and refuse new ones for T seconds.

Why not an existing tool: toxiproxy is not in Debian bookworm (nor on crates.io, PyPI or npm
as a server: PyPI and npm carry only its clients), tc-netem needs CAP_NET_ADMIN and a qdisc on
`lo`, and neither knows P2P message boundaries. This needs only Python 3's standard library.

Usage:

    fault-proxy.py --listen 127.0.0.1:0 --upstream 127.0.0.1:18444 [--control 127.0.0.1:0]
                   [--seed N] [--set KEY=VALUE]... [--fault SPEC]... [--max-runtime S]

Settings (`--set`, or `set` on the control socket; a `up.`/`down.` prefix sets one direction):
    latency_ms=N   jitter_ms=N   split=none|bytes|random   split_max=N   gap_ms=N
    split_until=N  (split only the first N bytes of each connection's direction; 0: all)

A fault (`--fault "KEY=VALUE ..."`, or `fault KEY=VALUE ...` on the control socket) fires once:
    action=reset|close|stall|restart  dir=up|down (default down)
    trigger: bytes=N | msg=N | cmd=NAME [nth=K]   offset=N|half|end (into that message;
                                                  default half)
    seconds=S  (stall: how long, default until the connection ends; restart: refusing time)
    conn=N|any|every  (the Nth accepted connection, the first that reaches the trigger
                      (default), or each connection once)
    then=resume|reset (after a stall; default resume)

Control socket: one command a line, one JSON answer a line:
    set K=V ... | fault K=V ... | clear | restart seconds=T | reset-all | stats | quit

The first line printed is `fault-proxy NAME: listening on ADDR, upstream ADDR, control ADDR`;
each fired fault prints one line. Loopback only; every loop ends by itself (--max-runtime,
default 3600 s, bounds the whole process and every stall).
"""

import argparse
import asyncio
import fcntl
import ipaddress
import json
import random
import socket
import struct
import sys
import termios
import time

HEADER_LEN = 24
DEFAULTS = {
    "latency_ms": 0.0,
    "jitter_ms": 0.0,
    "split": "none",
    "split_max": 64,
    "gap_ms": 0.0,
    "split_until": 0,
}
DIRECTIONS = ("up", "down")


def loopback_addr(text, what):
    host, _, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        if not ipaddress.ip_address(host).is_loopback:
            raise ValueError
    except ValueError:
        sys.exit(f"fault-proxy: {what} {text!r} is not a loopback address (loopback only)")
    return host, int(port)


def parse_pairs(words):
    pairs = {}
    for word in words:
        key, sep, value = word.partition("=")
        if not sep:
            raise ValueError(f"{word!r} is not KEY=VALUE")
        pairs[key] = value
    return pairs


class MessageParser:
    """Where each P2P message of one direction starts, its command and length, and the first
    bytes of its payload (enough for a headers count or a getheaders locator)."""

    KEEP = 4 + 9 + 32

    def __init__(self):
        self.pos = 0  # bytes seen
        self.partial = bytearray()  # the current message's header, while incomplete
        self.payload_left = 0
        self.messages = []  # dicts: index, start, command, length, head
        self.valid = True

    def feed(self, data):
        view = memoryview(data)
        while view and self.valid:
            if self.payload_left:
                take = min(self.payload_left, len(view))
                current = self.messages[-1]
                room = self.KEEP - len(current["head"])
                if room > 0:
                    current["head"] += bytes(view[: min(room, take)])
                self.payload_left -= take
                self.pos += take
                view = view[take:]
                continue
            take = min(HEADER_LEN - len(self.partial), len(view))
            self.partial += view[:take]
            self.pos += take
            view = view[take:]
            if len(self.partial) == HEADER_LEN:
                command = self.partial[4:16].rstrip(b"\0").decode("ascii", "replace")
                (length,) = struct.unpack("<I", self.partial[16:20])
                if length > 32 * 1024 * 1024:
                    self.valid = False  # not P2P: stop parsing, keep forwarding
                self.messages.append({
                    "index": len(self.messages) + 1,
                    "start": self.pos - HEADER_LEN,
                    "command": command,
                    "length": length,
                    "head": b"",
                })
                self.partial.clear()
                self.payload_left = length


class Fault:
    def __init__(self, spec, fault_id):
        self.id = fault_id
        self.spec = dict(spec)
        self.action = spec.get("action", "reset")
        if self.action not in ("reset", "close", "stall", "restart"):
            raise ValueError(f"unknown action {self.action!r}")
        self.dir = spec.get("dir", "down")
        if self.dir not in DIRECTIONS:
            raise ValueError(f"dir must be up or down, not {self.dir!r}")
        self.bytes = int(spec["bytes"]) if "bytes" in spec else None
        self.msg = int(spec["msg"]) if "msg" in spec else None
        self.cmd = spec.get("cmd")
        self.nth = int(spec.get("nth", 1))
        self.offset = spec.get("offset", "half")
        if self.bytes is None and self.msg is None and self.cmd is None:
            self.bytes = 0
        self.seconds = float(spec["seconds"]) if "seconds" in spec else None
        self.conn = spec.get("conn", "any")
        self.then = spec.get("then", "resume")
        self.fired_on = set()  # connection ids
        self.done = False

    def applies_to(self, conn_id):
        if self.done:
            return False
        if self.conn == "every":
            return conn_id not in self.fired_on
        if self.conn == "any":
            return True
        return str(conn_id) == self.conn

    def trigger_point(self, parser):
        """Stream offset at which this fault fires, or None while not yet known."""
        if self.bytes is not None:
            return self.bytes
        if self.msg is not None:
            matches = [m for m in parser.messages if m["index"] == self.msg]
        else:
            matches = [m for m in parser.messages if m["command"] == self.cmd]
            matches = matches[self.nth - 1 : self.nth]
        if not matches:
            return None
        message = matches[0]
        total = HEADER_LEN + message["length"]
        if self.offset == "half":
            into = HEADER_LEN + message["length"] // 2
        elif self.offset == "end":
            into = total
        else:
            into = min(int(self.offset), total)
        return message["start"] + into

    def describe(self, parser, point):
        where = f"after {point} bytes"
        for message in parser.messages:
            if message["start"] <= point < message["start"] + HEADER_LEN + message["length"]:
                where += (f", inside message {message['index']} ({message['command']}, "
                          f"{HEADER_LEN + message['length']} bytes) at byte "
                          f"{point - message['start']}")
                break
        return where


class Proxy:
    def __init__(self, args):
        self.args = args
        self.listen = args.listen
        self.upstream = args.upstream
        self.settings = {d: dict(DEFAULTS) for d in DIRECTIONS}
        self.faults = []
        self.next_fault = 1
        self.conns = {}
        self.accepted = 0
        self.refused = 0
        self.events = []
        self.server = None
        self.refusing_until = 0.0
        self.started = time.monotonic()
        self.closed_stats = {"up": {}, "down": {}}
        self.stopping = asyncio.Event()
        for pair in args.set:
            self.apply_settings(parse_pairs(pair.split()))
        for spec in args.fault:
            self.add_fault(parse_pairs(spec.split()))

    def log(self, line):
        stamp = time.monotonic() - self.started
        self.events.append({"t": round(stamp, 3), "event": line})
        del self.events[:-1000]
        print(f"fault-proxy {self.args.name}: [{stamp:8.3f}] {line}", flush=True)

    def apply_settings(self, pairs):
        for key, value in pairs.items():
            dirs, _, name = key.rpartition(".")
            targets = DIRECTIONS if not dirs else (dirs,)
            if name not in DEFAULTS or any(d not in DIRECTIONS for d in targets):
                raise ValueError(f"unknown setting {key!r}")
            if name == "split" and value not in ("none", "bytes", "random"):
                raise ValueError(f"split must be none, bytes or random, not {value!r}")
            for direction in targets:
                kind = type(DEFAULTS[name])
                self.settings[direction][name] = kind(value)

    def add_fault(self, spec):
        fault = Fault(spec, self.next_fault)
        self.next_fault += 1
        self.faults.append(fault)
        return fault.id

    async def start_listening(self):
        self.server = await asyncio.start_server(
            self.on_accept, self.listen[0], self.listen[1], reuse_address=True
        )
        port = self.server.sockets[0].getsockname()[1]
        self.listen = (self.listen[0], port)

    async def restart(self, seconds):
        """The upstream going away: every connection reset, new ones refused for `seconds`."""
        self.log(f"restart: resetting {len(self.conns)} connections, refusing for {seconds} s")
        for conn in list(self.conns.values()):
            conn.abort("restart")
        if self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        self.refusing_until = time.monotonic() + seconds
        await asyncio.sleep(seconds)
        for _ in range(50):
            try:
                await self.start_listening()
                self.log("restart: accepting again")
                return
            except OSError as err:
                problem = err
                await asyncio.sleep(0.1)
        self.log(f"restart: cannot listen again ({problem}); exiting")
        self.stopping.set()

    async def on_accept(self, reader, writer):
        self.accepted += 1
        conn = Connection(self, self.accepted, reader, writer)
        self.conns[conn.id] = conn
        try:
            await conn.run()
        finally:
            self.conns.pop(conn.id, None)
            for direction in DIRECTIONS:
                for command, count in conn.pipes_commands(direction).items():
                    totals = self.closed_stats[direction]
                    totals[command] = totals.get(command, 0) + count

    def stats(self):
        conns = []
        for conn in self.conns.values():
            conns.append(conn.stats())
        totals = {d: dict(self.closed_stats[d]) for d in DIRECTIONS}
        for conn in self.conns.values():
            for direction in DIRECTIONS:
                for command, count in conn.pipes_commands(direction).items():
                    totals[direction][command] = totals[direction].get(command, 0) + count
        return {
            "ok": True,
            "accepted": self.accepted,
            "active": len(self.conns),
            "connections": conns,
            "commands": totals,
            "faults_pending": [f.spec for f in self.faults if not f.done],
            "events": self.events[-200:],
            "settings": self.settings,
        }

    async def on_control(self, reader, writer):
        try:
            line = await asyncio.wait_for(reader.readline(), 10)
            words = line.decode().split()
            answer = await self.control(words)
        except Exception as err:  # a bad command is answered, never fatal
            answer = {"ok": False, "error": str(err)}
        writer.write(json.dumps(answer).encode() + b"\n")
        try:
            await writer.drain()
            writer.close()
        except OSError:
            pass

    async def control(self, words):
        if not words:
            raise ValueError("empty command")
        verb, pairs = words[0], parse_pairs(words[1:])
        if verb == "set":
            self.apply_settings(pairs)
            return {"ok": True, "settings": self.settings}
        if verb == "fault":
            return {"ok": True, "fault": self.add_fault(pairs)}
        if verb == "clear":
            self.faults.clear()
            self.settings = {d: dict(DEFAULTS) for d in DIRECTIONS}
            return {"ok": True}
        if verb == "restart":
            asyncio.get_running_loop().create_task(self.restart(float(pairs.get("seconds", 0))))
            return {"ok": True}
        if verb == "reset-all":
            for conn in list(self.conns.values()):
                conn.abort("reset-all")
            return {"ok": True}
        if verb == "stats":
            return self.stats()
        if verb == "quit":
            self.stopping.set()
            return {"ok": True}
        raise ValueError(f"unknown command {verb!r}")

    async def main(self):
        await self.start_listening()
        control_text = "none"
        if self.args.control:
            control = await asyncio.start_server(self.on_control, *self.args.control)
            control_text = "%s:%d" % control.sockets[0].getsockname()[:2]
        print(
            f"fault-proxy {self.args.name}: listening on {self.listen[0]}:{self.listen[1]}, "
            f"upstream {self.upstream[0]}:{self.upstream[1]}, control {control_text}",
            flush=True,
        )
        try:
            await asyncio.wait_for(self.stopping.wait(), self.args.max_runtime)
        except asyncio.TimeoutError:
            self.log(f"--max-runtime {self.args.max_runtime} s reached, exiting")
        for conn in list(self.conns.values()):
            conn.abort("exit")


def read_varint(data, pos):
    if pos >= len(data):
        return None, pos
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    if len(data) < pos + 1 + size:
        return None, pos
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def locator_start(head):
    """The first locator hash of a getheaders payload (RPC byte order), or None."""
    count, pos = read_varint(head, 4)
    if not count or len(head) < pos + 32:
        return None
    return head[pos : pos + 32][::-1].hex()


def headers_count(head):
    return read_varint(head, 0)[0]


def set_linger_zero(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass


def unsent_bytes(writer):
    """Bytes the kernel has not yet sent on this socket (TIOCOUTQ), 0 if unknown."""
    sock = writer.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
    except OSError:
        return 0


class Connection:
    def __init__(self, proxy, conn_id, reader, writer):
        self.proxy = proxy
        self.id = conn_id
        self.client = (reader, writer)
        self.upstream = None
        self.pipes = {}
        self.aborted = False
        self.tasks = []

    def pipes_commands(self, direction):
        pipe = self.pipes.get(direction)
        if not pipe:
            return {}
        counts = {}
        for message in pipe.parser.messages:
            counts[message["command"]] = counts.get(message["command"], 0) + 1
        return counts

    def stats(self):
        out = {"id": self.id}
        for direction, pipe in self.pipes.items():
            out[direction] = {
                "bytes": pipe.forwarded,
                "commands": self.pipes_commands(direction),
                "getheaders_from": [locator_start(m["head"]) for m in pipe.parser.messages
                                    if m["command"] == "getheaders"],
                "headers_counts": [headers_count(m["head"]) for m in pipe.parser.messages
                                   if m["command"] == "headers"],
            }
        return out

    def abort(self, why):
        """Resets both sides (RST)."""
        if self.aborted:
            return
        self.aborted = True
        for _, writer in filter(None, (self.client, self.upstream)):
            set_linger_zero(writer)
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()

    def close_both(self):
        """Closes both sides (FIN)."""
        if self.aborted:
            return
        self.aborted = True
        for _, writer in filter(None, (self.client, self.upstream)):
            writer.close()
        for task in self.tasks:
            task.cancel()

    async def run(self):
        _, client_writer = self.client
        client_writer.get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.upstream = await asyncio.wait_for(
                asyncio.open_connection(*self.proxy.upstream), 10)
        except (OSError, asyncio.TimeoutError) as err:
            self.proxy.log(f"conn {self.id}: upstream unreachable ({err}); resetting the client")
            set_linger_zero(client_writer)
            client_writer.transport.abort()
            return
        self.upstream[1].get_extra_info("socket").setsockopt(
            socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        seed = self.proxy.args.seed * 1_000_003 + self.id
        self.pipes["up"] = Pipe(self, "up", self.client[0], self.upstream[1], seed * 2)
        self.pipes["down"] = Pipe(self, "down", self.upstream[0], client_writer, seed * 2 + 1)
        self.tasks = [asyncio.ensure_future(p.run()) for p in self.pipes.values()]
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for _, writer in (self.client, self.upstream):
            try:
                writer.close()
            except OSError:
                pass


class Pipe:
    """One direction: a reader that timestamps chunks, a writer that delays, splits and
    injects the faults."""

    def __init__(self, conn, direction, reader, writer, seed):
        self.conn = conn
        self.proxy = conn.proxy
        self.direction = direction
        self.reader = reader
        self.writer = writer
        self.rng = random.Random(seed)
        self.parser = MessageParser()
        self.forwarded = 0
        self.queue = asyncio.Queue(maxsize=256)
        self.last_due = 0.0

    @property
    def settings(self):
        return self.proxy.settings[self.direction]

    async def run(self):
        writer_task = asyncio.ensure_future(self.write_loop())
        try:
            while True:
                try:
                    data = await self.reader.read(1 << 16)
                except (OSError, asyncio.IncompleteReadError):
                    data = b""
                now = time.monotonic()
                if data:
                    self.parser.feed(data)
                await self.queue.put((now, data))
                if not data:
                    break
            await writer_task
        finally:
            writer_task.cancel()

    def due(self, arrived):
        settings = self.settings
        delay = settings["latency_ms"] / 1000
        if settings["jitter_ms"]:
            delay += self.rng.uniform(0, settings["jitter_ms"] / 1000)
        # Bytes keep their order: a chunk is never due before the one ahead of it.
        self.last_due = max(self.last_due, arrived + delay)
        return self.last_due

    async def write_loop(self):
        while True:
            arrived, data = await self.queue.get()
            wait = self.due(arrived) - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                # The sender's FIN, passed on once everything before it is written.
                try:
                    await self.writer.drain()
                    if self.writer.can_write_eof():
                        self.writer.write_eof()
                except OSError:
                    pass
                return
            if not await self.forward(data):
                return

    def next_fault(self, end):
        """The earliest fault of this direction firing at or before stream offset `end`."""
        best = None
        for fault in self.proxy.faults:
            if fault.dir != self.direction or not fault.applies_to(self.conn.id):
                continue
            point = fault.trigger_point(self.parser)
            if point is None or point > end:
                continue
            point = max(point, self.forwarded)
            if best is None or point < best[0]:
                best = (point, fault)
        return best

    async def forward(self, data):
        """Writes `data` with faults; False once the connection is gone."""
        view = memoryview(data)
        while view:
            hit = self.next_fault(self.forwarded + len(view))
            if hit is None:
                await self.write_split(view)
                return not self.conn.aborted
            point, fault = hit
            before = point - self.forwarded
            if before:
                await self.write_split(view[:before])
                view = view[before:]
            if not await self.fire(fault, point):
                return False
        return not self.conn.aborted

    async def write_split(self, view):
        settings = self.settings
        mode = settings["split"]
        if settings["split_until"] and self.forwarded >= settings["split_until"]:
            mode = "none"
        gap = settings["gap_ms"] / 1000
        pieces = 0
        while view:
            if self.conn.aborted:
                return
            if mode == "none":
                size = len(view)
            elif mode == "bytes":
                size = 1
            else:
                size = self.rng.randint(1, max(1, settings["split_max"]))
            if settings["split_until"] and mode != "none":
                size = min(size, max(1, settings["split_until"] - self.forwarded))
            piece = view[:size]
            view = view[size:]
            try:
                # With nothing buffered, write() sends at once: one send(2), one segment
                # (TCP_NODELAY), per piece. Wait only when the kernel's buffer is full.
                self.writer.write(bytes(piece))
                if self.writer.transport.get_write_buffer_size():
                    await self.writer.drain()
            except (OSError, RuntimeError):
                self.conn.abort("write failed")
                return
            self.forwarded += len(piece)
            pieces += 1
            if mode != "none":
                if gap:
                    await asyncio.sleep(gap)
                elif pieces % 256 == 0:
                    await asyncio.sleep(0)  # let the other connections run
                if settings["split_until"] and self.forwarded >= settings["split_until"]:
                    mode = "none"
        try:
            await self.writer.drain()
        except (OSError, RuntimeError):
            self.conn.abort("write failed")

    async def wait_sent(self, limit=2.0):
        """Until the kernel has sent what was written (so a reset lands where it is meant
        to), or `limit` seconds for a receiver that does not read."""
        end = time.monotonic() + limit
        while unsent_bytes(self.writer) and time.monotonic() < end:
            await asyncio.sleep(0.005)

    async def fire(self, fault, point):
        """Carries out `fault` at stream offset `point`; False if the connection ended."""
        fault.fired_on.add(self.conn.id)
        if fault.conn != "every":
            fault.done = True
        where = fault.describe(self.parser, point)
        name = f"conn {self.conn.id} {self.direction}"
        try:
            await self.writer.drain()
        except OSError:
            pass
        if fault.action == "reset":
            await self.wait_sent()
            self.proxy.log(f"{name}: reset (SO_LINGER 0) {where}")
            self.conn.abort("fault")
            return False
        if fault.action == "close":
            await self.wait_sent()
            self.proxy.log(f"{name}: close (FIN) {where}")
            self.conn.close_both()
            return False
        if fault.action == "restart":
            await self.wait_sent()
            self.proxy.log(f"{name}: upstream restart {where}")
            asyncio.get_running_loop().create_task(self.proxy.restart(fault.seconds or 0.0))
            return False
        # stall
        limit = fault.seconds if fault.seconds is not None else self.proxy.args.max_runtime
        self.proxy.log(f"{name}: stall for {fault.seconds or 'ever'} s {where}")
        end = time.monotonic() + limit
        while time.monotonic() < end and not self.conn.aborted:
            await asyncio.sleep(min(0.1, max(0.0, end - time.monotonic())))
        if self.conn.aborted:
            self.proxy.log(f"{name}: the connection ended during the stall")
            return False
        if fault.then == "reset":
            self.proxy.log(f"{name}: reset after the stall")
            self.conn.abort("fault")
            return False
        self.proxy.log(f"{name}: stall over, forwarding again")
        return True


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="127.0.0.1:0")
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--control", default=None, help="ADDR:PORT of the control socket")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE ...")
    parser.add_argument("--fault", action="append", default=[], metavar="'KEY=VALUE ...'")
    parser.add_argument("--max-runtime", type=float, default=3600.0)
    parser.add_argument("--name", default="proxy")
    args = parser.parse_args()
    args.listen = loopback_addr(args.listen, "--listen")
    args.upstream = loopback_addr(args.upstream, "--upstream")
    if args.control:
        args.control = loopback_addr(args.control, "--control")
    try:
        proxy = Proxy(args)
    except ValueError as err:
        sys.exit(f"fault-proxy: {err}")
    asyncio.run(proxy.main())


if __name__ == "__main__":
    main()
