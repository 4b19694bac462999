"""uasyncio.v3 streams over real sockets on 127.0.0.1: Stream's reads,
write + drain, the legacy awrite/aclose, start_server's Server, many
clients, cancellation in a read and in drain, and what each leaves behind.
Each test runs on a fresh loop (the pytest plugin's marker)."""
import hashlib
import os
import socket
import ssl
import threading

import pytest

import uasyncio.v3 as asyncio
from conftest import no_fd_leaked
from netutil import scripted_ssl_socket
from v3util import echo_lines

HOST = "127.0.0.1"

pytestmark = pytest.mark.uasyncio(timeout=30)


@pytest.fixture(autouse=True)
def no_fd_leak(uasyncio_loop):
    """No test may leave a file descriptor open (the loop's are older)."""
    with no_fd_leaked():
        yield


async def serve(cb, **kw):
    """A started server on a port the kernel picks; returns (server, port)."""
    srv = await asyncio.start_server(cb, HOST, 0, **kw)
    return srv, srv.socket.getsockname()[1]


@pytest.fixture
async def echo_port():
    """The port of an echo_lines server, closed (and waited for) afterwards."""
    srv, port = await serve(echo_lines)
    yield port
    srv.close()
    await srv.wait_closed()


def send_and_close(data):
    """A handler that sends data, then closes."""
    async def handler(reader, writer):
        writer.write(data)
        await writer.drain()
        await writer.wait_closed()
    return handler


async def stopped(srv):
    srv.close()
    await srv.wait_closed()


# ---- the class -----------------------------------------------------------------


def test_reader_and_writer_are_one_stream_class():
    assert asyncio.StreamReader is asyncio.Stream
    assert asyncio.StreamWriter is asyncio.Stream
    with pytest.raises(TypeError):
        asyncio.Stream()   # s is needed


async def test_a_stream_over_an_object_that_cannot_be_waited_for_raises_in_the_task():
    s = asyncio.Stream(object())   # no fileno(), no ioctl(): accepted, as MicroPython
    with pytest.raises(TypeError):
        await s.read(1)


