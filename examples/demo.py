"""A line echo server and 20 clients over 127.0.0.1, on uasyncio's loop.

Every connection is a task: the server accepts and echoes, each client sends
lines, checks every echo, and times its round trips. It prints what happened
and exits.

    python3 examples/demo.py
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import uasyncio as asyncio  # noqa: E402
from uasyncio import IORead, IOReadDone, IOWrite  # noqa: E402

CLIENTS = 20
LINES = 200


def send_all(sock, data):
    """Write all of data, waiting for writability when the socket is full."""
    view = memoryview(data)
    while view:
        try:
            view = view[sock.send(view):]
        except BlockingIOError:
            yield IOWrite(sock)


def read_line(sock, buf):
    """One line from sock; buf holds what was read past it."""
    while b"\n" not in buf:
        yield IORead(sock)
        chunk = sock.recv(65536)
        if not chunk:
            return b"", b""
        buf += chunk
    line, _, rest = buf.partition(b"\n")
    return line + b"\n", rest


def serve_client(conn, stats):
    buf = b""
    while True:
        line, buf = yield from read_line(conn, buf)
        if not line:
            break
        yield from send_all(conn, line)
        stats["echoed"] += 1
    yield IOReadDone(conn)
    conn.close()


def server(listener, stats):
    while True:
        yield IORead(listener)
        conn, _ = listener.accept()
        conn.setblocking(False)
        stats["accepted"] += 1
        asyncio.get_event_loop().create_task(serve_client(conn, stats))


def client(n, port, results):
    sock = socket.socket()
    sock.setblocking(False)
    try:
        sock.connect(("127.0.0.1", port))
    except BlockingIOError:
        yield IOWrite(sock)
    buf, t0 = b"", time.perf_counter()
    for i in range(LINES):
        line = b"client %d line %d\n" % (n, i)
        yield from send_all(sock, line)
        echo, buf = yield from read_line(sock, buf)
        assert echo == line, (echo, line)
    results.append((n, time.perf_counter() - t0))
    sock.close()


async def main():
    loop = asyncio.get_event_loop()
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    stats = {"accepted": 0, "echoed": 0}
    results = []
    loop.create_task(server(listener, stats))
    print("echo server on 127.0.0.1:%d, %d clients x %d lines" % (port, CLIENTS, LINES))
    t0 = time.perf_counter()
    for n in range(CLIENTS):
        loop.create_task(client(n, port, results))
    while len(results) < CLIENTS:
        await asyncio.sleep_ms(5)
    wall = time.perf_counter() - t0
    await asyncio.sleep_ms(20)   # let the server see the clients close
    listener.close()
    trips = CLIENTS * LINES
    print("accepted %d connections, echoed %d lines, every echo verified"
          % (stats["accepted"], stats["echoed"]))
    print("%d round trips in %.3f s: %.0f round trips/s"
          % (trips, wall, trips / wall))
    return stats["echoed"] == trips


if __name__ == "__main__":
    ok = asyncio.get_event_loop().run_until_complete(main())
    sys.exit(0 if ok else 1)
