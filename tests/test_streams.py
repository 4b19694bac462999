"""Streams: open_connection, start_server, StreamReader and StreamWriter
over real TCP sockets on 127.0.0.1 (and StreamReader over other objects).

Every test runs its main coroutine under the loop's own wait_for and a
pytest-timeout mark, so a hang fails the test instead of stalling the run.
The `loop` fixture fails the test if a file descriptor was left open."""
import gc
import hashlib
import io
import os
import socket
import threading

import pytest

import uasyncio
from conftest import run, until  # noqa: F401
from netutil import (HOST, connect, echo_lines, raw_connect, scripted_ssl_socket, serve, set_rst_on_close,
                     stop, thread_connect)

# Faults (resets, refusals, EMFILE, stalls, half-close) are in test_faults.py.


# ---- helpers ----------------------------------------------------------------


def socket_of(writer):
    """The socket behind a writer: get_extra_info("socket") if provided, else writer.s."""
    s = writer.get_extra_info("socket")
    if s is None:
        s = writer.s
    return s


def nodelay_of(s):
    if isinstance(s, int):
        dup = socket.socket(fileno=os.dup(s))
        try:
            return dup.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        finally:
            dup.close()
    return s.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)


def make_collector(store, done):
    """Server handler: read everything until EOF into store, then close."""

    async def collect(reader, writer):
        chunks = []
        while True:
            data = await reader.read(65536)
            if not data:
                break
            chunks.append(data)
        store.append(b"".join(chunks))
        await writer.aclose()
        done.append(1)

    return collect


def make_sender(payload_parts, done, pause_ms=0):
    """Server handler: write the parts (pausing between them), then close."""

    async def send(reader, writer):
        for i, part in enumerate(payload_parts):
            if i and pause_ms:
                await uasyncio.sleep_ms(pause_ms)
            await writer.awrite(part)
        await writer.aclose()
        done.append(1)

    return send


def pattern(n, seed=b"uasyncio streams "):
    """n bytes of a non-repeating-looking pattern."""
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + str(i).encode()).digest()
        i += 1
    return bytes(out[:n])


# ---- echo, read, readline, readexactly -------------------------------------


@pytest.mark.timeout(30)
def test_echo_with_readline(loop):
    done = []

    async def handler(reader, writer):
        await echo_lines(reader, writer)
        done.append(1)

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        got = []
        for line in (b"hello\n", b"second line\n", b"\n", b"x" * 1000 + b"\n"):
            await writer.awrite(line)
            got.append(await reader.readline())
        # Several lines in one write come back one per readline.
        await writer.awrite(b"a\nbb\nccc\n")
        for _ in range(3):
            got.append(await reader.readline())
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return got

    assert run(loop, main()) == [
        b"hello\n", b"second line\n", b"\n", b"x" * 1000 + b"\n", b"a\n", b"bb\n", b"ccc\n",
    ]


@pytest.mark.timeout(30)
def test_read_n_returns_at_most_n_bytes_then_eof(loop):
    payload = b"hello world, this is a stream"
    done = []
    srv, port = serve(loop, make_sender([payload], done))

    async def main():
        reader, writer = await connect(port)
        chunks = []
        while True:
            data = await reader.read(5)
            if not data:
                break
            assert 0 < len(data) <= 5
            chunks.append(data)
        assert await reader.read(5) == b""      # EOF stays EOF
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return b"".join(chunks)

    assert run(loop, main()) == payload


@pytest.mark.timeout(30)
def test_read_without_n_reads_until_eof(loop):
    payload = pattern(300000)
    done = []
    srv, port = serve(loop, make_sender([payload[:1000], payload[1000:]], done, pause_ms=10))

    async def main():
        reader, writer = await connect(port)
        chunks = []
        while True:
            data = await reader.read()
            if not data:
                break
            chunks.append(data)
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return b"".join(chunks)

    assert run(loop, main()) == payload


