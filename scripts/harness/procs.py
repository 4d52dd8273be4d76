"""Processes the harness starts and watches: bcoin in regtest, the example node (native or in
wasmtime), the fault proxy, light clients; their logs, resident memory and descriptors; and the
cleanup that ends every one of them.

Every child is started with PR_SET_PDEATHSIG, so it dies with the harness even if the harness
is killed with SIGKILL; on a normal exit, an exception or SIGINT/SIGTERM, `cleanup` ends each
child by its pid and removes the temporary directories.
"""

import atexit
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WASMTIME = ["wasmtime", "run", "-S", "inherit-network=y", "-S", "allow-ip-name-lookup=y"]
BCOIN_DIR = os.environ.get("REGTEST_NODE_DIR", os.path.join(REPO, "target", "regtest-node"))

_children = []
_tempdirs = []
_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def say(line):
    print(f"==> {line}", flush=True)


def tempdir(prefix="harness-"):
    # Under a wrapper script, inside its directory, which its trap removes even if this
    # process is killed outright.
    path = tempfile.mkdtemp(prefix=prefix, dir=os.environ.get("HARNESS_TMP") or None)
    _tempdirs.append(path)
    return path


def spawn(args, log_path=None, env=None, cwd=REPO):
    """Starts `args` with stdout and stderr to `log_path` (or discarded); registered for
    cleanup."""
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    proc = subprocess.Popen(
        args,
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
        preexec_fn=_die_with_parent,
    )
    if log_path:
        out.close()
    _children.append(proc)
    return proc


def stop(proc, grace=5.0):
    """Ends one child we started: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc is None or proc.poll() is not None:
        return
    try:
        proc.terminate()
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    except ProcessLookupError:
        pass


def cleanup():
    while _children:
        stop(_children.pop(), grace=3.0)
    while _tempdirs:
        shutil.rmtree(_tempdirs.pop(), ignore_errors=True)


def _on_signal(signum, _frame):
    raise SystemExit(128 + signum)


def install_cleanup():
    atexit.register(cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sample(pid):
    """(resident KiB, open descriptors) of process `pid`, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        return rss, fds
    except (OSError, StopIteration):
        return None


class LogWatch:
    """Follows a child's log file in a thread: every line with its arrival time."""

    def __init__(self, path):
        self.path = path
        self.lines = []  # (monotonic time, text)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._follow, daemon=True)
        self.thread.start()

    def _follow(self):
        with open(self.path, "rb") as f:
            partial = b""
            while not self.done.is_set():
                chunk = f.read(1 << 16)
                if not chunk:
                    time.sleep(0.02)
                    continue
                partial += chunk
                *complete, partial = partial.split(b"\n")
                now = time.monotonic()
                with self.lock:
                    for line in complete:
                        self.lines.append((now, line.decode("utf-8", "replace")))

    def close(self):
        self.done.set()

    def count(self):
        with self.lock:
            return len(self.lines)

    def since(self, index=0):
        with self.lock:
            return list(self.lines[index:])

    def find(self, pattern, start=0):
        """The first line from index `start` matching `pattern`, or None."""
        rx = re.compile(pattern)
        with self.lock:
            for when, text in self.lines[start:]:
                if rx.search(text):
                    return when, text
        return None

    def wait_for(self, pattern, timeout, start=0, proc=None):
        """Waits until a line matches; returns (time, line) or None on timeout or exit."""
        end = time.monotonic() + timeout
        while True:
            hit = self.find(pattern, start)
            if hit:
                return hit
            if proc is not None and proc.poll() is not None:
                time.sleep(0.1)  # the last lines the child wrote
                return self.find(pattern, start)
            if time.monotonic() >= end:
                return None
            time.sleep(0.05)


# ---------------------------------------------------------------------------------------------
# bcoin

LAUNCHER = r"""
'use strict';
// bcoin's full node in regtest on 127.0.0.1 only (the lines of scripts/regtest-node.sh's
// launcher), with a chain kept on disk so that a restart serves the same chain.
const FullNode = require('bcoin/lib/node/fullnode');
const Address = require('bcoin/lib/primitives/address');
const [port, rpcPort, blocks, prefix, memory] = process.argv.slice(2);
const node = new FullNode({
  network: 'regtest', prefix, memory: memory === 'memory', workers: false, listen: true,
  host: '127.0.0.1', port: Number(port), httpHost: '127.0.0.1', httpPort: Number(rpcPort),
  logConsole: true, logLevel: 'info',
});
node.pool.discoverExternal = async () => {};
node.pool.discoverSeeds = async () => {};
node.pool.fillOutbound = () => {};
process.on('unhandledRejection', (err) => { throw err; });
(async () => {
  await node.ensure();
  await node.open();
  await node.connect();
  node.startSync();
  const address = Address.fromPubkeyhash(Buffer.alloc(20)).toString('regtest');
  for (let left = Number(blocks); left > 0; left -= 500) {
    await node.rpc.generateToAddress([Math.min(left, 500), address]);
  }
  console.log(`READY 127.0.0.1:${port} height ${node.chain.height} tip ${node.chain.tip.rhash()} address ${address}`);
})().catch((err) => { console.error(err.stack); process.exit(1); });
"""


