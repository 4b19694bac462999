"""A fully annotated program on uasyncio (checked with mypy --strict against
the package's type stubs): a line echo server and its clients over
127.0.0.1, a queue collecting the answers, a lock, a UDP round trip and a
timeout. Prints what it did and exits.

    python3 examples/typed_echo.py
"""
import os
import sys
import sysconfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio as asyncio  # noqa: E402
from uasyncio import udp  # noqa: E402
from uasyncio.queues import Queue  # noqa: E402
from uasyncio.synchro import Lock  # noqa: E402

CLIENTS, LINES = 5, 20


async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        line: bytes = await reader.readline()
        if not line:
            break
        await writer.awrite(line)
    await writer.aclose()


async def client(port: int, n: int, answers: Queue, lock: Lock, counts: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(LINES):
        line = b"client %d line %d\n" % (n, i)
        await writer.awrite(line)
        got = await reader.readline()
        async with lock:
            counts["echoed" if got == line else "bad"] += 1
    await writer.aclose()
    await answers.put(n)


async def udp_round_trip() -> bytes:
    a, b = udp.socket(), udp.socket()
    a.bind(("127.0.0.1", 0))
    await udp.sendto(b, b"ping", a.getsockname())
    data, _ = await udp.recvfrom(a, 100)
    await udp.close(a)
    await udp.close(b)
    return data


async def never() -> None:
    await asyncio.sleep(3600)


async def main() -> bool:
    loop = asyncio.get_event_loop()
    server = asyncio.start_server(echo, "127.0.0.1", 0)
    loop.create_task(server)
    await asyncio.sleep_ms(1)
    assert server.socket is not None
    port: int = server.socket.getsockname()[1]
    answers = Queue()
    lock = Lock()
    counts = {"echoed": 0, "bad": 0}
    for n in range(CLIENTS):
        loop.create_task(client(port, n, answers, lock, counts))
    done = sorted([await answers.get() for _ in range(CLIENTS)])
    timed_out = False
    try:
        await asyncio.wait_for_ms(never(), 10)
    except asyncio.TimeoutError:
        timed_out = True
    datagram = await udp_round_trip()
    asyncio.cancel(server)
    await asyncio.sleep_ms(1)
    print("%d lines echoed to clients %s, %d wrong" % (counts["echoed"], done, counts["bad"]))
    print("udp: %r; wait_for_ms timed out: %s" % (datagram, timed_out))
    return counts == {"echoed": CLIENTS * LINES, "bad": 0} and datagram == b"ping" and timed_out


if __name__ == "__main__":
    ok: bool = asyncio.get_event_loop().run_until_complete(main())
    sys.exit(0 if ok else 1)