@pytest.mark.timeout(30)
def test_readexactly_waits_for_all_and_returns_short_data_at_eof(loop):
    done = []
    srv, port = serve(loop, make_sender([b"abc", b"def", b"ghi"], done, pause_ms=20))

    async def main():
        reader, writer = await connect(port)
        first = await reader.readexactly(5)     # spans the first pause
        second = await reader.readexactly(10)   # the stream ends after 4 more bytes
        third = await reader.read(10)
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return first, second, third

    assert run(loop, main()) == (b"abcde", b"fghi", b"")


@pytest.mark.timeout(30)
def test_readline_at_eof_returns_the_partial_line_then_empty(loop):
    done = []
    srv, port = serve(loop, make_sender([b"one\ntw", b"o\nthree"], done, pause_ms=10))

    async def main():
        reader, writer = await connect(port)
        lines = [await reader.readline() for _ in range(5)]
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return lines

    assert run(loop, main()) == [b"one\n", b"two\n", b"three", b"", b""]


# ---- writing ---------------------------------------------------------------


@pytest.mark.timeout(60)
def test_4mb_awrite_arrives_intact_while_the_peer_reads(loop):
    payload = os.urandom(4 * 1024 * 1024)
    result = {}

    async def handler(reader, writer):
        size = int(await reader.readline())
        h = hashlib.sha256()
        got = 0
        reads = 0
        while got < size:
            data = await reader.read(65536)
            if not data:
                break
            h.update(data)
            got += len(data)
            reads += 1
        result["size"], result["reads"] = got, reads
        await writer.awrite(h.hexdigest() + "\n")
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        await writer.awrite(b"%d\n" % len(payload))
        await writer.awrite(payload)      # far more than the socket buffers hold
        digest = await reader.readline()
        assert await reader.read() == b""
        await writer.aclose()
        await stop(srv)
        return digest

    digest = run(loop, main(), 50)
    assert result["size"] == len(payload)
    assert result["reads"] > 1            # it was read concurrently, in pieces
    assert digest == hashlib.sha256(payload).hexdigest().encode() + b"\n"


@pytest.mark.timeout(30)
def test_awrite_with_off_sz_str_bytearray_and_memoryview(loop):
    store, done = [], []
    srv, port = serve(loop, make_collector(store, done))

    async def main():
        reader, writer = await connect(port)
        await writer.awrite(b"0123456789", 2, 3)             # b"234"
        await writer.awrite(b"abcdef", 4)                    # b"ef" (sz=-1: to the end)
        await writer.awrite(b"whole|")
        await writer.awrite("h\u00e9llo \u20ac|")            # str: UTF-8
        await writer.awrite(bytearray(b"bytearray|"))
        await writer.awrite(bytearray(b"XXbaYY"), 2, 2)      # b"ba"
        await writer.awrite(memoryview(b"--memoryview|--")[2:-2])
        await writer.awrite(memoryview(bytearray(b"0123456789")), 7, 3)   # b"789"
        big = pattern(1 << 20)
        await writer.awrite(memoryview(big), 100, len(big) - 200)
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        return big

    big = run(loop, main())
    expected = (b"234" + b"ef" + b"whole|" + "h\u00e9llo \u20ac|".encode("utf-8")
                + b"bytearray|" + b"ba" + b"memoryview|" + b"789" + big[100:-100])
    assert store == [expected]


@pytest.mark.timeout(30)
def test_awriteiter_writes_every_item_in_order(loop):
    store, done = [], []
    srv, port = serve(loop, make_collector(store, done))

    def gen():
        for i in range(100):
            yield b"item %d;" % i

    async def main():
        reader, writer = await connect(port)
        await writer.awriteiter([b"first;", bytearray(b"second;"), b"third;"])
        await writer.awriteiter(gen())
        await writer.awriteiter(iter([pattern(500000)]))
        await writer.awriteiter([])
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)

    run(loop, main())
    expected = (b"first;second;third;" + b"".join(b"item %d;" % i for i in range(100))
                + pattern(500000))
    assert store == [expected]


# ---- many clients ----------------------------------------------------------


