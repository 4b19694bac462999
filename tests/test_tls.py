"""TLS streams: start_server(..., ssl=context) and open_connection(..., ssl=...)
with a self-signed certificate made for the test by the `openssl` command."""
import hashlib
import socket
import ssl
import sys

import pytest

import uasyncio
from conftest import no_fd_leaked, run, until  # noqa: F401
from netutil import cert, client_context, connect, serve, server_context, stop  # noqa: F401 - cert: a fixture

HOST = "127.0.0.1"


def serve_tls(loop, handler, cert):
    """A TLS server on a port the kernel picks; returns (server coro, port)."""
    return serve(loop, handler, ssl=server_context(cert))


def pattern(n):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(b"tls %d" % i).digest()
        i += 1
    return bytes(out[:n])


def echo_server(done):
    """Lines are echoed; a line b"BLOB n\\n" is followed by n bytes echoed whole."""

    async def handler(reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                if line.startswith(b"BLOB "):
                    blob = await reader.readexactly(int(line.split()[1]))
                    await writer.awrite(blob)
                else:
                    await writer.awrite(line)
        except OSError as e:
            outcome = e
        else:
            outcome = "eof"
        await writer.aclose()
        done.append(outcome)

    return handler


async def exchange(port, client_ctx, ticks, **kw):
    reader, writer = await connect(port, ssl=client_ctx, **kw)
    got = []
    for i in range(5):
        line = b"line %d over TLS\n" % i
        await writer.awrite(line)
        got.append(await reader.readline() == line)
    # Several lines in one record: all must come out of the TLS buffer
    # even though the socket itself has nothing more to read.
    await writer.awrite(b"one\ntwo\nthree\n")
    got.append([await reader.readline() for _ in range(3)] == [b"one\n", b"two\n", b"three\n"])
    blob = pattern(1024 * 1024)
    before = ticks[0]
    await writer.awrite(b"BLOB %d\n" % len(blob))
    await writer.awrite(blob)
    back = await reader.readexactly(len(blob))
    got.append(hashlib.sha256(back).digest() == hashlib.sha256(blob).digest())
    got.append(len(back) == len(blob))
    await writer.aclose()
    return got, ticks[0] - before


def tls_echo(loop, cert, **client_kw):
    done = []
    srv, port = serve_tls(loop, echo_server(done), cert)
    ticks = [0]
    running = [True]

    async def ticker():
        while running[0]:
            await uasyncio.sleep_ms(1)
            ticks[0] += 1

    async def main():
        loop.create_task(ticker())
        try:
            result = await exchange(port, ticks=ticks, **client_kw)
            await until(lambda: done)
        finally:
            running[0] = False
        await stop(srv)
        return result

    (got, ticks_during_blob) = run(loop, main(), 30)
    assert got == [True] * len(got) and len(got) == 8, got
    assert done == ["eof"]
    return ticks_during_blob


# ---- tests -------------------------------------------------------------------


@pytest.mark.timeout(40)
def test_tls_echo_without_hostname_check(loop, cert):
    tls_echo(loop, cert, client_ctx=client_context(cert, check_hostname=False))


@pytest.mark.timeout(40)
def test_tls_echo_with_server_hostname(loop, cert):
    tls_echo(loop, cert, client_ctx=client_context(cert, check_hostname=True),
             server_hostname="localhost")


@pytest.mark.timeout(40)
def test_tls_untrusted_certificate_fails_in_the_client_and_server_keeps_serving(loop, cert):
    done = []
    srv, port = serve_tls(loop, echo_server(done), cert)
    caught = []

    async def main():
        untrusted = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)   # trusts nothing
        untrusted.check_hostname = False
        for _ in range(400):
            try:
                await uasyncio.open_connection(HOST, port, ssl=untrusted)
            except ConnectionRefusedError:
                await uasyncio.sleep_ms(5)
                continue
            except OSError as e:
                caught.append(e)
            break
        # The failed handshake ended that connection only.
        reader, writer = await connect(port, ssl=client_context(cert, False))
        await writer.awrite(b"after\n")
        line = await reader.readline()
        await writer.aclose()
        await until(lambda: "eof" in done)
        await stop(srv)
        return line

    assert run(loop, main(), 30) == b"after\n"
    assert len(caught) == 1 and isinstance(caught[0], ssl.SSLError), caught


