"""Bitcoin P2P from outside the node: framing (the 24-byte header, sha256d checksums), the
messages a headers-only peer uses, a header chain checked link by link and for its proof of
work, and a blocking client with deadlines. Standard library only.

Used by the scenario runner, the attack suite and the soak to drive and judge the example node
through its socket, so the judge is not the code under test.
"""

import hashlib
import os
import random
import select
import socket
import struct
import time

REGTEST_MAGIC = bytes.fromhex("fabfb5da")
REGTEST_GENESIS = bytes.fromhex(
    "0100000000000000000000000000000000000000000000000000000000000000000000003ba3edfd7a7b12b27ac72c3e"
    "67768f617fc81bc3888a51323a9fb8aa4b1e5e4adae5494dffff7f2002000000"
)
# Regtest never retargets: every header carries the proof-of-work limit's nBits.
REGTEST_BITS = 0x207FFFFF
HEADER_LEN = 24
MAX_HEADERS = 2000
MAX_PAYLOAD = 4_000_000
PROTOCOL_VERSION = 70016
ZERO_HASH = bytes(32)


def sha256d(data):
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def hash_hex(block_hash):
    """The RPC form of a hash: bytes reversed, hex."""
    return block_hash[::-1].hex()


def frame(command, payload=b"", magic=REGTEST_MAGIC):
    name = command.encode()
    if len(name) > 12:
        raise ValueError(f"command {command!r} longer than 12 bytes")
    return (
        magic
        + name.ljust(12, b"\0")
        + struct.pack("<I", len(payload))
        + sha256d(payload)[:4]
        + payload
    )


def parse_header(header, magic=REGTEST_MAGIC):
    """(command, length, checksum) of a 24-byte message header; ValueError if malformed."""
    if header[:4] != magic:
        raise ValueError(f"bad magic {header[:4].hex()}")
    command = header[4:16].rstrip(b"\0").decode("ascii", "replace")
    (length,) = struct.unpack("<I", header[16:20])
    if length > MAX_PAYLOAD:
        raise ValueError(f"payload of {length} bytes announced")
    return command, length, header[20:24]


def varint(n):
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + struct.pack("<H", n)
    if n <= 0xFFFFFFFF:
        return b"\xfe" + struct.pack("<I", n)
    return b"\xff" + struct.pack("<Q", n)


def read_varint(data, pos):
    first = data[pos]
    if first < 0xFD:
        return first, pos + 1
    size = {0xFD: 2, 0xFE: 4, 0xFF: 8}[first]
    if len(data) < pos + 1 + size:
        raise ValueError("truncated varint")
    return int.from_bytes(data[pos + 1 : pos + 1 + size], "little"), pos + 1 + size


def net_addr(host="127.0.0.1", port=0):
    ip = bytes(10) + b"\xff\xff" + socket.inet_aton(host)
    return struct.pack("<Q", 0) + ip + struct.pack(">H", port)


def version_payload(nonce=None, user_agent="/harness:0.1/", start_height=0, relay=False):
    if nonce is None:
        nonce = random.getrandbits(64)
    agent = user_agent.encode()
    return (
        struct.pack("<iQq", PROTOCOL_VERSION, 0, int(time.time()))
        + net_addr()
        + net_addr()
        + struct.pack("<Q", nonce)
        + varint(len(agent))
        + agent
        + struct.pack("<i?", start_height, relay)
    )


def getheaders_payload(locator, stop=ZERO_HASH):
    return (
        struct.pack("<I", PROTOCOL_VERSION)
        + varint(len(locator))
        + b"".join(locator)
        + stop
    )


def ping_payload(nonce=None):
    return struct.pack("<Q", random.getrandbits(64) if nonce is None else nonce)


def decode_headers(payload):
    """The 80-byte headers of a `headers` payload; ValueError if malformed."""
    count, pos = read_varint(payload, 0)
    if count > MAX_HEADERS:
        raise ValueError(f"{count} headers in one message")
    headers = []
    for _ in range(count):
        if len(payload) < pos + 81:
            raise ValueError("truncated headers message")
        headers.append(payload[pos : pos + 80])
        pos += 81  # each header is followed by a transaction count, always 0
    if pos != len(payload):
        raise ValueError("bytes after the last header")
    return headers


def bits_target(bits):
    exponent = bits >> 24
    mantissa = bits & 0x007FFFFF
    if exponent <= 3:
        return mantissa >> (8 * (3 - exponent))
    return mantissa << (8 * (exponent - 3))