@pytest.mark.timeout(120)
def test_200_concurrent_clients_each_get_their_own_echo(loop):
    n = 200
    served = []
    results = {}

    async def handler(reader, writer):
        await echo_lines(reader, writer)
        served.append(1)

    srv, port = serve(loop, handler, backlog=256)

    async def client(i):
        reader, writer = await connect(port)
        got = []
        for j in range(3):
            line = b"client %d line %d %s\n" % (i, j, b"." * (i % 50))
            await writer.awrite(line)
            got.append(await reader.readline() == line)
        await writer.aclose()
        results[i] = got

    async def main():
        for i in range(n):
            loop.create_task(client(i))
        await until(lambda: len(results) == n and len(served) == n, 100)
        await stop(srv)

    run(loop, main(), 110)
    assert sorted(results) == list(range(n))
    assert all(r == [True, True, True] for r in results.values())
    assert len(served) == n


# ---- fairness ----------------------------------------------------------------


@pytest.mark.timeout(90)
def test_a_flooding_client_does_not_starve_a_timer_task(loop):
    total = 20 * 1024 * 1024
    state = {"count": 0, "start": None, "end": None, "got": 0}

    async def handler(reader, writer):
        while state["got"] < total:
            data = await reader.read(4096)
            if not data:
                break
            if state["start"] is None:
                state["start"] = state["count"]
            state["got"] += len(data)
        state["end"] = state["count"]
        await writer.aclose()

    srv, port = serve(loop, handler)
    errors = []

    def flood():
        try:
            s = thread_connect(port)
            try:
                chunk = b"f" * (1024 * 1024)
                for _ in range(total // len(chunk)):
                    s.sendall(chunk)
            finally:
                s.close()
        except Exception as e:  # reported by the test below
            errors.append(e)

    async def counter():
        while state["end"] is None:
            await uasyncio.sleep_ms(1)
            state["count"] += 1

    async def main():
        loop.create_task(counter())
        th = threading.Thread(target=flood, daemon=True)
        th.start()
        try:
            await until(lambda: state["end"] is not None, 80)
        finally:
            th.join(30)
        await stop(srv)
        return th.is_alive()

    assert run(loop, main(), 85) is False
    assert not errors, errors
    assert state["got"] == total
    assert state["end"] - state["start"] >= 3, state


@pytest.mark.timeout(90)
def test_a_10mb_line_is_returned_whole_while_other_tasks_run(loop):
    size = 10 * 1024 * 1024
    body = pattern(size - 1).replace(b"\n", b"n")
    state = {"count": 0, "running": True, "during": None}
    lines = []

    async def handler(reader, writer):
        before = state["count"]
        lines.append(await reader.readline())
        state["during"] = state["count"] - before
        lines.append(await reader.readline())
        await writer.awrite(b"ok\n")
        await writer.aclose()

    srv, port = serve(loop, handler)
    errors = []

    def send():
        try:
            s = thread_connect(port)
            try:
                for i in range(0, len(body), 1 << 20):
                    s.sendall(body[i:i + (1 << 20)])
                s.sendall(b"\nshort\n")
                assert s.recv(10) == b"ok\n"
            finally:
                s.close()
        except Exception as e:  # reported by the test below
            errors.append(e)

    async def counter():
        while state["running"]:
            await uasyncio.sleep_ms(1)
            state["count"] += 1

    async def main():
        loop.create_task(counter())
        th = threading.Thread(target=send, daemon=True)
        th.start()
        try:
            await until(lambda: len(lines) == 2, 80)
        finally:
            th.join(30)
            state["running"] = False
        await stop(srv)
        return th.is_alive()

    assert run(loop, main(), 85) is False
    assert not errors, errors
    assert len(lines[0]) == size
    assert lines[0] == body + b"\n"
    assert lines[1] == b"short\n"
    assert state["during"] >= 1, state


# ---- StreamReader over other objects ---------------------------------------


class MockStream:
    """A readable object with read(n)/readline() and no socket behind it."""

    def __init__(self, data):
        self.bio = io.BytesIO(data)
        self.closed = False
        self.calls = []

    def read(self, n=-1):
        self.calls.append("read")
        return self.bio.read(n)

    def readline(self):
        self.calls.append("readline")
        return self.bio.readline()

    def close(self):
        self.closed = True


@pytest.mark.timeout(30)
def test_stream_reader_over_a_mock_polled_through_a_socketpair(loop):
    a, b = socket.socketpair()
    b.send(b"!")            # keeps `a` readable: it is only polled, never read
    mock = MockStream(b"first line\nsecond line\nrest of it")
    try:
        reader = uasyncio.StreamReader(a, mock)

        async def main():
            out = [await reader.readline(), await reader.read(3),
                   await reader.readline(), await reader.readexactly(4)]
            while True:
                data = await reader.read(100)
                if not data:
                    break
                out.append(data)
            out.append(await reader.readline())
            await reader.aclose()
            return out

        out = run(loop, main())
    finally:
        a.close()
        b.close()
    assert out[:4] == [b"first line\n", b"sec", b"ond line\n", b"rest"]
    assert b"".join(out[4:]) == b" of it"
    assert out[-1] == b""
    assert "read" in mock.calls and "readline" in mock.calls


@pytest.mark.timeout(30)
def test_stream_reader_over_a_regular_file(loop, tmp_path):
    path = tmp_path / "data.bin"
    content = b"line one\nline two\n" + pattern(200000) + b"\ntail"
    path.write_bytes(content)
    with open(path, "rb") as f:
        reader = uasyncio.StreamReader(f)      # polls and ios are the file

        async def main():
            out = [await reader.readline(), await reader.readline(),
                   await reader.readexactly(200000)]
            rest = []
            while True:
                data = await reader.read(4096)
                if not data:
                    break
                rest.append(data)
            out.append(b"".join(rest))
            out.append(await reader.readline())
            return out

        out = run(loop, main())
    assert out == [b"line one\n", b"line two\n", pattern(200000), b"\ntail", b""]


@pytest.mark.timeout(30)
def test_stream_reader_over_a_file_with_separate_ios(loop, tmp_path):
    path = tmp_path / "data.txt"
    path.write_bytes(b"alpha\nbeta\n")
    with open(path, "rb") as polls, open(path, "rb") as ios:
        reader = uasyncio.StreamReader(polls, ios)

        async def main():
            return [await reader.readline(), await reader.read(), await reader.read()]

        out = run(loop, main())
    assert out == [b"alpha\n", b"beta\n", b""]


# ---- extra info, repr, TCP_NODELAY -------------------------------------------


@pytest.mark.timeout(30)
def test_server_side_peername_is_the_clients_address(loop):
    seen = []

    async def handler(reader, writer):
        seen.append(writer.get_extra_info("peername"))
        seen.append(writer.get_extra_info("no such thing"))
        seen.append(writer.get_extra_info("no such thing", "dflt"))
        await reader.read()
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        s = await raw_connect(port)
        local = s.getsockname()
        await until(lambda: seen)
        s.close()
        await until(lambda: len(seen) == 3)
        await uasyncio.sleep_ms(20)
        await stop(srv)
        return local

    local = run(loop, main())
    assert seen[0] == local
    assert isinstance(seen[0], tuple) and seen[0][0] == HOST
    assert seen[1] is None
    assert seen[2] == "dflt"


@pytest.mark.timeout(30)
def test_repr_of_reader_and_writer(loop):
    reprs = []
    done = []

    async def handler(reader, writer):
        reprs.append((repr(reader), repr(writer)))
        await echo_lines(reader, writer)
        done.append(1)

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        reprs.append((repr(reader), repr(writer)))
        await writer.awrite(b"x\n")
        await reader.readline()
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)

    run(loop, main())
    assert len(reprs) == 2
    for r, w in reprs:
        assert r.startswith("<StreamReader") and r.endswith(">"), r
        assert "StreamWriter" in w and w.startswith("<") and w.endswith(">"), w