async def test_echo_with_readline_write_drain(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    assert reader is writer
    got = []
    for i in range(5):
        writer.write(b"line %d\n" % i)
        await writer.drain()
        got.append(await reader.readline())
    assert writer.get_extra_info("peername") == (HOST, echo_port)
    writer.close()
    await writer.wait_closed()
    assert got == [b"line %d\n" % i for i in range(5)]


async def test_peername_on_the_server_side_is_the_client_address():
    seen = []

    async def handler(reader, writer):
        seen.append(writer.get_extra_info("peername"))
        await writer.wait_closed()

    srv, port = await serve(handler)
    reader, writer = await asyncio.open_connection(HOST, port)
    sockname = writer.get_extra_info("socket").getsockname()
    assert await reader.read(-1) == b""
    await writer.wait_closed()
    await stopped(srv)
    assert seen == [sockname]


async def test_get_extra_info_unknown_name_raises_keyerror_unless_a_default_is_given(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    with pytest.raises(KeyError):
        writer.get_extra_info("nonsense")
    assert writer.get_extra_info("nonsense", 42) == 42
    await writer.wait_closed()


# ---- reading ----------------------------------------------------------------------


async def test_read_minus_one_reads_to_the_end_of_the_stream():
    data = os.urandom(1 << 20)
    srv, port = await serve(send_and_close(data))
    reader, writer = await asyncio.open_connection(HOST, port)
    got = await reader.read(-1)
    again = await reader.read()
    await writer.wait_closed()
    await stopped(srv)
    assert got == data and again == b""


async def test_read_n_returns_at_most_n_bytes_then_empty_at_the_end():
    srv, port = await serve(send_and_close(b"abcdefghij"))
    reader, writer = await asyncio.open_connection(HOST, port)
    parts = []
    while True:
        part = await reader.read(4)
        assert len(part) <= 4
        if not part:
            break
        parts.append(part)
    assert await reader.read(0) == b""
    await writer.wait_closed()
    await stopped(srv)
    assert b"".join(parts) == b"abcdefghij"


async def test_readexactly_gives_n_bytes_then_eoferror_when_the_stream_ends_first():
    srv, port = await serve(send_and_close(b"0123456789"))
    reader, writer = await asyncio.open_connection(HOST, port)
    assert await reader.readexactly(4) == b"0123"
    assert await reader.readexactly(0) == b""
    with pytest.raises(EOFError):
        await reader.readexactly(10)
    await writer.wait_closed()
    await stopped(srv)


async def test_readexactly_negative_is_a_valueerror(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    with pytest.raises(ValueError):
        reader.readexactly(-1)
    with pytest.raises(TypeError):
        reader.readexactly("3")
    await writer.wait_closed()


async def test_readinto_fills_the_buffer_and_returns_zero_at_the_end():
    data = bytes(range(256)) * 400
    srv, port = await serve(send_and_close(data))
    reader, writer = await asyncio.open_connection(HOST, port)
    buf = bytearray(1000)
    out = bytearray()
    while True:
        n = await reader.readinto(buf)
        if not n:
            break
        out += buf[:n]
    await writer.wait_closed()
    await stopped(srv)
    assert bytes(out) == data


async def test_readinto_after_readline_takes_the_buffered_rest_first():
    srv, port = await serve(send_and_close(b"head\nrest of it"))
    reader, writer = await asyncio.open_connection(HOST, port)
    line = await reader.readline()
    buf = bytearray(64)
    n = await reader.readinto(memoryview(buf)[2:])   # into a memoryview
    rest = bytes(buf[2:2 + n])
    await writer.wait_closed()
    await stopped(srv)
    assert line == b"head\n"
    assert b"rest of it".startswith(rest) and rest


async def test_readline_gives_the_partial_line_at_the_end_then_empty():
    srv, port = await serve(send_and_close(b"one\ntwo\nthree"))
    reader, writer = await asyncio.open_connection(HOST, port)
    lines = [await reader.readline() for _ in range(5)]
    await writer.wait_closed()
    await stopped(srv)
    assert lines == [b"one\n", b"two\n", b"three", b"", b""]


async def test_a_long_line_arrives_whole(echo_port):
    line = b"x" * (3 << 20) + b"\n"
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    writer.write(line)
    await writer.drain()
    assert await reader.readline() == line
    await writer.wait_closed()


# ---- writing ----------------------------------------------------------------------


async def test_write_and_drain_4_mb_arrive_intact():
    data = os.urandom(4 << 20)
    digest = []

    async def handler(reader, writer):
        got = await reader.readexactly(len(data))
        digest.append(hashlib.sha256(got).hexdigest())
        writer.write(b"ok\n")
        await writer.drain()
        await writer.wait_closed()

    srv, port = await serve(handler)
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(data)
    pending = writer.buffered            # what the kernel did not take at once
    await writer.drain()
    assert writer.buffered == 0
    answer = await reader.readline()
    await writer.wait_closed()
    await stopped(srv)
    assert answer == b"ok\n"
    assert 0 < pending < len(data)
    assert digest == [hashlib.sha256(data).hexdigest()]


async def test_write_accepts_str_and_bytes_like(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    writer.write("é\n")
    writer.write(bytearray(b"b\n"))
    writer.write(memoryview(b"xxc\n")[2:])
    await writer.drain()
    lines = [await reader.readline() for _ in range(3)]
    with pytest.raises(TypeError):
        writer.write(42)
    await writer.wait_closed()
    assert lines == ["é\n".encode(), b"b\n", b"c\n"]


async def test_drain_yields_to_other_tasks_even_with_nothing_to_send(echo_port):
    order = []

    async def other():
        order.append("other")

    reader, writer = await asyncio.open_connection(HOST, echo_port)
    asyncio.create_task(other())
    writer.write(b"x\n")
    await writer.drain()
    order.append("drained")
    await reader.readline()
    await writer.wait_closed()
    assert order == ["other", "drained"]


async def test_legacy_awrite_awritestr_and_aclose(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    await writer.awrite(b"--abc\n--", 2, 4)
    await writer.awritestr("def\n")
    await writer.awrite(b"ghi\n")
    lines = [await reader.readline() for _ in range(3)]
    with pytest.raises(ValueError):
        writer.awrite(b"abc", 2, 5)
    await writer.aclose()
    assert lines == [b"abc\n", b"def\n", b"ghi\n"]


async def test_write_after_wait_closed_raises_oserror(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
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


async def test_a_stream_op_cannot_be_awaited_twice(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    writer.write(b"a\n")
    op = reader.readline()
    assert await op == b"a\n"
    with pytest.raises(RuntimeError):
        await op
    await writer.wait_closed()


# ---- many clients --------------------------------------------------------------------


@pytest.mark.uasyncio(timeout=60)
async def test_many_clients_at_once():
    n_clients, rounds = 100, 20

    async def client(port, i):
        reader, writer = await asyncio.open_connection(HOST, port)
        for r in range(rounds):
            msg = b"%d:%d\n" % (i, r)
            writer.write(msg)
            await writer.drain()
            assert await reader.readline() == msg
        await writer.wait_closed()
        return i

    srv, port = await serve(echo_lines, backlog=128)
    done = await asyncio.gather(*[client(port, i) for i in range(n_clients)])
    await stopped(srv)
    assert done == list(range(n_clients))


# ---- the server -------------------------------------------------------------------------


async def test_server_async_with_closes_the_listening_socket():
    srv, port = await serve(echo_lines)
    async with srv:
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(b"hi\n")
        await writer.drain()
        assert await reader.readline() == b"hi\n"
        await writer.wait_closed()
    assert srv.task.done()
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


async def test_a_failing_handler_does_not_end_the_server(uasyncio_loop):
    errors = []
    calls = []

    async def handler(reader, writer):
        calls.append(1)
        if len(calls) == 1:
            await writer.wait_closed()
            raise RuntimeError("handler failed")
        await echo_lines(reader, writer)

    uasyncio_loop.set_exception_handler(lambda loop, ctx: errors.append(ctx["exception"]))
    srv, port = await serve(handler)
    reader, writer = await asyncio.open_connection(HOST, port)
    assert await reader.read() == b""
    await writer.wait_closed()
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(b"still serving\n")
    await writer.drain()
    assert await reader.readline() == b"still serving\n"
    await writer.wait_closed()
    await stopped(srv)
    assert [type(e) for e in errors] == [RuntimeError]


async def test_a_handler_that_is_not_a_coroutine_function_does_not_end_the_server(uasyncio_loop):
    errors = []

    def not_async(reader, writer):
        return None

    uasyncio_loop.set_exception_handler(lambda loop, ctx: errors.append(ctx["exception"]))
    srv, port = await serve(not_async)
    for _ in range(2):
        reader, writer = await asyncio.open_connection(HOST, port)
        assert await reader.read() == b""   # that connection is closed
        await writer.wait_closed()
    assert not srv.task.done()
    await stopped(srv)
    assert [type(e) for e in errors] == [TypeError, TypeError]


async def test_cancelling_the_task_that_awaits_the_server_cancels_it():
    srv, port = await serve(echo_lines)
    waiter = asyncio.create_task(srv.wait_closed())
    await asyncio.sleep_ms(10)
    srv.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


async def test_start_server_on_a_busy_port_raises_oserror():
    with socket.socket() as busy:
        busy.bind((HOST, 0))
        busy.listen(1)
        with pytest.raises(OSError):
            await asyncio.start_server(echo_lines, HOST, busy.getsockname()[1])


async def test_open_connection_refused_raises_oserror():
    s = socket.socket()
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(OSError):
        await asyncio.open_connection(HOST, port)


# ---- cancellation ------------------------------------------------------------------------


async def test_cancelling_a_read_loses_no_data(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    writer.write(b"part")                 # no newline yet: readline waits
    await writer.drain()
    t = asyncio.create_task(reader.readline())
    await asyncio.sleep_ms(50)
    t.cancel()
    with pytest.raises(asyncio.CancelledError):
        await t
    writer.write(b" whole\n")
    await writer.drain()
    assert await reader.readline() == b"part whole\n"
    await writer.wait_closed()


async def test_wait_for_a_read_times_out_and_the_stream_still_works(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(reader.readexactly(3), 0.05)
    writer.write(b"abc\n")
    await writer.drain()
    assert await reader.readexactly(4) == b"abc\n"
    await writer.wait_closed()


@pytest.fixture
def silent_peer():
    """The port of a listener that accepts one connection (in a thread) and
    never reads from it."""
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(1)
    accepted = []
    t = threading.Thread(target=lambda: accepted.append(lsock.accept()[0]))
    t.start()
    yield lsock.getsockname()[1]
    t.join(10)
    for s in accepted:
        s.close()
    lsock.close()


async def test_cancelling_drain_keeps_what_was_not_sent(silent_peer):
    # A peer that reads nothing: drain waits for the kernel's buffers forever.
    reader, writer = await asyncio.open_connection(HOST, silent_peer)
    writer.write(os.urandom(16 << 20))
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(writer.drain(), 0.2)
    assert writer.buffered > 0
    await writer.wait_closed()


# ---- line limit (beyond MicroPython: as 2.0's limit=) ----------------------------

async def test_start_server_limit_raises_in_that_handler_only_and_keeps_serving():
    seen = []

    async def handler(reader, writer):
        try:
            seen.append(await reader.readline())
        except asyncio.LimitOverrunError as e:
            seen.append(("over", e.limit))
        writer.write(b"bye\n")
        await writer.drain()
        await writer.wait_closed()

    srv, port = await serve(handler, limit=1000)
    for line in (b"x" * 5000 + b"\n", b"short\n"):
        reader, writer = await asyncio.open_connection(HOST, port)
        writer.write(line)
        await writer.drain()
        assert await reader.readline() == b"bye\n"
        await writer.wait_closed()
    await stopped(srv)
    assert seen == [("over", 1000), b"short\n"]
    assert issubclass(asyncio.LimitOverrunError, ValueError)


async def test_open_connection_limit_applies_to_the_client_stream(echo_port):
    reader, writer = await asyncio.open_connection(HOST, echo_port, limit=100)
    writer.write(b"y" * 500 + b"\n")
    await writer.drain()
    with pytest.raises(asyncio.LimitOverrunError, match="100"):
        await reader.readline()
    await writer.wait_closed()


@pytest.mark.parametrize("bad, exc", [("10", TypeError), (0, ValueError), (-5, ValueError)])
async def test_a_bad_limit_is_refused_before_any_socket(bad, exc):
    with pytest.raises(exc, match="limit"):
        await asyncio.open_connection(HOST, 9, limit=bad)   # no connect is tried
    with pytest.raises(exc, match="limit"):
        await asyncio.start_server(echo_lines, HOST, 0, limit=bad)


def sent_counts(*answers):
    """send()'s answers for scripted_ssl_socket: each a count, or an exception to raise."""
    answers = list(answers)

    def answer(data):
        a = answers.pop(0)
        if isinstance(a, BaseException):
            raise a
        return a
    return answer


@pytest.mark.parametrize("count", [-1, 11, 2 ** 70], ids=["-1", "11", "2**70"])
def test_a_tls_send_count_outside_what_it_was_given_raises_oserror_in_write_and_drain(count):
    """write() and drain() refuse a count below 0 or above the bytes given:
    it would move the data (or the buffer's front) outside the buffer."""
    s = scripted_ssl_socket(sent_counts(ssl.SSLWantWriteError(), count, count))
    try:
        st = asyncio.Stream(s)
        st.write(b"0123456789")   # would block: kept for drain()
        assert st.buffered == 10
        op = st.drain().__await__()
        with pytest.raises(OSError, match=r"send\(\) returned .* between 0 and 10 "):
            op.send(None)
        assert st.buffered == 10
        with pytest.raises(OSError, match=r"send\(\) returned .* between 0 and 10 "):
            asyncio.Stream(s).write(b"0123456789")
        assert [bytes(v) for v in s.given] == [b"0123456789"] * 3
    finally:
        s.close()
