"""Fault injection on real TCP sockets on 127.0.0.1: a peer that resets
(SO_LINGER 0) while the server reads or writes, half-closed connections in
both directions, peers that stall forever (freed by wait_for), connects to a
closed port, accept() at EMFILE, SIGPIPE (in a subprocess with SIGPIPE's
default action restored, so a write that raised it would kill the process),
and a task that raises while a server and its clients are running. Each test
checks that the fault reaches only the task concerned, as OSError, EOF or
TimeoutError, and that the loop, the server and the other connections go on.
Every test is bounded by the loop's own wait_for and a pytest-timeout mark;
the `loop` fixture fails a test that leaves a file descriptor open."""
import contextlib
import errno
import hashlib
import json
import logging
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import pytest

import uasyncio
from conftest import ROOT, run, until
from netutil import (HOST, connect, echo_lines, free_port, raw_connect, serve, set_rst_on_close,
                     stop)


# ---- helpers ----------------------------------------------------------------


async def recv_plain(s, until_data=None, secs=20):
    """Read a plain socket without blocking the loop, until until_data(data)
    is true or EOF. Returns (data, eof)."""
    s.setblocking(False)
    data = b""
    end = time.monotonic() + secs
    while time.monotonic() < end:
        try:
            chunk = s.recv(1 << 20)
        except BlockingIOError:
            await uasyncio.sleep_ms(5)
            continue
        if not chunk:
            return data, True
        data += chunk
        if until_data and until_data(data):
            return data, False
    raise AssertionError("no EOF within %s s (%d bytes read)" % (secs, len(data)))


def counting_echo(closed):
    """Server handler: echo each line prefixed with its number on this
    connection (so a connection's state is visible), then close."""

    async def handler(reader, writer):
        n = 0
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                n += 1
                await writer.awrite(b"%d %s" % (n, line))
        finally:
            await writer.aclose()
            closed.append(n)

    return handler


async def echo_once(reader, writer, line):
    await writer.awrite(line)
    return await reader.readline()


# ---- 1. peer resets while the server reads ----------------------------------


@pytest.mark.timeout(30)
def test_peer_reset_mid_read_only_affects_that_connection(loop):
    outcomes = []
    partial = b"a partial line without its end"

    async def handler(reader, writer):
        partial_lines = []
        try:
            while True:
                line = await reader.readline()
                if not line:
                    outcomes.append(("eof", partial_lines))
                    break
                if line.endswith(b"\n"):
                    await writer.awrite(line)
                else:
                    partial_lines.append(line)
        except OSError as e:
            outcomes.append(("error", e))
        await writer.aclose()

    srv, port = serve(loop, handler)
    ticks = [0]

    async def ticker():
        while len(outcomes) < 2:
            await uasyncio.sleep_ms(2)
            ticks[0] += 1

    async def main():
        loop.create_task(ticker())
        s = await raw_connect(port)
        s.sendall(partial)
        await uasyncio.sleep_ms(100)      # the server reads it and waits for the rest
        set_rst_on_close(s)
        s.close()                         # RST
        await until(lambda: outcomes)
        # The server keeps serving: a new client gets its echo.
        reader, writer = await connect(port)
        echoed = await echo_once(reader, writer, b"still here\n")
        await writer.aclose()
        await until(lambda: len(outcomes) == 2)
        await stop(srv)
        return echoed

    assert run(loop, main()) == b"still here\n"
    kind, detail = outcomes[0]
    if kind == "error":
        assert isinstance(detail, OSError)
    else:
        assert detail in ([], [partial])
    assert outcomes[1] == ("eof", [])
    assert ticks[0] > 0