@pytest.mark.timeout(30)
def test_both_sides_have_tcp_nodelay(loop):
    flags = {}
    done = []

    async def handler(reader, writer):
        flags["server"] = nodelay_of(socket_of(writer))
        await echo_lines(reader, writer)
        done.append(1)

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        flags["client"] = nodelay_of(socket_of(writer))
        await writer.awrite(b"x\n")
        await reader.readline()
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)

    run(loop, main())
    assert flags["server"] != 0
    assert flags["client"] != 0


# ---- bad input, closing ----------------------------------------------------


@pytest.mark.timeout(30)
def test_bad_arguments_raise_in_the_task(loop):
    done = []
    srv, port = serve(loop, make_collector([], done))
    caught = []

    async def main():
        reader, writer = await connect(port)
        with pytest.raises(TypeError):
            await reader.read("x")
        with pytest.raises(TypeError):
            await reader.read(1.5)
        with pytest.raises(ValueError):
            await reader.read(-2)
        with pytest.raises(TypeError):
            await writer.awrite(123)
        with pytest.raises(TypeError):
            await writer.awrite(None)
        with pytest.raises(ValueError):
            await writer.awrite(b"abc", 5)
        with pytest.raises(ValueError):
            await writer.awrite(b"abc", 1, 5)
        # The connection is still fine after the refusals.
        await writer.awrite(b"fine")
        await writer.aclose()
        await until(lambda: done)
        await stop(srv)
        try:
            bad = uasyncio.StreamReader(object())
            await bad.read(10)
        except Exception as e:
            caught.append(e)
        return "survived"

    assert run(loop, main()) == "survived"
    assert len(caught) == 1 and not isinstance(caught[0], uasyncio.CancelledError)
    assert run(loop, uasyncio.sleep_ms(1)) is None   # the loop is still usable


