"""uasyncio.v3's Stream over what MicroPython's wraps besides sockets: any
object with read/readline/readinto/write and ioctl(MP_STREAM_POLL, flags)
(a UART, a driver, a test double), polled as MicroPython's poller polls it;
and Stream subclasses, whose __init__ calls super().__init__(s, e={})."""
import io

import pytest

import uasyncio.v3 as asyncio
from conftest import run_program
from v3util import aio  # noqa: F401 - a fixture


def run(coro, secs=30):
    """asyncio.run(coro), failing with TimeoutError after secs."""
    return asyncio.run(asyncio.wait_for(coro, secs))

MP_STREAM_POLL, MP_STREAM_GET_FILENO = 3, 10
POLLIN, POLLOUT = 1, 4


class Uart:
    """A UART as MicroPython's drivers look to asyncio: no fd, ioctl() says
    what is ready; read() gives None while nothing came. Logs its calls."""

    def __init__(self, rx=b""):
        self.rx, self.eof, self.log, self.polls = rx, False, [], 0
        self.writable = True

    def ioctl(self, req, arg):
        if req != MP_STREAM_POLL:
            self.log.append(("ioctl", req, arg))
            return -1
        self.polls += 1
        return (arg & POLLIN if self.rx or self.eof else 0) | (arg & POLLOUT if self.writable else 0)

    def read(self, n=-1):
        self.log.append(("read", n))
        if not self.rx:
            return b"" if self.eof else None
        n = len(self.rx) if n < 0 else n
        r, self.rx = self.rx[:n], self.rx[n:]
        return r

    def readline(self):
        self.log.append(("readline",))
        i = self.rx.find(b"\n")
        r, self.rx = self.rx[:i + 1], self.rx[i + 1:]
        return r

    def write(self, data):
        self.log.append(("write", bytes(data)))
        return len(data)

    def close(self):
        self.log.append(("close",))


# What MicroPython v1.28 prints for this program (checked on the reference):
# each read waits first (the object is asked for an fd, then polled), write()
# writes at once, drain() waits before each write of what is left.
UART_PROGRAM = '''
import asyncio
import io

class Uart(io.IOBase):   # (MicroPython polls io.IOBase objects only)
    def __init__(self, log, rx, room):
        self.log, self.rx, self.room, self.eof = log, rx, list(room), False
    def ioctl(self, req, arg):
        if not self.log or self.log[-1] != ("ioctl", req, arg):   # a wait may ask many times
            self.log.append(("ioctl", req, arg))
        if req != 3:
            return -1
        return (arg & 1 if self.rx or self.eof else 0) | (arg & 4)
    def read(self, n=-1):
        self.log.append(("read", n))
        if not self.rx:
            return b"" if self.eof else None
        n = len(self.rx) if n < 0 else n
        r, self.rx = self.rx[:n], self.rx[n:]
        return r
    def readline(self):
        self.log.append(("readline",))
        i = self.rx.find(b"\\n")
        r, self.rx = self.rx[:i + 1], self.rx[i + 1:]
        return r
    def readinto(self, buf):
        self.log.append(("readinto", len(buf)))
        n = min(len(buf), len(self.rx))
        buf[:n] = self.rx[:n]
        self.rx = self.rx[n:]
        return n
    def write(self, data):
        take = self.room.pop(0) if self.room else len(data)
        self.log.append(("write", bytes(data), take))
        return None if take is None else min(take, len(data))
    def close(self):
        self.log.append(("close",))

async def feed(u):
    await asyncio.sleep_ms(30)
    u.rx += b"late"
    await asyncio.sleep_ms(30)
    u.rx += b"!"
    u.eof = True

async def main():
    log = []
    u = Uart(log, b"hello\\nworld\\n", room=[None, 2, 10])
    s = asyncio.StreamReader(u)
    log.append(await s.readline())
    s.write(b"abcde")
    log.append("drain")
    await s.drain()
    log.append(await s.read(2))
    b = bytearray(2)
    log.append(await s.readinto(b))
    log.append(bytes(b))
    asyncio.create_task(feed(u))
    log.append(await s.readexactly(6))
    log.append(await s.read(-1))
    await s.wait_closed()
    for x in log:
        print(x)

asyncio.run(main())
'''

