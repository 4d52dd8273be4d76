#!/usr/bin/env python3
"""A TCP peer on 127.0.0.1 that resets every connection: once it has read one byte (the
client's go-ahead, so the reset comes after the connection is up), it closes with SO_LINGER 0,
which sends RST instead of FIN.

tests/promises.rs needs it in wasmtime, where a guest has no SO_LINGER to reset a connection
itself; natively the tests reset their own loopback pairs. Prints the port it listens on, then
serves until killed. scripts/test-all.sh starts it and exports
BITCOIN_SOCK_RESET_PEER=127.0.0.1:PORT for the wasm tests.

Usage: scripts/reset-peer.py [PORT]   (0 or nothing: any free port)
"""
import socket
import struct
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


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(128)
    print(listener.getsockname()[1], flush=True)
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=reset_after_one_byte, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    main()