def install_bcoin():
    """scripts/regtest-node.sh install: bcoin from npm into target/regtest-node (once)."""
    if not os.path.exists(os.path.join(BCOIN_DIR, "node_modules", "bcoin")):
        say("installing bcoin (scripts/regtest-node.sh install)")
        subprocess.run([os.path.join(REPO, "scripts", "regtest-node.sh"), "install"], check=True)


class Bcoin:
    """bcoin in regtest on loopback with its chain on disk: started, mined, restarted."""

    def __init__(self, blocks, workdir, port=None):
        self.port = port or free_port()
        self.rpc_port = free_port()
        self.blocks = blocks
        self.prefix = os.path.join(workdir, "bcoin-data")
        self.launcher = os.path.join(workdir, "bcoin-launch.js")
        self.log = os.path.join(workdir, "bcoin.log")
        self.proc = None
        with open(self.launcher, "w") as f:
            f.write(LAUNCHER)

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def start(self, mine=None, timeout=240):
        install_bcoin()
        os.makedirs(self.prefix, exist_ok=True)
        open(self.log, "w").close()
        env = dict(os.environ, NODE_PATH=os.path.join(BCOIN_DIR, "node_modules"))
        blocks = self.blocks if mine is None else mine
        self.proc = spawn(
            ["node", self.launcher, str(self.port), str(self.rpc_port), str(blocks), self.prefix,
             "disk"],
            log_path=self.log,
            env=env,
        )
        watch = LogWatch(self.log)
        try:
            hit = watch.wait_for(r"^READY ", timeout, proc=self.proc)
        finally:
            watch.close()
        if not hit:
            with open(self.log) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f"bcoin did not get ready in {timeout} s:\n{tail}")
        self.address = hit[1].split()[-1]
        return hit[1]

    def stop(self):
        stop(self.proc)
        self.proc = None

    def restart(self, down_seconds=0.0):
        """Stops bcoin, waits, starts it again on the same port with the same chain."""
        self.stop()
        time.sleep(down_seconds)
        return self.start(mine=0)

    def rpc(self, method, params=None, timeout=60):
        body = json.dumps({"method": method, "params": params or [], "id": 1}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rpc_port}/", data=body,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            answer = json.load(reply)
        if answer.get("error"):
            raise RuntimeError(f"bcoin RPC {method}: {answer['error']}")
        return answer["result"]

    def tip(self):
        """(height, tip hash) from bcoin's RPC."""
        return self.rpc("getblockcount"), self.rpc("getbestblockhash")

    def mine(self, count):
        """Mines `count` blocks (coinbases to the all-zero key hash, as
        scripts/regtest-node.sh does); their hashes."""
        return self.rpc("generatetoaddress", [count, self.address], timeout=120)


# ---------------------------------------------------------------------------------------------
# the example node and the light client

def build(hosts, timeout=1200):
    """Builds the node and light-client examples for the hosts asked ("native", "wasm")."""
    for host in hosts:
        args = ["cargo", "build", "--quiet", "--example", "node", "--example", "light_client"]
        if host == "wasm":
            args += ["--target", "wasm32-wasip2"]
        say(f"building the examples ({host})")
        subprocess.run(args, cwd=REPO, check=True, timeout=timeout)
    if "wasm" in hosts and not shutil.which("wasmtime"):
        raise RuntimeError("wasmtime is not on PATH: the wasm host cannot run")


def node_command(host):
    if host == "native":
        return [os.path.join(REPO, "target", "debug", "examples", "node")]
    if host == "wasm":
        return WASMTIME + [
            os.path.join(REPO, "target", "wasm32-wasip2", "debug", "examples", "node.wasm")
        ]
    raise ValueError(host)


def light_client_command(host):
    if host == "native":
        return [os.path.join(REPO, "target", "debug", "examples", "light_client")]
    return WASMTIME + [
        os.path.join(REPO, "target", "wasm32-wasip2", "debug", "examples", "light_client.wasm")
    ]


