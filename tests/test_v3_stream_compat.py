"""Where uasyncio.v3's streams behave as CPython's asyncio streams do, the same
program gives the same output on both (as uvloop's tests run on both loops)."""
import asyncio as cpython_asyncio
import errno
import socket
import struct

import pytest

import uasyncio.v3
from v3util import echo_lines

HOST = "127.0.0.1"


@pytest.fixture(params=["uasyncio.v3", "asyncio"])
def aio(request):
    if request.param == "asyncio":
        return cpython_asyncio
    uasyncio.v3.new_event_loop()
    return uasyncio.v3


def run(aio, program):
    out = []

    async def bounded():
        await aio.wait_for(program(aio, out), 30)

    aio.run(bounded())
    return out


async def conversation(aio, out):
    async def handler(reader, writer):
        out.append(("server: peer is local", writer.get_extra_info("peername")[0] == HOST))
        line = await reader.readline()
        data = await reader.readexactly(5)
        out.append(("server got", line, data))
        writer.write(line.upper() + data)
        await writer.drain()
        rest = await reader.read(-1)    # to the end of the stream
        out.append(("server: rest", len(rest), rest[:3]))
        writer.write(b"bye\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        done.set()

    done = aio.Event()
    srv = await aio.start_server(handler, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await aio.open_connection(HOST, port)
    writer.write(b"hello\n")
    writer.write(b"world")
    await writer.drain()
    out.append(("client got", await reader.readexactly(11)))
    out.append(("client: peer", writer.get_extra_info("peername") == (HOST, port)))
    writer.write(b"x" * 300000)
    await writer.drain()
    writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
    out.append(("client got", await reader.readline()))
    out.append(("client: at the end", await reader.read(), await reader.readline()))
    try:
        await reader.readexactly(1)
    except EOFError:
        out.append("EOFError")
    writer.close()
    await writer.wait_closed()
    await done.wait()
    srv.close()
    await srv.wait_closed()


def test_a_conversation_prints_the_same(aio):
    assert run(aio, conversation) == [
        ("server: peer is local", True),
        ("server got", b"hello\n", b"world"),
        ("client got", b"HELLO\nworld"),
        ("client: peer", True),
        ("server: rest", 300000, b"xxx"),
        ("client got", b"bye\n"),
        ("client: at the end", b"", b""),
        "EOFError",
    ]


async def timeouts_and_cancellation(aio, out):
    async def handler(reader, writer):
        await aio.sleep(0.2)
        writer.write(b"late line\nsecond")
        await writer.drain()
        await reader.read()          # until the client closes
        writer.close()
        await writer.wait_closed()

    srv = await aio.start_server(handler, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await aio.open_connection(HOST, port)
    try:
        await aio.wait_for(reader.readline(), 0.01)
    except aio.TimeoutError:
        out.append("timed out")
    task = aio.create_task(reader.readline())
    await aio.sleep(0)
    task.cancel()
    try:
        await task
    except aio.CancelledError:
        out.append("cancelled")
    out.append(await reader.readline())            # nothing was lost
    out.append(await aio.wait_for(reader.readexactly(6), 10))
    writer.close()
    await writer.wait_closed()
    srv.close()
    await srv.wait_closed()


def test_timeouts_and_cancellation_lose_nothing_on_both(aio):
    assert run(aio, timeouts_and_cancellation) == ["timed out", "cancelled", b"late line\n", b"second"]


async def many_clients(aio, out):
    async def client(port, i):
        reader, writer = await aio.open_connection(HOST, port)
        got = []
        for r in range(10):
            writer.write(b"%d %d\n" % (i, r))
            await writer.drain()
            got.append(await reader.readline())
        writer.close()
        await writer.wait_closed()
        return got == [b"%d %d\n" % (i, r) for r in range(10)]

    # backlog: fifty connects at once (v3's default of 5 leaves the kernel
    # retrying dropped connects for seconds).
    srv = await aio.start_server(echo_lines, HOST, 0, backlog=64)
    port = srv.sockets[0].getsockname()[1]
    out.append(await aio.gather(*[client(port, i) for i in range(50)]))
    srv.close()
    await srv.wait_closed()


def test_fifty_clients_on_both(aio):
    assert run(aio, many_clients) == [[True] * 50]


async def reset_with_bytes_buffered(aio, out):
    first, done = aio.Event(), aio.Event()

    async def handler(reader, writer):
        out.append(await reader.read(10))   # the other 8 bytes wait in the stream's buffer
        first.set()
        await aio.sleep(0.2)                # meanwhile the client resets the connection
        try:
            out.append(await reader.read(100))
        except OSError as e:
            out.append(("OSError", e.errno))
        writer.close()
        done.set()

    srv = await aio.start_server(handler, HOST, 0)
    port = srv.sockets[0].getsockname()[1]
    c = socket.create_connection((HOST, port))
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")
    await first.wait()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()   # RST
    await done.wait()
    srv.close()
    await srv.wait_closed()


def test_a_reset_discards_what_was_buffered_on_both(aio):
    """As MicroPython (multi_net/asyncio_tcp_client_rst.py) and CPython's
    asyncio: after a TCP reset the next read raises ECONNRESET, though bytes
    the peer sent before it are in the stream's buffer."""
    assert run(aio, reset_with_bytes_buffered) == [b"GET / HTTP", ("OSError", errno.ECONNRESET)]
