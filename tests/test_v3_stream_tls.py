"""uasyncio.v3 streams over TLS: start_server(..., ssl=context) and
open_connection(..., ssl=..., server_hostname=...), with a self-signed
certificate made for the test (netutil's fixture)."""
import hashlib
import os
import socket
import ssl

import pytest

import uasyncio.v3 as asyncio
from netutil import cert, client_context, server_context  # noqa: F401 - cert: a fixture
from test_v3_stream import aio, run  # noqa: F401

HOST = "127.0.0.1"


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


def test_tls_echo_lines_and_a_4_mb_blob(aio, cert):
    blob = os.urandom(4 << 20)

    async def main():
        srv, port = await tls_server(cert)
        reader, writer = await aio.open_connection(HOST, port, ssl=client_context(cert, True),
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
        await srv.wait_closed()
        return lines, digest

    lines, digest = run(main(), 60)
    assert lines == [b"line %d over TLS\n" % i for i in range(5)] + [b"one\n", b"two\n", b"three\n"]
    assert digest == hashlib.sha256(blob).hexdigest().encode() + b"\n"


def test_tls_read_to_the_end_and_readexactly_eoferror(aio, cert):
    data = os.urandom(200000)

    async def sender(reader, writer):
        writer.write(data)
        await writer.drain()
        await writer.wait_closed()

    async def main():
        srv, port = await tls_server(cert, sender)
        reader, writer = await aio.open_connection(HOST, port, ssl=client_context(cert, False))
        head = await reader.readexactly(10)
        rest = await reader.read(-1)
        with pytest.raises(EOFError):
            await reader.readexactly(1)
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return head + rest

    assert run(main()) == data


def test_tls_certificate_not_trusted_raises_and_the_server_goes_on(aio, cert):
    async def main():
        srv, port = await tls_server(cert)
        # As MicroPython: the handshake happens within the first write and
        # read, so its failure raises there, not in open_connection().
        reader, writer = await aio.open_connection(HOST, port, ssl=True)   # the system's CAs: not ours
        with pytest.raises(ssl.SSLError):
            writer.write(b"hello\n")
            await writer.drain()
            await reader.readline()
        await writer.wait_closed()
        # a plain-text client: that handshake fails, the server does not
        s = socket.create_connection((HOST, port))
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        s.close()
        reader, writer = await aio.open_connection(HOST, port, ssl=client_context(cert, False))
        writer.write(b"still here\n")
        await writer.drain()
        line = await reader.readline()
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()
        return line

    assert run(main()) == b"still here\n"


def test_tls_hostname_mismatch_is_refused(aio, cert):
    async def main():
        srv, port = await tls_server(cert)
        reader, writer = await aio.open_connection(HOST, port, ssl=client_context(cert, True),
                                                   server_hostname="not-this-host.example")
        with pytest.raises(ssl.SSLCertVerificationError):
            await reader.read(10)
        await writer.wait_closed()
        srv.close()
        await srv.wait_closed()

    run(main())