@pytest.mark.timeout(30)
def test_resets_mid_read_leave_established_connections_serving(loop):
    outcomes = []

    async def handler(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    outcomes.append("eof")
                    break
                await writer.awrite(line)
        except OSError as e:
            outcomes.append(e)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        established = [await connect(port) for _ in range(2)]
        before = [await echo_once(r, w, b"before %d\n" % i) for i, (r, w) in enumerate(established)]
        # Five peers each leave half a line unread by the handler, then reset.
        resetting = []
        for i in range(5):
            s = await raw_connect(port)
            s.sendall(b"half a line %d" % i)
            resetting.append(s)
        await uasyncio.sleep_ms(100)
        for s in resetting:
            set_rst_on_close(s)
            s.close()
        await until(lambda: len(outcomes) == 5)
        after = [await echo_once(r, w, b"after %d\n" % i) for i, (r, w) in enumerate(established)]
        for r, w in established:
            await w.aclose()
        await until(lambda: len(outcomes) == 7)
        await stop(srv)
        return before, after

    before, after = run(loop, main())
    assert before == [b"before 0\n", b"before 1\n"]
    assert after == [b"after 0\n", b"after 1\n"]
    for o in outcomes[:5]:
        assert o == "eof" or isinstance(o, OSError), o
    assert outcomes[5:] == ["eof", "eof"]


# ---- 2. peer resets while the server writes ---------------------------------


@pytest.mark.timeout(60)
def test_peer_reset_mid_write_raises_oserror_in_the_writing_task(loop):
    outcomes = []
    big = b"w" * (8 * 1024 * 1024)

    async def handler(reader, writer):
        first = await reader.readline()
        if first == b"reset me\n":
            try:
                await writer.awrite(big)
                outcomes.append("completed")
            except OSError as e:
                outcomes.append(e)
        else:
            await writer.awrite(b"echo " + first)
            outcomes.append("served")
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        s = await raw_connect(port, rcvbuf=65536)
        s.setblocking(False)
        s.sendall(b"reset me\n")
        received = 0
        for _ in range(4000):             # take a little of the 8 MB, up to ~20 s
            try:
                received += len(s.recv(65536))
            except BlockingIOError:
                pass
            if received >= 100000:
                break
            await uasyncio.sleep_ms(5)
        set_rst_on_close(s)
        s.close()                         # RST while the server is mid-awrite
        await until(lambda: outcomes)
        reader, writer = await connect(port)
        reply = await echo_once(reader, writer, b"next\n")
        await writer.aclose()
        await until(lambda: len(outcomes) == 2)
        await stop(srv)
        return received, reply

    received, reply = run(loop, main(), 50)
    assert received >= 100000
    assert isinstance(outcomes[0], OSError), outcomes
    assert reply == b"echo next\n"
    assert outcomes[1] == "served"


@pytest.mark.timeout(60)
def test_reset_mid_write_while_another_connection_is_served_meanwhile(loop):
    big = bytes(range(256)) * (128 * 1024)   # 32 MB: more than any socket buffers
    outcomes = []
    writing = []

    async def handler(reader, writer):
        first = await reader.readline()
        if first == b"flood me\n":
            writing.append(1)
            try:
                await writer.awrite(big)
                outcomes.append("completed")
            except OSError as e:
                outcomes.append(e)
            await writer.aclose()
        else:
            await writer.awrite(first)
            await echo_lines(reader, writer)

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        assert await echo_once(reader, writer, b"hello\n") == b"hello\n"
        s = await raw_connect(port, rcvbuf=65536)
        s.sendall(b"flood me\n")
        head, eof = await recv_plain(s, lambda d: len(d) >= 100000)
        assert not eof
        # The writing task is parked on a full socket; others still run.
        during = [await echo_once(reader, writer, b"during %d\n" % i) for i in range(3)]
        assert not outcomes
        set_rst_on_close(s)
        s.close()
        await until(lambda: outcomes)
        after = await echo_once(reader, writer, b"after\n")
        await writer.aclose()
        await stop(srv)
        return head, during, after

    head, during, after = run(loop, main(), 50)
    assert head == big[:len(head)]        # what arrived before the reset was right
    assert during == [b"during 0\n", b"during 1\n", b"during 2\n"]
    assert after == b"after\n"
    assert len(outcomes) == 1 and isinstance(outcomes[0], OSError), outcomes
    assert outcomes[0].errno in (errno.ECONNRESET, errno.EPIPE), outcomes[0]


@pytest.mark.timeout(60)
def test_reset_wakes_both_the_task_reading_and_the_task_writing_one_connection(loop):
    big = b"r" * (16 * 1024 * 1024)
    outcomes = {}

    async def read_side(reader):
        try:
            outcomes["reader"] = await reader.readline()
        except OSError as e:
            outcomes["reader"] = e

    async def handler(reader, writer):
        # A reader and a writer parked on one socket at once.
        loop.create_task(read_side(reader))
        try:
            await writer.awrite(big)
            outcomes["writer"] = "completed"
        except OSError as e:
            outcomes["writer"] = e
        await until(lambda: "reader" in outcomes)
        await writer.aclose()
        outcomes["closed"] = True

    srv, port = serve(loop, handler)

    async def main():
        s = await raw_connect(port, rcvbuf=65536)
        head, eof = await recv_plain(s, lambda d: len(d) >= 100000)
        assert not eof
        set_rst_on_close(s)
        s.close()
        await until(lambda: "closed" in outcomes)
        await stop(srv)

    run(loop, main(), 50)
    assert isinstance(outcomes["writer"], OSError), outcomes
    assert outcomes["reader"] == b"" or isinstance(outcomes["reader"], OSError), outcomes


# ---- 3. half-closed connections --------------------------------------------


@pytest.mark.timeout(30)
def test_client_half_close_gives_the_server_its_lines_then_eof_and_the_answer_still_arrives(loop):
    answer = os.urandom(2 * 1024 * 1024)   # more than the socket buffers take at once
    seen = []

    async def handler(reader, writer):
        lines = []
        while True:
            line = await reader.readline()
            lines.append(line)
            if not line:
                break
        lines.append(await reader.readline())    # EOF stays EOF
        lines.append(await reader.read())
        seen.append(lines)
        # The client's EOF closed only its direction: answering still works.
        await writer.awrite(b"%d lines\n" % (len(lines) - 3))
        await writer.awrite(answer)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        await writer.awrite(b"one\ntwo\nthree without newline")
        writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
        head = await reader.readline()
        chunks = []
        while True:
            data = await reader.read(65536)
            if not data:
                break
            chunks.append(data)
        await writer.aclose()
        await stop(srv)
        return head, b"".join(chunks)

    head, body = run(loop, main())
    assert seen == [[b"one\n", b"two\n", b"three without newline", b"", b"", b""]]
    assert head == b"3 lines\n"
    assert hashlib.sha256(body).digest() == hashlib.sha256(answer).digest()


@pytest.mark.timeout(30)
def test_server_half_close_gives_the_client_eof_and_the_server_still_reads(loop):
    got = []

    async def handler(reader, writer):
        await writer.awrite(b"first\nsecond\n")
        writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
        lines = []
        while True:
            line = await reader.readline()
            if not line:
                break
            lines.append(line)
        got.append(lines)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        reader, writer = await connect(port)
        out = [await reader.readline() for _ in range(4)]
        out.append(await reader.read())
        # Writing after the server's EOF: its read side is still open.
        await writer.awrite(b"after your eof\n")
        await writer.awrite(b"x" * 100000 + b"\n")
        await writer.aclose()
        await until(lambda: got)
        await stop(srv)
        return out

    assert run(loop, main()) == [b"first\n", b"second\n", b"", b"", b""]
    assert got == [[b"after your eof\n", b"x" * 100000 + b"\n"]]


@pytest.mark.timeout(30)
def test_server_aclose_after_a_large_awrite_gives_the_client_all_data_then_eof(loop):
    payload = os.urandom(3 * 1024 * 1024)
    done = []

    async def handler(reader, writer):
        await writer.awrite(payload)
        await writer.aclose()
        done.append(1)

    srv, port = serve(loop, handler)

    async def main():
        s = await raw_connect(port)
        try:
            data, eof = await recv_plain(s)
        finally:
            s.close()
        await until(lambda: done)
        await stop(srv)
        return data, eof

    data, eof = run(loop, main())
    assert eof
    assert data == payload


# ---- 4. peers that stall forever --------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("sent", [b"", b"half a li"], ids=["silent", "half_line"])
def test_wait_for_frees_a_readline_stalled_on_a_peer_and_the_handler_closes(loop, sent):
    outcomes = []

    async def handler(reader, writer):
        try:
            line = await uasyncio.wait_for(reader.readline(), 0.3)
            outcomes.append(line)
            await writer.awrite(line)
        except uasyncio.TimeoutError as e:
            outcomes.append(e)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        stalled = await raw_connect(port)
        try:
            if sent:
                stalled.sendall(sent)
            # Meanwhile a well-behaved client is served (its line is there
            # before its handler starts, so its 0.3 s cannot run out).
            good = await raw_connect(port)
            try:
                good.sendall(b"prompt\n")
                echoed, good_eof = await recv_plain(good)
            finally:
                good.close()
            assert good_eof
            # The stalled peer sends nothing more; the server closes on it.
            data, eof = await recv_plain(stalled)
        finally:
            stalled.close()
        await until(lambda: len(outcomes) == 2)
        await stop(srv)
        return echoed, data, eof

    echoed, data, eof = run(loop, main())
    assert echoed == b"prompt\n"
    assert (data, eof) == (b"", True)
    assert b"prompt\n" in outcomes
    timeouts = [o for o in outcomes if isinstance(o, BaseException)]
    assert len(timeouts) == 1
    assert isinstance(timeouts[0], uasyncio.TimeoutError)
    assert isinstance(timeouts[0], uasyncio.CancelledError)   # as SPEC.md says


@pytest.mark.timeout(30)
def test_a_timed_out_readline_keeps_the_partial_line_for_the_next_one(loop):
    outcomes = []

    async def handler(reader, writer):
        try:
            await uasyncio.wait_for(reader.readline(), 0.2)
            outcomes.append("no timeout")
        except uasyncio.TimeoutError:
            outcomes.append("timeout")
        # The bytes read before the timeout are not lost.
        line = await uasyncio.wait_for(reader.readline(), 10)
        await writer.awrite(line)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def main():
        s = await raw_connect(port)
        try:
            s.sendall(b"half a li")
            await until(lambda: outcomes)
            s.sendall(b"ne\n")
            data, eof = await recv_plain(s)
        finally:
            s.close()
        await stop(srv)
        return data, eof

    assert run(loop, main()) == (b"half a line\n", True)
    assert outcomes == ["timeout"]


@pytest.mark.timeout(60)
def test_wait_for_frees_an_awrite_stalled_on_a_peer_that_never_reads(loop):
    big = b"s" * (32 * 1024 * 1024)   # far beyond what the socket buffers hold
    outcomes = []
    ticks = [0]

    async def handler(reader, writer):
        first = await reader.readline()
        if first != b"send me everything\n":
            await writer.awrite(first)
            await echo_lines(reader, writer)
            return
        try:
            await uasyncio.wait_for(writer.awrite(big), 0.5)
            outcomes.append("completed")
        except uasyncio.TimeoutError as e:
            outcomes.append(e)
        await writer.aclose()

    srv, port = serve(loop, handler)

    async def ticker():
        while not outcomes:
            await uasyncio.sleep_ms(5)
            ticks[0] += 1

    async def main():
        loop.create_task(ticker())
        s = await raw_connect(port, rcvbuf=65536)
        try:
            s.sendall(b"send me everything\n")
            await until(lambda: outcomes)    # the peer reads nothing until then
            data, eof = await recv_plain(s)
        finally:
            s.close()
        # The server goes on after the stalled connection is dropped.
        reader, writer = await connect(port)
        echoed = await echo_once(reader, writer, b"next\n")
        await writer.aclose()
        await stop(srv)
        return len(data), eof, echoed

    received, eof, echoed = run(loop, main(), 50)
    assert len(outcomes) == 1 and isinstance(outcomes[0], uasyncio.TimeoutError), outcomes
    assert eof and 0 < received < len(big)
    assert echoed == b"next\n"
    assert ticks[0] > 0                      # the loop ran other tasks during the stall


# ---- 5. connect to a closed port ---------------------------------------------


@pytest.mark.timeout(30)
def test_connect_refused_raises_in_the_caller(loop):
    port = free_port()
    caught = []

    async def main():
        try:
            await uasyncio.open_connection(HOST, port)
        except OSError as e:
            caught.append(e)
        return "survived"

    assert run(loop, main()) == "survived"
    assert len(caught) == 1
    assert isinstance(caught[0], ConnectionRefusedError), repr(caught[0])
    # The loop is still usable afterwards.
    assert run(loop, uasyncio.sleep_ms(1)) is None


@pytest.mark.timeout(30)
def test_refused_connects_leave_a_running_server_and_its_client_working(loop):
    closed = []
    srv, port = serve(loop, counting_echo(closed))
    dead_port = free_port()

    async def main():
        reader, writer = await connect(port)
        first = await echo_once(reader, writer, b"a\n")
        refused = []
        for _ in range(20):            # each failed connect must free its socket
            try:
                await uasyncio.open_connection(HOST, dead_port)
            except ConnectionRefusedError:
                refused.append(1)
        second = await echo_once(reader, writer, b"b\n")
        await writer.aclose()
        await until(lambda: closed)
        await stop(srv)
        return first, len(refused), second

    assert run(loop, main()) == (b"1 a\n", 20, b"2 b\n")
    assert closed == [2]


# ---- 6. accept() at EMFILE ----------------------------------------------------


@contextlib.contextmanager
def no_free_fds():
    """Every fd of the process in use until the block ends: RLIMIT_NOFILE
    lowered to just above the highest open fd, the rest filled with dup()s.
    Yields the list of the fillers (closed again on the way out)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    limit = max(map(int, os.listdir("/proc/self/fd"))) + 20
    fillers = []
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(limit, soft), hard))
    try:
        try:
            while True:
                fillers.append(os.dup(0))
        except OSError:
            pass
        yield fillers
    finally:
        for fd in fillers:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


@pytest.mark.timeout(30)
def test_accept_survives_running_out_of_file_descriptors(loop):
    done = []

    async def handler(reader, writer):
        await echo_lines(reader, writer)
        done.append(1)

    srv, port = serve(loop, handler)
    fillers = []

    async def main():
        # Connected (the server listens), not yet accepted: the server task
        # has not run since, so its accept() will meet EMFILE.
        s = await raw_connect(port)
        s.sendall(b"after EMFILE\n")
        with no_free_fds() as used:
            fillers.extend(used)
            await uasyncio.sleep_ms(250)      # the server meets EMFILE and waits
        try:
            s.setblocking(False)
            got = b""
            for _ in range(2000):
                try:
                    got += s.recv(100)
                except BlockingIOError:
                    pass
                if got.endswith(b"\n"):
                    break
                await uasyncio.sleep_ms(5)
        finally:
            s.close()
        await until(lambda: done)
        await stop(srv)
        return got

    assert run(loop, main()) == b"after EMFILE\n"
    assert len(fillers) > 0


@pytest.mark.timeout(30)
def test_open_connection_at_emfile_raises_in_the_caller_and_works_once_fds_are_free(loop):
    closed = []
    srv, port = serve(loop, counting_echo(closed))
    fillers = []

    async def main():
        caught = []
        with no_free_fds() as used:
            fillers.extend(used)
            try:
                await uasyncio.open_connection(HOST, port)
            except OSError as e:
                caught.append(e)
        reader, writer = await connect(port)
        echoed = await echo_once(reader, writer, b"fds again\n")
        await writer.aclose()
        await until(lambda: closed)
        await stop(srv)
        return caught, echoed

    caught, echoed = run(loop, main())
    assert fillers
    assert len(caught) == 1 and caught[0].errno == errno.EMFILE, caught
    assert echoed == b"1 fds again\n"


class AcceptRecords(logging.Handler):
    """Keeps the debug records of the accept loop (set_debug(True))."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages = []

    def emit(self, record):
        msg = record.getMessage()
        if msg.startswith("accept:"):
            self.messages.append(msg)


@pytest.mark.timeout(30)
def test_accept_at_emfile_retries_after_a_pause_not_in_a_busy_loop(loop):
    # io/server.c: on EMFILE it sleeps NO_FD_PAUSE_MS (100 ms) before the next
    # accept(), and logs each attempt under set_debug(True).
    closed = []
    srv, port = serve(loop, counting_echo(closed))
    fillers = []
    records = AcceptRecords()
    log = logging.getLogger("uasyncio")
    saved = log.level, log.propagate
    ticks = [0]

    async def ticker():
        while not closed:
            await uasyncio.sleep_ms(5)
            ticks[0] += 1

    async def main():
        loop.create_task(ticker())
        s = await raw_connect(port)
        s.sendall(b"served after EMFILE\n")
        with no_free_fds() as used:
            fillers.extend(used)
            start = time.monotonic()
            ticks_at_start = ticks[0]
            await uasyncio.sleep_ms(600)
            elapsed_ms = (time.monotonic() - start) * 1000
            attempts = len(records.messages)
            ticked = ticks[0] - ticks_at_start
        try:
            data, eof = await recv_plain(s, lambda d: d.endswith(b"\n"))
        finally:
            s.close()
        await until(lambda: closed)
        await stop(srv)
        return attempts, elapsed_ms, ticked, data

    log.setLevel(logging.DEBUG)
    log.propagate = False
    log.addHandler(records)
    uasyncio.set_debug(True)
    try:
        attempts, elapsed_ms, ticked, data = run(loop, main())
    finally:
        uasyncio.set_debug(False)
        log.removeHandler(records)
        log.setLevel(saved[0])
        log.propagate = saved[1]

    assert fillers
    assert data == b"1 served after EMFILE\n"
    assert attempts >= 1, records.messages
    assert all("Too many open files" in m for m in records.messages[:attempts]), records.messages
    # A busy loop would make thousands of attempts; one per pause is a few.
    assert attempts <= 3 + elapsed_ms / 50, (attempts, elapsed_ms)
    assert ticked > 0                        # other tasks ran meanwhile


# ---- 7. SIGPIPE ----------------------------------------------------------------

# Run as: python -c SIGPIPE_CHILD ROOT CASE. It imports the package the tests
# import (UA_PKG_DIR: the sanitizer build under make asan), restores SIGPIPE's
# default action (CPython ignores it at start-up), writes to a broken
# connection until the kernel answers EPIPE, and prints what it caught as JSON.
SIGPIPE_CHILD = r'''
import errno, json, os, signal, socket, struct, sys
sys.path.insert(0, os.path.join(sys.argv[1], os.environ.get("UA_PKG_DIR", "")))
import uasyncio
from uasyncio.websocket.server import WSReader, WSWriter

case = sys.argv[2]
signal.signal(signal.SIGPIPE, signal.SIG_DFL)
HOST = "127.0.0.1"
caught = []
state = {"peer_gone": False, "done": False}

if case == "control":   # no uasyncio: a plain send() after shutdown must die
    a, b = socket.socketpair()
    a.shutdown(socket.SHUT_WR)
    a.send(b"x")
    sys.exit(3)


async def wait_until(cond):
    for _ in range(4000):
        if cond():
            return
        await uasyncio.sleep_ms(5)
    raise AssertionError("timed out")


async def handler(reader, writer):
    try:
        await reader.readline()
        if case == "websocket":
            write = WSWriter(await WSReader(reader, writer), writer).awrite
        else:
            await writer.awrite(b"ready\n")
            write = writer.awrite
        if case == "own_shutdown":
            writer.get_extra_info("socket").shutdown(socket.SHUT_WR)
        else:
            await wait_until(lambda: state["peer_gone"])
        for _ in range(400):
            try:
                await write(b"x" * 1000)
            except OSError as e:
                caught.append([type(e).__name__, e.errno])
                if e.errno == errno.EPIPE:
                    break
            await uasyncio.sleep_ms(5)
    finally:
        await writer.aclose()
        state["done"] = True


async def main():
    srv = uasyncio.start_server(handler, HOST, 0)
    loop.create_task(srv)
    await uasyncio.sleep_ms(1)
    s = socket.create_connection((HOST, srv.socket.getsockname()[1]))
    if case == "websocket":
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        want = b"\r\n\r\n"
    else:
        s.sendall(b"hello\n")
        want = b"ready\n"
    s.setblocking(False)
    got = b""
    for _ in range(4000):
        try:
            got += s.recv(4096)
        except BlockingIOError:
            await uasyncio.sleep_ms(5)
        if want in got:
            break
    if case in ("reset", "websocket"):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    if case != "own_shutdown":
        s.close()
        state["peer_gone"] = True
    await wait_until(lambda: state["done"])
    s.close()
    uasyncio.cancel(srv)
    await uasyncio.sleep_ms(20)


loop = uasyncio.get_event_loop()
loop.run_until_complete(uasyncio.wait_for(main(), 30))
print(json.dumps({"package": os.path.realpath(uasyncio.__file__), "caught": caught,
                  "sigpipe_default": signal.getsignal(signal.SIGPIPE) == signal.SIG_DFL}))
'''


def run_sigpipe_child(case):
    return subprocess.run([sys.executable, "-c", SIGPIPE_CHILD, ROOT, case],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)


@pytest.mark.timeout(90)
def test_sigpipe_child_setup_is_killed_by_a_plain_send():
    # Without this, the tests below could pass with SIGPIPE still ignored.
    proc = run_sigpipe_child("control")
    assert proc.returncode == -signal.SIGPIPE, (proc.returncode, proc.stderr.decode())


@pytest.mark.timeout(90)
@pytest.mark.parametrize("case", ["reset", "close", "own_shutdown", "websocket"])
def test_sigpipe_never_kills_the_process_writing_to_a_broken_connection(case):
    proc = run_sigpipe_child(case)
    assert proc.returncode != -signal.SIGPIPE, "killed by SIGPIPE"
    assert proc.returncode == 0, (proc.returncode, proc.stderr.decode())
    out = json.loads(proc.stdout.decode().splitlines()[-1])
    assert out["sigpipe_default"]
    assert out["package"] == os.path.realpath(uasyncio.__file__)
    caught = out["caught"]
    assert caught, "no write failed"
    assert all(name in ("BrokenPipeError", "ConnectionResetError", "OSError") for name, _ in caught), caught
    # EPIPE is the error that comes with SIGPIPE: the write that would have
    # raised it was made, and came back as an exception.
    assert caught[-1] == ["BrokenPipeError", errno.EPIPE], caught


# ---- 8. a task that raises while a server and its clients run ----------------


@pytest.mark.timeout(30)
def test_a_failing_task_propagates_out_of_run_forever_and_the_server_keeps_its_clients(loop):
    closed = []
    srv, port = serve(loop, counting_echo(closed))
    clients = []
    replies = []
    phase = [1]
    ticks = [0]

    async def ticker():
        while phase[0] != 3:
            await uasyncio.sleep_ms(2)
            ticks[0] += 1

    async def failing():
        await uasyncio.sleep_ms(10)
        raise ValueError("task failed")

    async def first():
        for i in range(2):
            reader, writer = await connect(port)
            replies.append(await echo_once(reader, writer, b"a\n"))
            clients.append((reader, writer))
        await clients[1][1].awrite(b"part")   # its handler waits mid-line
        await uasyncio.sleep_ms(20)
        loop.create_task(failing())
        await until(lambda: phase[0] == 2)    # reached only in the second run

    async def second():
        (r0, w0), (r1, w1) = clients
        replies.append(await echo_once(r0, w0, b"b\n"))
        replies.append(await echo_once(r1, w1, b"ial\n"))
        reader, writer = await connect(port)
        replies.append(await echo_once(reader, writer, b"new\n"))
        for w in (w0, w1, writer):
            await w.aclose()
        await until(lambda: len(closed) == 3)
        phase[0] = 3
        await stop(srv)

    loop.create_task(ticker())
    loop.create_task(first())
    with pytest.raises(ValueError, match="task failed"):
        loop.run_forever()
    assert replies == [b"1 a\n", b"1 a\n"]
    ticks_after_first = ticks[0]
    phase[0] = 2
    run(loop, second())
    assert replies[2:] == [b"2 b\n", b"2 partial\n", b"1 new\n"]
    assert sorted(closed) == [1, 2, 2]
    assert ticks[0] > ticks_after_first      # the ticker from the first run went on


@pytest.mark.timeout(30)
def test_a_failing_handler_propagates_out_of_run_until_complete_and_other_connections_go_on(loop):
    closed = []

    async def handler(reader, writer):
        n = 0
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line == b"boom\n":
                    raise ValueError("handler failed")
                n += 1
                await writer.awrite(b"%d %s" % (n, line))
        finally:
            await writer.aclose()
            closed.append(n)

    srv, port = serve(loop, handler)
    state = {}

    async def first():
        good = await connect(port)
        state["good"] = good
        state["replies"] = [await echo_once(*good, b"x\n")]
        bad = await connect(port)
        state["bad"] = bad
        await bad[1].awrite(b"boom\n")
        await until(lambda: "second" in state)   # the handler's exception ends the run first

    with pytest.raises(ValueError, match="handler failed"):
        run(loop, first())

    async def second():
        state["second"] = True
        reader, writer = state["good"]
        state["replies"].append(await echo_once(reader, writer, b"y\n"))
        # The failed handler closed its connection on the way out.
        state["bad_read"] = await state["bad"][0].read()
        await state["bad"][1].aclose()
        r2, w2 = await connect(port)
        state["replies"].append(await echo_once(r2, w2, b"z\n"))
        await w2.aclose()
        await writer.aclose()
        await until(lambda: len(closed) == 3)
        await stop(srv)

    run(loop, second())
    assert state["replies"] == [b"1 x\n", b"2 y\n", b"1 z\n"]
    assert state["bad_read"] == b""
    assert sorted(closed) == [0, 1, 2]
