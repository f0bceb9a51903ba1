#!/usr/bin/env python3
"""benches/download.py — downloads one URL over and over, as fast as it can.

Usage: download.py URL CONNECTIONS SECONDS

Each connection (a process of its own) asks for URL on one keep-alive
connection again and again for SECONDS, reading the body into one 4 MiB
buffer it reuses: a client that costs little more than the kernel's copy,
where wrk reads 8 KiB at a time and caps the figure of a fast server.
Prints one line: `<body bytes by the deadline> <seconds> <all body bytes>
<complete downloads> <errors>`. The download under way at the deadline is
read to its end, so the connection closes cleanly (a close with bytes
unread would be a reset); its bytes past the deadline count in the second
total only, which is what the server sent while it was watched.
"""

import multiprocessing
import socket
import sys
import time
from urllib.parse import urlsplit

BUFFER = 4 * 1024 * 1024


def head(sock, pending):
    """Reads a response head; returns (status, content length, bytes past it)."""
    while b"\r\n\r\n" not in pending:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before the head")
        pending += chunk
    raw, rest = pending.split(b"\r\n\r\n", 1)
    lines = raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = next(
        int(line.split(":", 1)[1]) for line in lines[1:] if line.lower().startswith("content-length:")
    )
    return status, length, rest


def one_connection(url, seconds, out):
    parts = urlsplit(url)
    request = f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    buf = bytearray(BUFFER)
    view = memoryview(buf)
    total = everything = complete = errors = 0
    started = time.monotonic()
    deadline = started + seconds
    sock = None
    draining = False
    while time.monotonic() < deadline:
        try:
            if sock is None:
                sock = socket.create_connection((parts.hostname, parts.port))
            sock.sendall(request)
            status, left, rest = head(sock, b"")
            if status != 200:
                errors += 1
            total += len(rest)
            everything += len(rest)
            left -= len(rest)
            while left > 0:
                n = sock.recv_into(view, min(left, BUFFER))
                if n == 0:
                    raise ConnectionError("closed mid-body")
                left -= n
                everything += n
                if not draining:
                    total += n
                    draining = time.monotonic() >= deadline
            if not draining:
                complete += 1
        except (OSError, ValueError, StopIteration):
            errors += 1
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        sock.close()
    out.put((total, min(time.monotonic(), deadline) - started, everything, complete, errors))


def main():
    url, connections, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    out = multiprocessing.Queue()
    workers = [
        multiprocessing.Process(target=one_connection, args=(url, seconds, out))
        for _ in range(connections)
    ]
    for worker in workers:
        worker.start()
    results = [out.get() for _ in workers]
    for worker in workers:
        worker.join()
    total = sum(r[0] for r in results)
    secs = max(r[1] for r in results)
    print(total, f"{secs:.3f}", *(sum(r[i] for r in results) for i in (2, 3, 4)))


if __name__ == "__main__":
    main()