@pytest.mark.timeout(30)
def test_aclose_twice_is_harmless(loop):
    done = []
    store = []
    srv, port = serve(loop, make_collector(store, done))

    async def main():
        reader, writer = await connect(port)
        await writer.awrite(b"bye")
        await writer.aclose()
        await writer.aclose()
        await reader.aclose()
        await reader.aclose()
        await until(lambda: done)
        await stop(srv)
        return "ok"

    assert run(loop, main()) == "ok"
    assert store == [b"bye"]


@pytest.mark.timeout(30)
def test_stopping_the_server_closes_the_listening_socket(loop):
    srv, port = serve(loop, echo_lines)
    refused = []

    async def main():
        reader, writer = await connect(port)
        await writer.awrite(b"x\n")
        assert await reader.readline() == b"x\n"
        await writer.aclose()
        await stop(srv)
        try:
            r2, w2 = await uasyncio.open_connection(HOST, port)
        except OSError as e:
            refused.append(e)
        else:
            await w2.aclose()

    run(loop, main())
    assert len(refused) == 1 and isinstance(refused[0], ConnectionRefusedError)


@pytest.mark.timeout(30)
def test_generator_style_with_yield_from(loop):
    """uasyncio 2.0 style: plain generators and yield from throughout."""
    done = []

    def handler(reader, writer):
        line = yield from reader.readline()
        yield from writer.awrite(b"got " + line)
        yield from writer.aclose()
        done.append(1)

    srv, port = serve(loop, handler)

    def main():
        for _ in range(400):
            try:
                reader, writer = yield from uasyncio.open_connection(HOST, port)
                break
            except ConnectionRefusedError:
                yield from uasyncio.sleep_ms(5)
        yield from writer.awrite(b"old style\n")
        reply = yield from reader.readline()
        rest = yield from reader.read()
        yield from writer.aclose()
        while not done:
            yield from uasyncio.sleep_ms(5)
        uasyncio.cancel(srv)
        yield from uasyncio.sleep_ms(20)
        return reply, rest

    assert run(loop, main()) == (b"got old style\n", b"")


