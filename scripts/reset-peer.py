#!/usr/bin/env python3
"""A TCP peer on 127.0.0.1 that resets every connection: once it has read one byte (the
client's go-ahead, so the reset comes after the connection is up), it closes with SO_LINGER 0,
which sends RST instead of FIN.

tests/promises.rs needs it in wasmtime, where a guest has no SO_LINGER to reset a connection
itself; natively the tests reset their own loopback pairs. scripts/test-all.sh and
scripts/flake-hunt.sh start it and export BITCOIN_SOCK_RESET_PEER=127.0.0.1:PORT for the wasm
tests.

Usage (the same shape as scripts/socks5-server.sh):
  scripts/reset-peer.py start [PORT]   starts the peer in the background (PORT 0 or nothing: any
                                       free port); prints "PID PORT" once it accepts connections
  scripts/reset-peer.py stop PID       stops a peer started that way
  scripts/reset-peer.py [PORT]         serves in the foreground, printing the port first
"""
import os
import signal
import socket
import struct
import subprocess
import sys
import threading


def reset_after_one_byte(conn):
    try:
        conn.settimeout(60)
        conn.recv(1)
    except OSError:
        pass
    finally:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()


def start(port):
    # The child serves in its own session so the caller's shell exiting does not stop it; its
    # first line is the port, written once it listens (the listen backlog takes connections
    # from then on).
    child = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        text=True,
    )
    line = child.stdout.readline().strip()
    if not line.isdigit():
        child.kill()
        sys.exit("FAILED: the resetting peer printed no port")
    print(child.pid, line, flush=True)


def stop(pid):
    # Only a process running this script is stopped, so a stale PID hits nothing else.
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"reset-peer.py" not in f.read():
                return
    except OSError:
        return
    os.kill(pid, signal.SIGTERM)


def serve(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=reset_after_one_byte, args=(conn,), daemon=True).start()


def main():
    args = sys.argv[1:]
    if args[:1] == ["start"]:
        start(int(args[1]) if len(args) > 1 else 0)
    elif args[:1] == ["stop"] and len(args) == 2:
        stop(int(args[1]))
    elif len(args) <= 1 and all(a.isdigit() for a in args):
        serve(int(args[0]) if args else 0)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
