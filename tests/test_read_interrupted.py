"""A read timed out (wait_for) or cancelled part way loses nothing: every
byte it had taken is there for the next read, whatever the kind of read
(read, readline, readexactly; over a socket or over any object with
read/readline; datagrams). WebSocket reads: test_websocket.py. Random
mixes of reads, timeouts and cancellations: test_stream_model.py."""
import socket

import pytest

import uasyncio
from uasyncio import udp
from conftest import run


def pair():
    a, b = socket.socketpair()
    a.setblocking(False)
    return a, b


async def interrupted(loop, how, aw, ms=50):
    """Run aw, interrupted after ms: by wait_for's timeout, or by cancel()
    of the task running it. Returns "interrupted", or what aw gave."""
    if how == "timeout":
        try:
            return await uasyncio.wait_for_ms(aw, ms)
        except uasyncio.TimeoutError:
            return "interrupted"
    box = {}

    async def reader_task():
        try:
            box["got"] = await aw
        except uasyncio.CancelledError:
            box["got"] = "interrupted"

    task = reader_task()
    loop.create_task(task)
    await uasyncio.sleep_ms(ms)
    if "got" not in box:
        uasyncio.cancel(task)
    while "got" not in box:
        await uasyncio.sleep_ms(1)
    return box["got"]


CASES = [
    # read, what arrives first, what arrives after the interruption, what the second read gives
    ("readexactly", b"12345", b"67890", b"1234567890"),
    ("readline", b"half a ", b"line\nnext\n", b"half a line\n"),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("name, first, second, want", CASES, ids=[c[0] for c in CASES])
def test_an_interrupted_socket_read_leaves_its_bytes(loop, how, name, first, second, want):
    a, b = pair()
    try:
        reader = uasyncio.StreamReader(a)

        def op():
            return reader.readexactly(10) if name == "readexactly" else reader.readline()

        async def main():
            b.sendall(first)
            got = await interrupted(loop, how, op())
            b.sendall(second)
            return got, await op()

        got, again = run(loop, main())
    finally:
        a.close()
        b.close()
    assert got == "interrupted"
    assert again == want


class Trickle:
    """A non-socket stream (polled through a socket pair that is always
    readable) that gives its chunks one call at a time and None while it
    has nothing, as a wrapper stream does."""

    def __init__(self):
        self.chunks = []

    def readline(self):
        return self.chunks.pop(0) if self.chunks else None

    def read(self, n=-1):
        if not self.chunks:
            return None
        c = self.chunks.pop(0)
        if 0 <= n < len(c):
            self.chunks.insert(0, c[n:])
            c = c[:n]
        return c


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["timeout", "cancel"])
@pytest.mark.parametrize("name", ["readline", "readexactly"])
def test_an_interrupted_read_over_an_object_leaves_its_bytes(loop, how, name):
    """What the object gave an interrupted readline()/readexactly() comes
    first in the next read of any kind."""
    a, b = pair()
    b.send(b"!")       # a stays readable: only polled
    t = Trickle()
    try:
        reader = uasyncio.StreamReader(a, t)

        async def main():
            t.chunks.append(b"abc")
            got = await interrupted(loop, how, reader.readline() if name == "readline" else reader.readexactly(10))
            t.chunks.append(b"def\n")
            return got, await reader.read(), await reader.read()

        got, first, second = run(loop, main())
    finally:
        a.close()
        b.close()
    assert got == "interrupted"
    assert (first, second) == (b"abc", b"def\n")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["timeout", "cancel"])
def test_an_interrupted_datagram_read_loses_no_datagram(loop, how):
    s = udp.socket()
    c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", 0))
        addr = s.getsockname()

        async def main():
            got = await interrupted(loop, how, udp.recv(s, 100))
            c.sendto(b"one", addr)
            c.sendto(b"two", addr)
            return got, await udp.recv(s, 100), (await udp.recvfrom(s, 100))[0]

        assert run(loop, main()) == ("interrupted", b"one", b"two")
    finally:
        s.close()
        c.close()


@pytest.mark.timeout(30)
def test_a_read_timed_out_many_times_still_gets_every_byte(loop):
    """Bytes trickle in; readexactly(1000) is timed out again and again
    and retried: it ends with all of them, in order."""
    a, b = pair()
    data = bytes(range(256)) * 4
    try:
        reader = uasyncio.StreamReader(a)

        async def main():
            pos, tries = 0, 0
            while True:
                if pos < len(data):
                    b.sendall(data[pos:pos + 37])
                    pos += 37
                tries += 1
                try:
                    return tries, await uasyncio.wait_for_ms(reader.readexactly(1000), 2)
                except uasyncio.TimeoutError:
                    pass

        tries, got = run(loop, main())
    finally:
        a.close()
        b.close()
    assert got == data[:1000]
    assert tries > 1