class HeaderError(Exception):
    pass


class Chain:
    """A header chain from regtest's genesis, each header checked before it is added: it
    links to the tip, carries regtest's nBits, and its hash meets that target."""

    def __init__(self):
        genesis = sha256d(REGTEST_GENESIS)
        self.hashes = [genesis]
        self.index = {genesis: 0}

    @property
    def height(self):
        return len(self.hashes) - 1

    @property
    def tip(self):
        return self.hashes[-1]

    def tip_hex(self):
        return hash_hex(self.tip)

    def locator(self):
        """Core's locator: the tip, then back one by one for 10, then doubling, then genesis."""
        out, step, height = [], 1, self.height
        while height > 0:
            out.append(self.hashes[height])
            if len(out) >= 10:
                step *= 2
            height -= step
        out.append(self.hashes[0])
        return out

    def add(self, headers):
        """Adds `headers` (a `headers` answer to our locator); returns how many were new."""
        added = 0
        for header in headers:
            (bits,) = struct.unpack("<I", header[72:76])
            block_hash = sha256d(header)
            prev = header[4:36]
            if block_hash in self.index:
                continue
            if prev != self.tip:
                raise HeaderError(
                    f"header {hash_hex(block_hash)} does not link to our tip at height "
                    f"{self.height}"
                )
            if bits != REGTEST_BITS:
                raise HeaderError(f"header {hash_hex(block_hash)} has nBits {bits:#x}")
            if int.from_bytes(block_hash, "little") > bits_target(bits):
                raise HeaderError(f"header {hash_hex(block_hash)} lacks its proof of work")
            self.hashes.append(block_hash)
            self.index[block_hash] = len(self.hashes) - 1
            added += 1
        return added


class PeerClosed(Exception):
    pass


class PeerTimeout(Exception):
    pass


class Client:
    """One blocking connection to a node, every call bounded by a deadline (time.monotonic)."""

    def __init__(self, addr, timeout=10.0, user_agent="/harness:0.1/"):
        self.addr = addr
        self.user_agent = user_agent
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = bytearray()
        self.peer_version = None
        self.pings_answered = 0

    def close(self, reset=False):
        if reset:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.sock.close()

    def send(self, command, payload=b""):
        self.sock.sendall(frame(command, payload))

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise PeerTimeout("deadline passed")
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout as err:
            raise PeerTimeout("deadline passed") from err
        if not data:
            raise PeerClosed("the node closed the connection")
        self.buffer += data

    def receive(self, deadline):
        """The next message as (command, payload); a `ping` is answered and skipped."""
        while True:
            while len(self.buffer) < HEADER_LEN:
                self._fill(deadline)
            command, length, checksum = parse_header(bytes(self.buffer[:HEADER_LEN]))
            while len(self.buffer) < HEADER_LEN + length:
                self._fill(deadline)
            payload = bytes(self.buffer[HEADER_LEN : HEADER_LEN + length])
            del self.buffer[: HEADER_LEN + length]
            if sha256d(payload)[:4] != checksum:
                raise ValueError(f"bad checksum on {command}")
            if command == "ping":
                self.send("pong", payload)
                self.pings_answered += 1
                continue
            return command, payload

    def receive_command(self, wanted, deadline):
        """Skips messages until one of `wanted` (a set of commands) comes."""
        while True:
            command, payload = self.receive(deadline)
            if command in wanted:
                return command, payload

    def handshake(self, deadline):
        self.send("version", version_payload(user_agent=self.user_agent))
        got_version = got_verack = False
        while not (got_version and got_verack):
            command, payload = self.receive(deadline)
            if command == "version":
                got_version = True
                self.peer_version = payload
                self.send("verack")
            elif command == "verack":
                got_verack = True

    def getheaders(self, locator, deadline):
        """Asks for the headers after `locator`; (headers, seconds until the answer)."""
        started = time.monotonic()
        self.send("getheaders", getheaders_payload(locator))
        _, payload = self.receive_command({"headers"}, deadline)
        return decode_headers(payload), time.monotonic() - started

    def sync(self, deadline, chain=None, latencies=None):
        """getheaders rounds until a short answer; every header checked. Returns the chain."""
        chain = chain or Chain()
        while True:
            headers, took = self.getheaders(chain.locator(), deadline)
            if latencies is not None:
                latencies.append(took)
            chain.add(headers)
            if len(headers) < MAX_HEADERS:
                return chain


