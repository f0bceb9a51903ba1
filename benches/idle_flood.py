"""benches/idle_flood.py: how long a fresh visitor waits after a flood of
idle connections (run by benches/idle_flood.sh, which starts the servers).

Each trial opens FLOOD connections to a drop server that send nothing (as
half-open or slowloris sockets would), then at once times one fresh GET of
the published page on a new connection: from its connect to the last byte
of its answer. The idle sockets are then closed and the server is left to
settle before the next trial. Prints one line per server: the fresh
request's time over the trials (min, median, max) and how many of the
idle sockets the server had closed by the time the fresh answer arrived.

Usage: idle_flood.py TRIALS FLOOD NAME=URL [NAME=URL...]
"""

import resource
import socket
import statistics
import sys
import time
from urllib.parse import urlsplit


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        sys.exit(f"error: {need} file descriptors needed, the limit is {soft}")


def fresh_get(host, port, path):
    """Seconds from connect to the whole answer, and its status line."""
    began = time.perf_counter()
    with socket.create_connection((host, port), timeout=30) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return time.perf_counter() - began, data.split(b"\r\n", 1)[0].decode()


def closed_by_server(sock):
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def settle(host, port, path):
    """Waits until a fresh request is quick again (the flood drained)."""
    for _ in range(200):
        took, _ = fresh_get(host, port, path)
        if took < 0.005:
            return
        time.sleep(0.05)


def trial(host, port, path, flood):
    idle = []
    for _ in range(flood):
        s = socket.socket()
        s.connect((host, port))
        idle.append(s)
    took, status = fresh_get(host, port, path)
    if not status.endswith("200 OK"):
        sys.exit(f"error: the fresh request got {status!r}")
    closed = sum(closed_by_server(s) for s in idle)
    for s in idle:
        s.close()
    settle(host, port, path)
    return took, closed


def main():
    trials, flood = int(sys.argv[1]), int(sys.argv[2])
    servers = [arg.split("=", 1) for arg in sys.argv[3:]]
    raise_fd_limit(flood + 256)
    results = {name: [] for name, _ in servers}
    for n in range(trials):
        # Alternate the order, so neither server always goes first.
        order = servers if n % 2 == 0 else servers[::-1]
        for name, url in order:
            u = urlsplit(url)
            settle(u.hostname, u.port, u.path)
            results[name].append(trial(u.hostname, u.port, u.path, flood))
    print(f"a fresh GET after {flood} idle connections, {trials} trials:")
    for name, runs in results.items():
        ms = sorted(took * 1000 for took, _ in runs)
        closed = statistics.median(c for _, c in runs)
        print(
            f"  {name:<9} min {ms[0]:7.1f} ms   median {statistics.median(ms):7.1f} ms"
            f"   max {ms[-1]:7.1f} ms   (idle sockets closed by then: {closed:.0f})"
        )


main()