@pytest.mark.timeout(30)
def test_a_connection_reusing_a_closed_connections_fd_is_woken_by_later_data(loop):
    """Closing a connection frees its fd number; the next accepted connection
    usually gets it. Its handler must still be woken when data comes later."""
    done = []

    async def handler(reader, writer):
        await echo_lines(reader, writer)
        done.append(1)

    srv, port = serve(loop, handler)

    async def main():
        replies = []
        for i in range(3):
            reader, writer = await connect(port)
            await uasyncio.sleep_ms(50)       # the handler is parked in readline
            await writer.awrite(b"round %d\n" % i)
            replies.append(await reader.readline())
            await writer.aclose()
            await until(lambda: len(done) == i + 1)
        await stop(srv)
        return replies

    assert run(loop, main(), 20) == [b"round 0\n", b"round 1\n", b"round 2\n"]


# ---- the end of the stream: IOReadDone, as uasyncio 2.0 -------------------------------


def drive(aw, steps=10):
    """Step an awaitable by hand, resuming with None: (what it yielded, its
    result); after steps yields, (what it yielded, "pending")."""
    it = aw.__await__()
    yielded = []
    try:
        while len(yielded) < steps:
            yielded.append(it.send(None))
    except StopIteration as e:
        return yielded, e.value
    return yielded, "pending"


@pytest.mark.parametrize("name, sent, want", [
    ("read", b"", b""),
    ("readline", b"partial", b"partial"),
    ("readexactly", b"short", b"short"),
])
def test_at_the_end_of_a_socket_stream_reads_yield_iorreaddone_first(name, sent, want):
    """At the end of the stream, read(), readline() and readexactly() yield
    IOReadDone(polls) (the loop forgets the object) before returning what is
    left; the next read does the same and gives b""."""
    a, b = socket.socketpair()
    a.setblocking(False)
    b.sendall(sent)
    b.close()
    try:
        reader = uasyncio.StreamReader(a)
        op = {"read": lambda: reader.read(), "readline": reader.readline,
              "readexactly": lambda: reader.readexactly(100)}[name]
        yielded, got = drive(op())
        assert got == want
        assert [type(y) for y in yielded] == [uasyncio.IOReadDone]
        assert yielded[0].arg is a
        yielded, got = drive(op())
        assert got == b"" and [type(y) for y in yielded] == [uasyncio.IOReadDone]
    finally:
        a.close()


def test_reads_that_do_not_reach_the_end_yield_no_ioreaddone():
    a, b = socket.socketpair()
    a.setblocking(False)
    b.sendall(b"line\nmore")
    try:
        reader = uasyncio.StreamReader(a)
        assert drive(reader.readline()) == ([], b"line\n")
        assert drive(reader.read(2)) == ([], b"mo")
        assert drive(reader.readexactly(2)) == ([], b"re")
        yielded, got = drive(reader.read(), steps=3)    # nothing yet: it waits
        assert got == "pending" and [type(y) for y in yielded] == [uasyncio.IORead] * 3
    finally:
        a.close()
        b.close()


def test_at_the_end_of_an_object_stream_reads_yield_ioread_then_ioreaddone():
    """Over an object with read/readline, as 2.0: IORead(polls), the read
    that gives b"", then IOReadDone(polls)."""
    polls = object()
    for name in ("read", "readline", "readexactly"):
        reader = uasyncio.StreamReader(polls, MockStream(b""))
        op = {"read": lambda: reader.read(), "readline": reader.readline,
              "readexactly": lambda: reader.readexactly(5)}[name]
        yielded, got = drive(op())
        assert got == b""
        assert [type(y) for y in yielded] == [uasyncio.IORead, uasyncio.IOReadDone], name
        assert all(y.arg is polls for y in yielded)