def sync_once(addr, deadline, latencies=None, user_agent="/harness:0.1/"):
    """Connect, handshake, sync; returns the checked chain. Raises on any failure."""
    left = max(0.1, deadline - time.monotonic())
    client = Client(addr, timeout=min(left, 10.0), user_agent=user_agent)
    try:
        client.handshake(deadline)
        return client.sync(deadline, latencies=latencies)
    finally:
        client.close()


class RawPeer:
    """A non-blocking connection for the scripted hostile peers: bytes out from a buffer as
    the socket takes them, bytes in counted (and parsed only when asked)."""

    def __init__(self, addr, timeout=5.0):
        self.sock = socket.create_connection(addr, timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.out = bytearray()
        self.inbuf = bytearray()
        self.received = 0
        self.closed = False
        self.close_reason = None
        self.version = False
        self.verack = False

    def fileno(self):
        return self.sock.fileno()

    def queue(self, data):
        self.out += data

    def flush(self):
        """Writes what the socket takes now; returns bytes written."""
        if self.closed or not self.out:
            return 0
        try:
            sent = self.sock.send(self.out)
        except BlockingIOError:
            return 0
        except OSError as err:
            self.mark_closed(f"send: {err}")
            return 0
        del self.out[:sent]
        return sent

    def mark_closed(self, reason):
        if not self.closed:
            self.closed = True
            self.close_reason = reason

    def read_available(self, keep=True):
        """Reads what is there; notices EOF and resets."""
        while not self.closed:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return
            except OSError as err:
                self.mark_closed(f"recv: {err}")
                return
            if not data:
                self.mark_closed("eof")
                return
            self.received += len(data)
            if keep:
                self.inbuf += data

    def messages(self):
        """Complete messages read so far, taken off the buffer."""
        out = []
        while len(self.inbuf) >= HEADER_LEN:
            command, length, _ = parse_header(bytes(self.inbuf[:HEADER_LEN]))
            if len(self.inbuf) < HEADER_LEN + length:
                break
            out.append((command, bytes(self.inbuf[HEADER_LEN : HEADER_LEN + length])))
            del self.inbuf[: HEADER_LEN + length]
        return out

    def close(self, reset=False):
        try:
            if reset:
                self.sock.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def pump(peers, seconds, read=True, keep=True):
    """Sends queued bytes and reads (when `read`) on `peers` for up to `seconds` (poll(2): no
    FD_SETSIZE limit)."""
    end = time.monotonic() + seconds
    while True:
        live = [p for p in peers if not p.closed]
        left = end - time.monotonic()
        if not live or left <= 0:
            return
        poller = select.poll()
        by_fd = {}
        for peer in live:
            # Not reading: POLLRDHUP still tells that the node closed the connection.
            mask = (select.POLLIN if read else select.POLLRDHUP)
            mask |= select.POLLOUT if peer.out else 0
            if mask:
                poller.register(peer.sock.fileno(), mask)
                by_fd[peer.sock.fileno()] = peer
        if not by_fd:
            time.sleep(min(left, 0.05))
            return
        for fd, events in poller.poll(min(left, 0.1) * 1000):
            peer = by_fd[fd]
            if events & select.POLLOUT:
                peer.flush()
            if events & (select.POLLIN | select.POLLERR | select.POLLHUP | select.POLLRDHUP):
                if read:
                    peer.read_available(keep)
                elif events & (select.POLLERR | select.POLLHUP | select.POLLRDHUP):
                    peer.mark_closed("closed by the node")


def handshake_all(peers, deadline, user_agent="/harness-attacker:0.1/"):
    """version/verack with every peer at once; returns how many finished the handshake."""
    for peer in peers:
        peer.queue(frame("version", version_payload(user_agent=user_agent)))
    pending = list(peers)
    while pending and time.monotonic() < deadline:
        pump(pending, min(0.2, max(0.0, deadline - time.monotonic())))
        still = []
        for peer in pending:
            for command, _ in peer.messages():
                if command == "version" and not peer.version:
                    peer.version = True
                    peer.queue(frame("verack"))
                elif command == "verack":
                    peer.verack = True
            peer.flush()
            if not peer.closed and not (peer.version and peer.verack):
                still.append(peer)
        pending = still
    return sum(1 for p in peers if p.version and p.verack and not p.closed)


def random_bytes(n, seed=0):
    return random.Random(seed).randbytes(n) if n < (1 << 20) else os.urandom(n)
