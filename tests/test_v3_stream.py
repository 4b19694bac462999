"""uasyncio.v3 streams over real sockets on 127.0.0.1: Stream's reads,
write + drain, the legacy awrite/aclose, start_server's Server, many
clients, cancellation in a read and in drain, and what each leaves behind."""
import hashlib
import os
import socket
import threading

import pytest

import uasyncio.v3 as asyncio
from conftest import no_fd_leaked
from v3util import echo_lines

HOST = "127.0.0.1"


@pytest.fixture
def aio():
    """uasyncio.v3 on a new default loop, closed afterwards; no fd may leak."""
    with no_fd_leaked():
        loop = asyncio.new_event_loop()
        yield asyncio
        loop.close()
        del loop
        asyncio.new_event_loop().close()


def run(coro, secs=30):
    """asyncio.run(coro), failing with TimeoutError after secs."""
    return asyncio.run(asyncio.wait_for(coro, secs))


async def serve(cb, **kw):
    """A started server on a port the kernel picks; returns (server, port)."""
    srv = await asyncio.start_server(cb, HOST, 0, **kw)
    return srv, srv.socket.getsockname()[1]


def send_and_close(data):
    """A handler that sends data, then closes."""
    async def handler(reader, writer):
        writer.write(data)
        await writer.drain()
        await writer.wait_closed()
    return handler


# ---- the class -----------------------------------------------------------------


def test_reader_and_writer_are_one_stream_class():
    assert asyncio.StreamReader is asyncio.Stream
    assert asyncio.StreamWriter is asyncio.Stream
    with pytest.raises(TypeError):
        asyncio.Stream()   # s is needed


def test_a_stream_over_an_object_that_cannot_be_waited_for_raises_in_the_task(aio):
    async def main():
        s = asyncio.Stream(object())   # no fileno(), no ioctl(): accepted, as MicroPython
        with pytest.raises(TypeError):
            await s.read(1)

    aio.run(main())