@pytest.mark.timeout(40)
def test_plain_client_against_a_tls_server_does_not_end_the_server(loop, cert):
    done = []
    srv, port = serve_tls(loop, echo_server(done), cert)

    async def main():
        reader, writer = await connect(port)          # no TLS
        await writer.awrite(b"GET / HTTP/1.0\r\n\r\n")
        try:
            while await reader.read(100):
                pass
        except OSError:
            pass
        await writer.aclose()
        reader, writer = await connect(port, ssl=client_context(cert, False))
        await writer.awrite(b"still serving\n")
        line = await reader.readline()
        await writer.aclose()
        await until(lambda: "eof" in done)
        await stop(srv)
        return line

    assert run(loop, main(), 30) == b"still serving\n"


@pytest.mark.timeout(30)
def test_tls_streams_take_the_line_limit_of_start_server_and_open_connection(loop, cert):
    seen = {}

    async def handler(reader, writer):
        seen["server_limit"] = reader.limit
        try:
            await reader.readline()
        except uasyncio.LimitOverrunError as e:
            seen["server_error"] = e.limit
        seen["after"] = await reader.readline()
        await writer.awrite(b"y" * 500 + b"\n")
        await writer.aclose()

    srv = uasyncio.start_server(handler, HOST, 0, ssl=server_context(cert), limit=100)
    loop.create_task(srv)
    loop.run_until_complete(uasyncio.sleep_ms(1))
    port = srv.socket.getsockname()[1]

    async def main():
        reader, writer = await connect(port, ssl=client_context(cert, False), limit=200)
        seen["client_limit"] = reader.limit
        await writer.awrite(b"x" * 1000 + b"\nshort\n")
        try:
            await reader.readline()
        except uasyncio.LimitOverrunError as e:
            seen["client_error"] = e.limit
        await writer.aclose()
        await stop(srv)

    run(loop, main())
    assert seen == {"server_limit": 100, "client_limit": 200, "server_error": 100, "after": b"short\n",
                    "client_error": 200}


# ---- a task in the handshake, finalized --------------------------------------------


def test_closing_a_tls_handshake_closes_its_socket_and_raises_nothing(cert):
    """Closed while it waits (its task finalized): the SSL socket is closed
    at once, and the close raises nothing (no yield answers GeneratorExit)."""
    a, b = socket.socketpair()
    try:
        hs = uasyncio._tls_wrap(a, server_context(cert), True)
        waited = hs.send(None)   # the peer says nothing: it waits to read
        assert isinstance(waited, uasyncio.IORead)
        hs.close()
        assert waited.arg.fileno() == -1
    finally:
        a.close()
        b.close()


def test_a_task_in_a_tls_handshake_is_finalized_by_close(cert):
    """loop.close() finalizes a task whose open_connection() waits in the
    handshake (the server never answers): nothing unraisable, no fd left."""
    listener = socket.create_server((HOST, 0))
    port = listener.getsockname()[1]
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with no_fd_leaked():
            loop = uasyncio.PollEventLoop()
            started = []

            async def client():
                started.append(1)
                await uasyncio.open_connection(HOST, port, ssl=client_context(cert, False))

            loop.create_task(client())
            loop.run_until_complete(uasyncio.sleep_ms(50))
            assert started
            loop.close()
            del loop
            peer, _ = listener.accept()   # the client's connection, closed by now
            peer.settimeout(10)
            while peer.recv(4096):   # its ClientHello, then the end
                pass
            peer.close()
    finally:
        sys.unraisablehook = old_hook
        listener.close()
    assert [u.exc_value for u in unraisable] == []