class Node:
    """The example node: `--network regtest`, the given --connect/--listen/--maxconnections
    and any further flags (e.g. --ping-interval) passed through unchanged."""

    def __init__(self, host, workdir, connect=None, listen_port=None, maxconnections=125,
                 extra=(), name="node"):
        self.host = host
        self.listen_port = listen_port if listen_port is not None else free_port()
        self.log = os.path.join(workdir, f"{name}-{host}.log")
        args = node_command(host) + ["--network", "regtest"]
        for target in [connect] if isinstance(connect, str) else (connect or []):
            args += ["--connect", target]
        args += ["--listen", f"127.0.0.1:{self.listen_port}",
                 "--maxconnections", str(maxconnections)]
        args += list(extra)
        self.args = args
        open(self.log, "w").close()
        self.proc = spawn(args, log_path=self.log)
        self.watch = LogWatch(self.log)
        self.started = time.monotonic()

    @property
    def addr(self):
        return ("127.0.0.1", self.listen_port)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc.poll() is None

    def sample(self):
        return sample(self.proc.pid)

    def wait_listening(self, timeout=60):
        """Waits until the node accepts connections on its --listen port (a connect that
        succeeds, not a log line, so a change of the node's wording does not matter)."""
        end = time.monotonic() + timeout
        while self.alive() and time.monotonic() < end:
            try:
                socket.create_connection(self.addr, timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        time.sleep(0.2)  # the last lines of a node that exited
        raise RuntimeError(f"the node did not start listening: {self.exit_reason()}")

    def exit_reason(self):
        """Why the node is gone (its last lines), or that it still runs."""
        if self.alive():
            return "still running"
        tail = [text for _, text in self.watch.since()][-5:]
        return f"exited with {self.proc.returncode}: " + " | ".join(tail)

    def stop(self):
        stop(self.proc)
        self.watch.close()


def run_light_client(host, addr, clients=None, timeout=300):
    """The light-client example against `addr`; (exit code, output, seconds)."""
    args = light_client_command(host) + ["--network", "regtest"]
    if clients:
        args += ["--clients", str(clients)]
    args.append(f"{addr[0]}:{addr[1]}")
    started = time.monotonic()
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, cwd=REPO, preexec_fn=_die_with_parent)
    _children.append(proc)
    try:
        out, _ = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        code = None
    finally:
        if proc in _children:
            _children.remove(proc)
    return code, out.decode("utf-8", "replace"), time.monotonic() - started


def light_client_tip(output):
    """(height, tip) of a light client's `synced ...: height H, tip T` line, or None."""
    match = re.search(r"synced[^\n]*?: height (\d+), tip ([0-9a-f]{64})", output)
    return (int(match.group(1)), match.group(2)) if match else None


class Proxy:
    """scripts/fault-proxy.py in its own process, steered through its control socket."""

    def __init__(self, upstream, workdir, name="proxy", args=()):
        self.log = os.path.join(workdir, f"{name}.log")
        open(self.log, "w").close()
        self.proc = spawn(
            [sys.executable, os.path.join(REPO, "scripts", "fault-proxy.py"),
             "--listen", "127.0.0.1:0", "--upstream", f"{upstream[0]}:{upstream[1]}",
             "--control", "127.0.0.1:0", "--name", name, *args],
            log_path=self.log,
        )
        self.watch = LogWatch(self.log)
        hit = self.watch.wait_for(r"listening on 127\.0\.0\.1:(\d+).*control 127\.0\.0\.1:(\d+)",
                                  20, proc=self.proc)
        if not hit:
            raise RuntimeError(f"fault-proxy did not start: {open(self.log).read()[-2000:]}")
        match = re.search(r"listening on 127\.0\.0\.1:(\d+).*control 127\.0\.0\.1:(\d+)", hit[1])
        self.port, self.control_port = int(match.group(1)), int(match.group(2))

    @property
    def addr(self):
        return ("127.0.0.1", self.port)

    def command(self, line, timeout=10):
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=timeout) as s:
            s.sendall(line.encode() + b"\n")
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
                reply += chunk
        answer = json.loads(reply)
        if not answer.get("ok"):
            raise RuntimeError(f"fault-proxy refused {line!r}: {answer.get('error')}")
        return answer

    def stats(self):
        return self.command("stats")

    def stop(self):
        stop(self.proc)
        self.watch.close()


def cpu_seconds(pid):
    """User + system CPU seconds of process `pid` so far, or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


class Sampler:
    """Samples a process's resident memory and descriptors every `interval` seconds in a
    thread: (monotonic time, KiB, descriptors)."""

    def __init__(self, pid, interval=0.2):
        self.pid = pid
        self.interval = interval
        self.samples = []
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done.is_set():
            got = sample(self.pid)
            if got:
                with self.lock:
                    self.samples.append((time.monotonic(), *got))
            self.done.wait(self.interval)

    def stop(self):
        self.done.set()
        self.thread.join(5)

    def between(self, start, end=None):
        with self.lock:
            return [s for s in self.samples if s[0] >= start and (end is None or s[0] <= end)]

    def peak_kib(self, start=0.0, end=None):
        window = self.between(start, end)
        return max((s[1] for s in window), default=0)

    def last(self):
        with self.lock:
            return self.samples[-1] if self.samples else None