def test_echo_with_readline_write_drain(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        assert reader is writer
        got = []
        for i in range(5):
            writer.write(b"line %d\n" % i)
            await writer.drain()
            got.append(await reader.readline())
        assert writer.get_extra_info("peername") == (HOST, port)
        writer.close()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got

    assert run(main()) == [b"line %d\n" % i for i in range(5)]


def test_peername_on_the_server_side_is_the_client_address(aio):
    seen = []

    async def handler(reader, writer):
        seen.append(writer.get_extra_info("peername"))
        await writer.wait_closed()

    async def main():
        srv, port = await serve(handler)
        reader, writer = await aio.open_connection(HOST, port)
        sockname = writer.get_extra_info("socket").getsockname()
        assert await reader.read(-1) == b""
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return sockname

    assert seen == [run(main())]


def test_get_extra_info_unknown_name_raises_keyerror_unless_a_default_is_given(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(KeyError):
            writer.get_extra_info("nonsense")
        assert writer.get_extra_info("nonsense", 42) == 42
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())


# ---- reading ----------------------------------------------------------------------


def test_read_minus_one_reads_to_the_end_of_the_stream(aio):
    data = os.urandom(1 << 20)

    async def main():
        srv, port = await serve(send_and_close(data))
        reader, writer = await aio.open_connection(HOST, port)
        got = await reader.read(-1)
        again = await reader.read()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got, again

    got, again = run(main())
    assert got == data and again == b""


def test_read_n_returns_at_most_n_bytes_then_empty_at_the_end(aio):
    async def main():
        srv, port = await serve(send_and_close(b"abcdefghij"))
        reader, writer = await aio.open_connection(HOST, port)
        parts = []
        while True:
            part = await reader.read(4)
            assert len(part) <= 4
            if not part:
                break
            parts.append(part)
        assert await reader.read(0) == b""
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return b"".join(parts)

    assert run(main()) == b"abcdefghij"


def test_readexactly_gives_n_bytes_then_eoferror_when_the_stream_ends_first(aio):
    async def main():
        srv, port = await serve(send_and_close(b"0123456789"))
        reader, writer = await aio.open_connection(HOST, port)
        first = await reader.readexactly(4)
        empty = await reader.readexactly(0)
        with pytest.raises(EOFError):
            await reader.readexactly(10)
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return first, empty

    assert run(main()) == (b"0123", b"")


def test_readexactly_negative_is_a_valueerror(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(ValueError):
            reader.readexactly(-1)
        with pytest.raises(TypeError):
            reader.readexactly("3")
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())


def test_readinto_fills_the_buffer_and_returns_zero_at_the_end(aio):
    data = bytes(range(256)) * 400

    async def main():
        srv, port = await serve(send_and_close(data))
        reader, writer = await aio.open_connection(HOST, port)
        buf = bytearray(1000)
        out = bytearray()
        while True:
            n = await reader.readinto(buf)
            if not n:
                break
            out += buf[:n]
        # into a memoryview, after something was buffered by readline
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return bytes(out)

    assert run(main()) == data


def test_readinto_after_readline_takes_the_buffered_rest_first(aio):
    async def main():
        srv, port = await serve(send_and_close(b"head\nrest of it"))
        reader, writer = await aio.open_connection(HOST, port)
        line = await reader.readline()
        buf = bytearray(64)
        n = await reader.readinto(memoryview(buf)[2:])
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return line, bytes(buf[2:2 + n])

    line, rest = run(main())
    assert line == b"head\n"
    assert b"rest of it".startswith(rest) and rest


def test_readline_gives_the_partial_line_at_the_end_then_empty(aio):
    async def main():
        srv, port = await serve(send_and_close(b"one\ntwo\nthree"))
        reader, writer = await aio.open_connection(HOST, port)
        lines = [await reader.readline() for _ in range(5)]
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return lines

    assert run(main()) == [b"one\n", b"two\n", b"three", b"", b""]


def test_a_long_line_arrives_whole(aio):
    line = b"x" * (3 << 20) + b"\n"

    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(line)
        await writer.drain()
        got = await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got

    assert run(main()) == line


# ---- writing ----------------------------------------------------------------------


def test_write_and_drain_4_mb_arrive_intact(aio):
    data = os.urandom(4 << 20)
    digest = []

    async def handler(reader, writer):
        got = await reader.readexactly(len(data))
        digest.append(hashlib.sha256(got).hexdigest())
        writer.write(b"ok\n")
        await writer.drain()
        await writer.wait_closed()

    async def main():
        srv, port = await serve(handler)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(data)
        pending = writer.buffered            # what the kernel did not take at once
        await writer.drain()
        assert writer.buffered == 0
        answer = await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return pending, answer

    pending, answer = run(main())
    assert answer == b"ok\n"
    assert 0 < pending < len(data)
    assert digest == [hashlib.sha256(data).hexdigest()]


def test_write_accepts_str_and_bytes_like(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write("é\n")
        writer.write(bytearray(b"b\n"))
        writer.write(memoryview(b"xxc\n")[2:])
        await writer.drain()
        lines = [await reader.readline() for _ in range(3)]
        with pytest.raises(TypeError):
            writer.write(42)
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return lines

    assert run(main()) == ["é\n".encode(), b"b\n", b"c\n"]


def test_drain_yields_to_other_tasks_even_with_nothing_to_send(aio):
    order = []

    async def other():
        order.append("other")

    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        aio.create_task(other())
        writer.write(b"x\n")
        await writer.drain()
        order.append("drained")
        await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())
    assert order == ["other", "drained"]


def test_legacy_awrite_awritestr_and_aclose(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        await writer.awrite(b"--abc\n--", 2, 4)
        await writer.awritestr("def\n")
        await writer.awrite(b"ghi\n")
        lines = [await reader.readline() for _ in range(3)]
        with pytest.raises(ValueError):
            writer.awrite(b"abc", 2, 5)
        await writer.aclose()
        srv.close()
        await srv.wait_closed()
        return lines

    assert run(main()) == [b"abc\n", b"def\n", b"ghi\n"]


def test_write_after_wait_closed_raises_oserror(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        writer.close()               # as MicroPython: wait_closed() closes
        writer.write(b"still open\n")
        await writer.drain()
        assert await reader.readline() == b"still open\n"
        await writer.wait_closed()
        with pytest.raises(OSError):
            writer.write(b"x")
        with pytest.raises(OSError):
            await reader.readline()
        await writer.wait_closed()   # twice is harmless
        srv.close()
        await srv.wait_closed()

    run(main())


def test_a_stream_op_cannot_be_awaited_twice(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(b"a\n")
        op = reader.readline()
        assert await op == b"a\n"
        with pytest.raises(RuntimeError):
            await op
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())


# ---- many clients --------------------------------------------------------------------


def test_many_clients_at_once(aio):
    n_clients, rounds = 100, 20

    async def client(port, i):
        reader, writer = await aio.open_connection(HOST, port)
        for r in range(rounds):
            msg = b"%d:%d\n" % (i, r)
            writer.write(msg)
            await writer.drain()
            assert await reader.readline() == msg
        await writer.wait_closed()
        return i

    async def main():
        srv, port = await serve(echo_lines, backlog=128)
        done = await aio.gather(*[client(port, i) for i in range(n_clients)])
        srv.close()
        await srv.wait_closed()
        return done

    assert run(main(), 60) == list(range(n_clients))


# ---- the server -------------------------------------------------------------------------


def test_server_async_with_closes_the_listening_socket(aio):
    async def main():
        srv, port = await serve(echo_lines)
        async with srv:
            reader, writer = await aio.open_connection(HOST, port)
            writer.write(b"hi\n")
            await writer.drain()
            assert await reader.readline() == b"hi\n"
            await writer.wait_closed()
        assert srv.task.done()
        with pytest.raises(OSError):
            await aio.open_connection(HOST, port)

    run(main())


def test_a_failing_handler_does_not_end_the_server(aio):
    errors = []
    calls = []

    async def handler(reader, writer):
        calls.append(1)
        if len(calls) == 1:
            await writer.wait_closed()
            raise RuntimeError("handler failed")
        await echo_lines(reader, writer)

    async def main():
        aio.get_event_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx["exception"]))
        srv, port = await serve(handler)
        reader, writer = await aio.open_connection(HOST, port)
        assert await reader.read() == b""
        await writer.wait_closed()
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(b"still serving\n")
        await writer.drain()
        line = await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return line

    assert run(main()) == b"still serving\n"
    assert [type(e) for e in errors] == [RuntimeError]


def test_a_handler_that_is_not_a_coroutine_function_does_not_end_the_server(aio):
    errors = []

    def not_async(reader, writer):
        return None

    async def main():
        aio.get_event_loop().set_exception_handler(lambda loop, ctx: errors.append(ctx["exception"]))
        srv, port = await serve(not_async)
        for _ in range(2):
            reader, writer = await aio.open_connection(HOST, port)
            assert await reader.read() == b""   # that connection is closed
            await writer.wait_closed()
        assert not srv.task.done()
        srv.close()
        await srv.wait_closed()

    run(main())
    assert [type(e) for e in errors] == [TypeError, TypeError]


def test_cancelling_the_task_that_awaits_the_server_cancels_it(aio):
    async def main():
        srv, port = await serve(echo_lines)
        waiter = aio.create_task(srv.wait_closed())
        await aio.sleep_ms(10)
        srv.task.cancel()
        with pytest.raises(aio.CancelledError):
            await waiter
        with pytest.raises(OSError):
            await aio.open_connection(HOST, port)

    run(main())


def test_start_server_on_a_busy_port_raises_oserror(aio):
    busy = socket.socket()
    busy.bind((HOST, 0))
    busy.listen(1)

    async def main():
        with pytest.raises(OSError):
            await aio.start_server(echo_lines, HOST, busy.getsockname()[1])

    try:
        run(main())
    finally:
        busy.close()


def test_open_connection_refused_raises_oserror(aio):
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()

    async def main():
        with pytest.raises(OSError):
            await aio.open_connection(HOST, port)

    run(main())


# ---- cancellation ------------------------------------------------------------------------


def test_cancelling_a_read_loses_no_data(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(b"part")                 # no newline yet: readline waits
        await writer.drain()
        t = aio.create_task(reader.readline())
        await aio.sleep_ms(50)
        t.cancel()
        with pytest.raises(aio.CancelledError):
            await t
        writer.write(b" whole\n")
        await writer.drain()
        line = await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return line

    assert run(main()) == b"part whole\n"


def test_wait_for_a_read_times_out_and_the_stream_still_works(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port)
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(reader.readexactly(3), 0.05)
        writer.write(b"abc\n")
        await writer.drain()
        got = await reader.readexactly(4)
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return got

    assert run(main()) == b"abc\n"


def test_cancelling_drain_keeps_what_was_not_sent(aio):
    # A peer that reads nothing: drain waits for the kernel's buffers forever.
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(lsock.accept()[0]))
    t.start()

    async def main():
        reader, writer = await aio.open_connection(HOST, port)
        writer.write(os.urandom(16 << 20))
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(writer.drain(), 0.2)
        left = writer.buffered
        await writer.wait_closed()
        return left

    try:
        left = run(main())
    finally:
        t.join(10)
        for s in accepted:
            s.close()
        lsock.close()
    assert left > 0


# ---- line limit (beyond MicroPython: as 2.0's limit=) ----------------------------

def test_start_server_limit_raises_in_that_handler_only_and_keeps_serving(aio):
    seen = []

    async def handler(reader, writer):
        try:
            seen.append(await reader.readline())
        except asyncio.LimitOverrunError as e:
            seen.append(("over", e.limit))
        writer.write(b"bye\n")
        await writer.drain()
        await writer.wait_closed()

    async def main():
        srv, port = await serve(handler, limit=1000)
        for line in (b"x" * 5000 + b"\n", b"short\n"):
            reader, writer = await aio.open_connection(HOST, port)
            writer.write(line)
            await writer.drain()
            assert await reader.readline() == b"bye\n"
            await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())
    assert seen == [("over", 1000), b"short\n"]
    assert issubclass(asyncio.LimitOverrunError, ValueError)


def test_open_connection_limit_applies_to_the_client_stream(aio):
    async def main():
        srv, port = await serve(echo_lines)
        reader, writer = await aio.open_connection(HOST, port, limit=100)
        writer.write(b"y" * 500 + b"\n")
        await writer.drain()
        with pytest.raises(asyncio.LimitOverrunError, match="100"):
            await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())


@pytest.mark.parametrize("bad, exc", [("10", TypeError), (0, ValueError), (-5, ValueError)])
def test_a_bad_limit_is_refused_before_any_socket(aio, bad, exc):
    async def main():
        with pytest.raises(exc, match="limit"):
            await aio.open_connection(HOST, 9, limit=bad)   # no connect is tried
        with pytest.raises(exc, match="limit"):
            await aio.start_server(echo_lines, HOST, 0, limit=bad)

    run(main())