UART_OUTPUT = """\
('ioctl', 10, 0)
('ioctl', 3, 1)
('readline',)
b'hello\\n'
('write', b'abcde', None)
drain
('ioctl', 10, 0)
('ioctl', 3, 4)
('write', b'abcde', 2)
('ioctl', 10, 0)
('ioctl', 3, 4)
('write', b'cde', 10)
('ioctl', 10, 0)
('ioctl', 3, 1)
('read', 2)
b'wo'
('ioctl', 10, 0)
('ioctl', 3, 1)
('readinto', 2)
2
b'rl'
('ioctl', 10, 0)
('ioctl', 3, 1)
('read', 6)
('ioctl', 10, 0)
('ioctl', 3, 1)
('read', 4)
b'd\\nlate'
('ioctl', 10, 0)
('ioctl', 3, 1)
('read', -1)
('ioctl', 10, 0)
('ioctl', 3, 1)
('read', -1)
b'!'
('close',)
"""


def test_a_uart_is_called_as_micropython_calls_it(tmp_path):
    p = run_program(tmp_path, UART_PROGRAM, runner=("-m", "uasyncio.v3"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == UART_OUTPUT


def test_waiting_on_an_object_polls_it_without_spinning(aio):
    """While a task waits on an object without an fd, the loop asks it each
    pass and waits in epoll at most 1 ms between passes (as MicroPython's
    unix port): some dozens of asks in 50 ms, not a busy loop's many
    thousands."""
    u = Uart()

    async def feeder():
        await asyncio.sleep(0.05)
        u.rx = b"data"

    async def main():
        asyncio.create_task(feeder())
        return await asyncio.StreamReader(u).read(10)

    assert run(main()) == b"data"
    assert 0 < u.polls < 1000


def test_a_stream_over_an_object_without_an_ioctl_needs_a_fileno(aio):
    class NoPoll:
        def read(self, n):
            return b"x"

    async def main():
        with pytest.raises(TypeError):
            await asyncio.Stream(NoPoll()).read(1)

    run(main())


def test_an_ioctl_that_raises_raises_in_the_waiting_tasks(aio):
    class Broken(Uart):
        def ioctl(self, req, arg):
            if req == MP_STREAM_POLL:
                raise OSError(5, "device gone")
            return -1

    async def main():
        s = asyncio.Stream(Broken())
        reader = asyncio.create_task(s.read(1))
        s.write(b"x")   # (Uart.write takes it: drain waits for nothing)
        with pytest.raises(OSError, match="device gone"):
            await reader

    run(main())


def test_a_read_and_a_drain_wait_on_one_object_at_once(aio):
    class Full(Uart):
        def write(self, data):
            return len(data) if self.writable else None   # None: nothing taken now

    u = Full()
    u.writable = False

    async def main():
        s = asyncio.Stream(u)
        s.write(b"out")                       # nothing taken: buffered
        reader = asyncio.create_task(s.read(5))
        drainer = asyncio.create_task(s.drain())
        await asyncio.sleep_ms(20)
        assert not reader.done() and not drainer.done()
        u.rx, u.writable = b"in", True        # both ready at the next poll
        return await reader, await drainer, s.buffered

    assert run(main()) == (b"in", None, 0)


def test_cancelling_a_wait_on_an_object_stops_polling_it(aio):
    u = Uart()

    async def main():
        task = asyncio.create_task(asyncio.Stream(u).read(1))
        await asyncio.sleep_ms(10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        polls = u.polls
        await asyncio.sleep_ms(20)
        return polls

    polls = run(main())
    assert u.polls == polls   # no more asks once nobody waits
    asyncio.run_until_complete()   # and nothing is left to wait for


def test_wait_closed_wakes_a_task_waiting_on_the_object(aio):
    u = Uart()

    async def main():
        s = asyncio.Stream(u)
        task = asyncio.create_task(s.read(1))
        await asyncio.sleep_ms(10)
        await s.wait_closed()
        with pytest.raises(OSError):
            await task
        return u.log[-1]

    assert run(main()) == ("close",)


def test_an_fd_from_ioctl_get_fileno_is_polled(aio):
    """As MicroPython's unix port: an object whose ioctl(MP_STREAM_GET_FILENO)
    gives an fd is polled through that fd."""
    import socket
    a, b = socket.socketpair()

    class OverFd(Uart):
        def ioctl(self, req, arg):
            if req == MP_STREAM_GET_FILENO:
                return a.fileno()
            raise AssertionError("polled through its fd, not asked")

        def read(self, n=-1):
            return a.recv(n)

    async def main():
        task = asyncio.create_task(asyncio.Stream(OverFd()).read(5))
        await asyncio.sleep_ms(10)
        b.send(b"hello")
        return await task

    try:
        assert run(main()) == b"hello"
    finally:
        a.close()
        b.close()


# ---- subclasses -------------------------------------------------------------------


class LineDevice(asyncio.Stream):
    """As MicroPython libraries subclass Stream: their own __init__, which
    calls Stream's."""

    def __init__(self, name, uart):
        super().__init__(uart, e={"name": name})
        self.name = name

    async def command(self, cmd):
        self.write(cmd + b"\n")
        await self.drain()
        return await self.readline()


def test_a_stream_subclass_with_its_own_init(aio):
    u = Uart(b"OK\n")

    async def main():
        dev = LineDevice("modem", u)
        return (await dev.command(b"AT"), dev.name, dev.get_extra_info("name"), dev.s is u,
                isinstance(dev, asyncio.StreamReader))

    assert run(main()) == (b"OK\n", "modem", "modem", True, True)
    assert ("write", b"AT\n") in u.log


def test_a_subclass_that_skips_stream_init_gets_attributeerror(aio):
    class Lazy(asyncio.Stream):
        def __init__(self):
            pass

    async def main():
        lazy = Lazy()
        assert "not initialized" in repr(lazy)
        with pytest.raises(AttributeError):
            lazy.write(b"x")
        with pytest.raises(AttributeError):
            await lazy.read(1)
        with pytest.raises(AttributeError):
            lazy.s

    run(main())


def test_s_and_e_are_plain_attributes_as_in_micropython(aio):
    first, second = Uart(b"one\n"), Uart(b"two\n")

    async def main():
        s = asyncio.Stream(first)
        line1 = await s.readline()
        s.s = second
        s.e = {"peername": "uart2"}
        return line1, await s.readline(), s.get_extra_info("peername")

    assert run(main()) == (b"one\n", b"two\n", "uart2")


def test_stream_init_may_be_called_again(aio):
    async def main():
        s = asyncio.Stream(Uart(b"a\n"))
        s.__init__(Uart(b"b\n"), {"k": 1})
        return await s.readline(), s.get_extra_info("k")

    assert run(main()) == (b"b\n", 1)


def test_an_io_iobase_double_without_fileno_is_polled_through_ioctl(aio):
    """io.IOBase's fileno() raises (UnsupportedOperation): ioctl() it is."""
    class Dev(io.IOBase):
        def ioctl(self, req, arg):
            return arg if req == MP_STREAM_POLL else -1

        def read(self, n=-1):
            return b"iobase"

    async def main():
        return await asyncio.Stream(Dev()).read(6)

    assert run(main()) == b"iobase"


def test_write_hands_an_object_the_callers_buffer_and_queues_what_it_did_not_take():
    """As MicroPython's Stream.write(): the object's write() gets the very
    buffer (a bytearray stays one); None (blocked) or a short count queues
    the rest for drain(), without a second write() now."""
    class Sink:
        def __init__(self, answers):
            self.answers, self.given = list(answers), []

        def write(self, data):
            self.given.append(data)
            return self.answers.pop(0)

    buf = bytearray(b"5678")
    sink = Sink([None, 2])
    s = asyncio.StreamWriter(sink, None)
    s.write(buf)
    assert sink.given == [buf] and sink.given[0] is buf
    t = Sink([1])
    s = asyncio.StreamWriter(t, None)
    s.write(b"ab")
    assert t.given == [b"ab"]


@pytest.mark.parametrize("how", ["write", "awrite"])
def test_an_objects_write_that_moves_the_stream_to_another_object_and_fails(how):
    """write() re-inits the stream over another object (the stream lets go
    of this one) and gives a count past what it was given: the ValueError
    names the object, which must still be alive when it is made."""
    state = {"gone": False, "repr_after_gone": None}

    class Other:
        def write(self, data):
            return len(data)

    class Dev:
        def write(self, data):
            s.__init__(Other())
            return 10 ** 6

        def __repr__(self):
            state["repr_after_gone"] = state["gone"]
            return "<Dev>"

        def __del__(self):
            state["gone"] = True

    s = asyncio.Stream(Dev())   # only the stream holds it

    async def main():
        with pytest.raises(ValueError, match="<Dev>.write"):
            if how == "write":
                s.write(b"abc")
            else:
                await s.awrite(b"abc")
        return state

    assert run(main()) == {"gone": True, "repr_after_gone": False}
