"""uasyncio.v3 streams over TLS: start_server(..., ssl=context) and
open_connection(..., ssl=..., server_hostname=...), with a self-signed
certificate made for the test (netutil's fixture). Each test runs on a fresh
loop (the pytest plugin's marker)."""
import hashlib
import os
import socket
import ssl
import sys

import pytest

import uasyncio.v3 as asyncio
from conftest import no_fd_leaked
from netutil import cert, client_context, server_context  # noqa: F401 - cert: a fixture
from test_v3_stream import no_fd_leak, stopped  # noqa: F401 - no_fd_leak: a fixture

HOST = "127.0.0.1"

pytestmark = pytest.mark.uasyncio(timeout=30)


async def echo(reader, writer):
    """Lines are echoed; b"BLOB n\\n" is followed by n bytes, answered with their sha256."""
    while True:
        line = await reader.readline()
        if not line:
            break
        if line.startswith(b"BLOB "):
            blob = await reader.readexactly(int(line.split()[1]))
            writer.write(hashlib.sha256(blob).hexdigest().encode() + b"\n")
        else:
            writer.write(line)
        await writer.drain()
    await writer.wait_closed()


async def tls_server(cert, cb=echo):
    srv = await asyncio.start_server(cb, HOST, 0, ssl=server_context(cert))
    return srv, srv.socket.getsockname()[1]


@pytest.mark.uasyncio(timeout=60)
async def test_tls_echo_lines_and_a_4_mb_blob(cert):
    blob = os.urandom(4 << 20)
    srv, port = await tls_server(cert)
    reader, writer = await asyncio.open_connection(HOST, port, ssl=client_context(cert, True),
                                                   server_hostname="localhost")
    assert isinstance(writer.get_extra_info("socket"), ssl.SSLSocket)
    lines = []
    for i in range(5):
        writer.write(b"line %d over TLS\n" % i)
        await writer.drain()
        lines.append(await reader.readline())
    # several lines in one record all come out of the TLS buffer
    writer.write(b"one\ntwo\nthree\n")
    await writer.drain()
    lines += [await reader.readline() for _ in range(3)]
    writer.write(b"BLOB %d\n" % len(blob))
    writer.write(blob)
    await writer.drain()
    digest = await reader.readline()
    await writer.wait_closed()
    srv.close()
    await stopped(srv)
    assert lines == [b"line %d over TLS\n" % i for i in range(5)] + [b"one\n", b"two\n", b"three\n"]
    assert digest == hashlib.sha256(blob).hexdigest().encode() + b"\n"


async def test_tls_read_to_the_end_and_readexactly_eoferror(cert):
    data = os.urandom(200000)

    async def sender(reader, writer):
        writer.write(data)
        await writer.drain()
        await writer.wait_closed()

    srv, port = await tls_server(cert, sender)
    reader, writer = await asyncio.open_connection(HOST, port, ssl=client_context(cert, False))
    head = await reader.readexactly(10)
    rest = await reader.read(-1)
    with pytest.raises(EOFError):
        await reader.readexactly(1)
    await writer.wait_closed()
    await stopped(srv)
    assert head + rest == data


async def test_tls_certificate_not_trusted_raises_and_the_server_goes_on(cert):
    srv, port = await tls_server(cert)
    with pytest.raises(ssl.SSLError):
        await asyncio.open_connection(HOST, port, ssl=True)   # the system's CAs: not ours
    # a plain-text client: that handshake fails, the server does not
    s = socket.create_connection((HOST, port))
    s.sendall(b"GET / HTTP/1.0\r\n\r\n")
    s.close()
    reader, writer = await asyncio.open_connection(HOST, port, ssl=client_context(cert, False))
    writer.write(b"still here\n")
    await writer.drain()
    assert await reader.readline() == b"still here\n"
    await writer.wait_closed()
    await stopped(srv)


async def test_tls_hostname_mismatch_is_refused(cert):
    srv, port = await tls_server(cert)
    with pytest.raises(ssl.SSLCertVerificationError):
        await asyncio.open_connection(HOST, port, ssl=client_context(cert, True),
                                      server_hostname="not-this-host.example")
    await stopped(srv)


def test_tasks_in_tls_handshakes_are_finalized_when_the_loop_closes(cert):
    """A client whose server never answers and a server-side handshake
    whose client never speaks, both pending when the loop closes: each SSL
    socket is closed at once and nothing is reported as unraisable."""
    listener = socket.create_server((HOST, 0))   # accepts (the kernel does), never speaks
    mute = []
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    try:
        with no_fd_leaked():
            loop = asyncio.new_event_loop()

            async def client():
                await asyncio.open_connection(HOST, listener.getsockname()[1], ssl=client_context(cert, False))

            async def main():
                srv, port = await tls_server(cert)
                mute.append(socket.create_connection((HOST, port)))   # never says hello
                asyncio.create_task(client())
                await asyncio.sleep_ms(50)
                srv.close()
                await srv.wait_closed()

            loop.run_until_complete(main())
            loop.close()
            del loop
            mute[0].settimeout(10)
            assert mute[0].recv(100) == b""   # the server's side of it is closed
            mute.pop().close()
            peer, _ = listener.accept()
            peer.settimeout(10)
            while peer.recv(4096):   # the ClientHello, then the end
                pass
            peer.close()
    finally:
        sys.unraisablehook = old_hook
        listener.close()
        for s in mute:
            s.close()
    assert [u.exc_value for u in unraisable] == []