@pytest.mark.timeout(30)
def test_a_task_watching_its_syscalls_sees_ioreaddone_at_the_end(loop):
    """In a running loop: a generator between the task and the read
    records every syscall the read yields; the loop acts on them."""
    a, b = socket.socketpair()
    a.setblocking(False)
    log = []

    def watch(aw):
        it = aw.__await__()
        while True:
            try:
                y = it.send(None)
            except StopIteration as e:
                return e.value
            log.append(type(y).__name__)
            yield y

    def main():
        reader = uasyncio.StreamReader(a)
        first = yield from watch(reader.readline())
        rest = yield from watch(reader.readline())
        end = yield from watch(reader.read())
        return first, rest, end

    async def sender():
        await uasyncio.sleep_ms(20)
        b.sendall(b"one\ntw")
        b.shutdown(socket.SHUT_WR)

    try:
        loop.create_task(sender())
        got = loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert got == (b"one\n", b"tw", b"")
    assert log == ["IORead", "IOReadDone", "IOReadDone"]


# ---- what a Python-level write() or send() is given, and what it returns -------------


class KeepingSink:
    """An object to write to whose write() keeps what it is given (as a
    batching sink or a test double does) and takes it all, or returns the
    next of answers."""

    def __init__(self, answers=()):
        self.given = []
        self.answers = list(answers)

    def write(self, data):
        self.given.append(data)
        return self.answers.pop(0) if self.answers else len(data)


def test_a_write_that_keeps_its_argument_keeps_the_data_alive():
    """write() gets a read-only memoryview that holds on to the data: the
    bytearray cannot be resized under it, and the UTF-8 of a str, made only
    for the write, lives as long as the view."""
    sink = KeepingSink()
    writer = uasyncio.StreamWriter(sink, {})
    data = bytearray(b"0123456789" * 1000)
    assert drive(writer.awrite(data, 10, 5000)) == ([], None)
    view = sink.given[0]
    assert isinstance(view, memoryview) and view.readonly
    with pytest.raises(BufferError):
        data.clear()
    assert bytes(view) == bytes(data[10:5010])
    text = "\u00e9" * 100000
    assert drive(writer.awrite(text)) == ([], None)
    gc.collect()
    filler = [bytes([i]) * 200000 for i in range(4)]   # would take the memory of a freed encoding
    assert bytes(sink.given[1]) == text.encode()
    del filler


def test_an_ssl_send_that_keeps_its_argument_keeps_the_data_alive():
    s = scripted_ssl_socket(len)
    try:
        data = bytearray(b"tls" * 1000)
        assert drive(uasyncio.StreamWriter(s, {}).awrite(data)) == ([], None)
        with pytest.raises(BufferError):
            data.clear()
        assert [bytes(v) for v in s.given] == [b"tls" * 1000]
    finally:
        s.close()


@pytest.mark.parametrize("count", [-1, -5, 11, 2 ** 70, "ten"], ids=["-1", "-5", "11", "2**70", "str"])
def test_a_write_count_outside_what_it_was_given_raises_oserror(count):
    """A count below 0 or above the bytes given (or not an int) is refused:
    it would move the next write's data outside the buffer."""
    sink = KeepingSink([count])
    with pytest.raises(OSError, match=r"write\(\) returned .* between 0 and 10 "):
        drive(uasyncio.StreamWriter(sink, {}).awrite(b"0123456789"))
    assert [bytes(v) for v in sink.given] == [b"0123456789"]


@pytest.mark.parametrize("count", [-1, 11, 2 ** 70], ids=["-1", "11", "2**70"])
def test_an_ssl_send_count_outside_what_it_was_given_raises_oserror(count):
    s = scripted_ssl_socket(lambda data: count)
    try:
        with pytest.raises(OSError, match=r"send\(\) returned .* between 0 and 10 "):
            drive(uasyncio.StreamWriter(s, {}).awrite(b"0123456789"))
    finally:
        s.close()


