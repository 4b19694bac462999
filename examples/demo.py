"""The demo: a line echo server and an HTTP server on 127.0.0.1, with
clients on the same loop: 50 echo clients check every echoed line, 20 HTTP
clients fetch a page, a flooding client sends 20 MB while the others run.
Prints what happened and exits.

    python3 examples/demo.py
"""
import os
import sys
import sysconfig
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio as asyncio  # noqa: E402
from echo_server import echo  # noqa: E402
from http_server import serve as http  # noqa: E402

ECHO_CLIENTS, LINES, HTTP_CLIENTS, FLOOD = 50, 200, 20, 20 * 1024 * 1024


async def echo_client(port, n, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(LINES):
        line = b"client %d line %d\n" % (n, i)
        await writer.awrite(line)
        if await reader.readline() != line:
            stats["bad"] += 1
        stats["echoed"] += 1
    await writer.aclose()


async def http_client(port, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await writer.awrite(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
    response = b""
    while True:
        chunk = await reader.read(4096)
        if not chunk:
            break
        response += chunk
    await writer.aclose()
    stats["http_ok" if response.endswith(b"\r\n\r\nHello") else "bad"] += 1


async def flood(port, stats):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    block = b"x" * 65535 + b"\n"

    async def drain():
        got = 0
        while got < FLOOD:
            got += len(await reader.read(1 << 20))
        stats["flood_back"] = got

    asyncio.get_event_loop().create_task(drain())
    for _ in range(FLOOD // len(block)):
        await writer.awrite(block)
    while "flood_back" not in stats:
        await asyncio.sleep_ms(5)
    await writer.aclose()


async def ticker(stats):
    while True:
        await asyncio.sleep_ms(1)
        stats["ticks"] += 1


async def main():
    loop = asyncio.get_event_loop()
    echo_srv = asyncio.start_server(echo, "127.0.0.1", 0)
    http_srv = asyncio.start_server(http, "127.0.0.1", 0, backlog=64)
    loop.create_task(echo_srv)
    loop.create_task(http_srv)
    await asyncio.sleep_ms(1)
    echo_port = echo_srv.socket.getsockname()[1]
    http_port = http_srv.socket.getsockname()[1]
    print("echo server on 127.0.0.1:%d, HTTP server on 127.0.0.1:%d" % (echo_port, http_port))
    stats = {"echoed": 0, "bad": 0, "http_ok": 0, "ticks": 0}
    tick = ticker(stats)
    loop.create_task(tick)
    t0 = time.perf_counter()
    loop.create_task(flood(echo_port, stats))
    for n in range(ECHO_CLIENTS):
        loop.create_task(echo_client(echo_port, n, stats))
    for _ in range(HTTP_CLIENTS):
        loop.create_task(http_client(http_port, stats))
    while (stats["echoed"] < ECHO_CLIENTS * LINES or stats["http_ok"] + stats["bad"] < HTTP_CLIENTS
           or "flood_back" not in stats):
        await asyncio.sleep_ms(5)
    wall = time.perf_counter() - t0
    for task in (tick, echo_srv, http_srv):
        asyncio.cancel(task)
    await asyncio.sleep_ms(1)
    print("%d echo round trips by %d clients: %.0f/s, every line verified"
          % (stats["echoed"], ECHO_CLIENTS, stats["echoed"] / wall))
    print("%d/%d HTTP requests answered 'Hello'" % (stats["http_ok"], HTTP_CLIENTS))
    print("flood: %d MB echoed back while the others ran; a 1 ms ticker ticked %d times in %.2f s"
          % (stats["flood_back"] >> 20, stats["ticks"], wall))
    print("errors: %d" % stats["bad"])
    return stats["bad"] == 0 and stats["http_ok"] == HTTP_CLIENTS


if __name__ == "__main__":
    ok = asyncio.get_event_loop().run_until_complete(main())
    sys.exit(0 if ok else 1)