def test_an_ssl_send_is_offered_at_most_64_kib_at_a_time():
    """So a copy (v3's buffered output) never costs more than that a call,
    and every retry offers the same bytes and no fewer."""
    s = scripted_ssl_socket(lambda data: (len(data) + 1) // 2)   # half of it
    try:
        data = os.urandom(200000)
        assert drive(uasyncio.StreamWriter(s, {}).awrite(data)) == ([], None)
        assert max(len(v) for v in s.given) == 65536
        assert b"".join(bytes(v)[:(len(v) + 1) // 2] for v in s.given) == data
    finally:
        s.close()


# ---- MicroPython's stream objects (a UART, a driver): no fd, ioctl() --------------------


class PollableUart:
    """No fileno(): ioctl(MP_STREAM_POLL=3, flags) says what is ready, as a
    MicroPython UART's does; read() gives None while nothing came."""

    def __init__(self):
        self.rx, self.sent, self.closed = b"", [], False

    def ioctl(self, req, arg):
        if req != 3:
            return -1   # MP_STREAM_GET_FILENO: none
        return (arg & 1 if self.rx else 0) | (arg & 4)

    def read(self, n=-1):
        if not self.rx:
            return None
        n = len(self.rx) if n < 0 else n
        r, self.rx = self.rx[:n], self.rx[n:]
        return r

    def readline(self):
        i = self.rx.find(b"\n")
        r, self.rx = self.rx[:i + 1], self.rx[i + 1:]
        return r

    def write(self, buf, off=0, sz=-1):
        data = bytes(buf)
        self.sent.append(data)
        return len(data)

    def close(self):
        self.closed = True


@pytest.mark.timeout(30)
def test_2_0_streams_over_an_object_polled_through_ioctl(loop):
    """2.0's StreamReader waits with IORead(polls): over an object without
    an fd, the loop asks its ioctl() each pass until data came."""
    uart = PollableUart()

    async def device():
        for line in (b"first\n", b"second\n"):
            await uasyncio.sleep_ms(20)
            uart.rx += line

    async def main():
        loop.create_task(device())
        reader, writer = uasyncio.StreamReader(uart), uasyncio.StreamWriter(uart, {})
        lines = [await reader.readline(), await reader.readline()]
        await writer.awrite(b"ack\n")
        await writer.aclose()
        return lines

    assert run(loop, main()) == [b"first\n", b"second\n"]
    assert uart.sent == [b"ack\n"] and uart.closed


def test_2_0_writer_aclose_yields_iowritedone_before_closing_any_object():
    """As uasyncio 2.0's StreamWriter.aclose(): IOWriteDone(s), then
    s.close(), whatever s is."""
    for s in (PollableUart(), MockStream(b"")):
        closes = []
        s.close = lambda: closes.append(1)
        it = uasyncio.StreamWriter(s, {}).aclose().__await__()
        done = it.send(None)
        assert type(done) is uasyncio.IOWriteDone and done.arg is s
        assert closes == []
        with pytest.raises(StopIteration):
            it.send(None)
        assert closes == [1]


@pytest.mark.timeout(30)
def test_2_0_writer_aclose_on_a_socket_in_a_running_loop(loop):
    a, b = socket.socketpair()
    a.setblocking(False)

    async def main():
        await uasyncio.StreamWriter(a, {}).aclose()
        return a.fileno()

    try:
        assert run(loop, main()) == -1
        assert b.recv(10) == b""
    finally:
        b.close()


@pytest.mark.timeout(30)
def test_2_0_read_after_a_reset_raises_econnreset_though_bytes_are_buffered(loop):
    """A reset discards what the peer sent (MicroPython's read raises,
    CPython's asyncio drops its buffer): the read after it raises
    ECONNRESET, even with bytes in the reader's buffer; then the end."""
    import errno
    ls = socket.socket()
    ls.bind((HOST, 0))
    ls.listen()
    c = socket.create_connection(ls.getsockname())
    s, _ = ls.accept()
    ls.close()
    s.setblocking(False)
    c.sendall(b"GET / HTTP/1.0\r\n\r\n")

    async def main():
        reader = uasyncio.StreamReader(s)
        first = await reader.read(10)            # the rest stays buffered
        set_rst_on_close(c)
        c.close()
        await uasyncio.sleep_ms(100)
        with pytest.raises(OSError) as e:
            await reader.read(100)
        return first, e.value.errno, await reader.read(100)

    try:
        assert run(loop, main()) == (b"GET / HTTP", errno.ECONNRESET, b"")
    finally:
        s.close()
