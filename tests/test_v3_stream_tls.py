"""uasyncio.v3 streams over TLS: start_server(..., ssl=context) and
open_connection(..., ssl=..., server_hostname=...), with a self-signed
certificate made for the test (netutil's fixture). Each test runs on a fresh
loop (the pytest plugin's marker)."""
import hashlib
import os
import socket
import ssl
import subprocess
import sys

import pytest

import uasyncio.v3 as asyncio
from conftest import no_fd_leaked, run_program
from netutil import cert, client_context, free_port, openssl_command, server_context  # noqa: F401 - cert: a fixture
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


async def echo_or_refuse(reader, writer):
    """echo, for a server some clients fail the handshake with: as on
    MicroPython, the handshake's error comes out of the handler's first
    read; the handler counts the refusals and closes."""
    try:
        await echo(reader, writer)
    except (ssl.SSLError, OSError):
        refused.append(1)
        await writer.wait_closed()


refused = []


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
    refused.clear()
    srv, port = await tls_server(cert, echo_or_refuse)
    # As MicroPython: the handshake happens within the first write and read,
    # so its failure raises there, not in open_connection().
    reader, writer = await asyncio.open_connection(HOST, port, ssl=True)   # the system's CAs: not ours
    with pytest.raises(ssl.SSLError):
        writer.write(b"hello\n")
        await writer.drain()
        await reader.readline()
    await writer.wait_closed()
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
    assert len(refused) == 2   # the untrusted client's handshake, and the plain-text one


async def test_tls_hostname_mismatch_is_refused(cert):
    refused.clear()
    srv, port = await tls_server(cert, echo_or_refuse)
    reader, writer = await asyncio.open_connection(HOST, port, ssl=client_context(cert, True),
                                                   server_hostname="not-this-host.example")
    with pytest.raises(ssl.SSLCertVerificationError):
        await reader.read(10)
    await writer.wait_closed()
    await stopped(srv)
    assert refused == [1]


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


# ---- MicroPython's ssl API, as the runner binds it (uasyncio.v3._mpssl) -----------------


@pytest.fixture
def der_certs(tmp_path):
    """As MicroPython's tests have them: DER files, made by openssl now. An EC
    certificate for micropython.local with its key (SEC1 and PKCS#8), an RSA
    one with its key (PKCS#1), and a file that is neither."""
    def openssl(*args):
        proc = subprocess.run([openssl_command(), *args], capture_output=True, text=True, timeout=120,
                              cwd=str(tmp_path))
        assert proc.returncode == 0, "openssl %s failed: %s" % (args[0], proc.stderr)

    for kind, opts in (("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]),
                       ("rsa", ["-newkey", "rsa:2048"])):
        openssl("req", "-x509", *opts, "-nodes", "-keyout", kind + ".pem", "-out", kind + "_cert.pem",
                "-subj", "/CN=micropython.local/O=MicroPython/C=AU", "-days", "2")
        openssl("x509", "-in", kind + "_cert.pem", "-outform", "der", "-out", kind + "_cert.der")
    openssl("ec", "-in", "ec.pem", "-outform", "der", "-out", "ec_key.der")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "ec.pem", "-outform", "der", "-out", "ec_key_pkcs8.der")
    openssl("rsa", "-in", "rsa.pem", "-traditional", "-outform", "der", "-out", "rsa_key.der")
    (tmp_path / "garbage.der").write_bytes(b"garbage")
    return tmp_path


# One process, one loop: a server and a client per case, with the DER files
# above; MP_TLS_OUTPUT is what MicroPython v1.28 prints for it (checked on
# the reference).
MP_TLS_PROGRAM = 'import asyncio\nimport ssl\nimport sys\n\nPORT = int(sys.argv[1])\n\n\ndef describe(e):\n    return "%s %s" % (type(e).__name__, e)\n\n\nasync def case(name, server_ctx, client_ctx, hostname="micropython.local"):\n    seen = []\n    done = asyncio.Event()\n\n    async def handler(reader, writer):\n        try:\n            data = await reader.read(100)\n            writer.write(data.upper())\n            await writer.drain()\n            seen.append("echoed %r" % data)\n        except Exception as e:\n            seen.append(describe(e))\n        writer.close()\n        await writer.wait_closed()\n        done.set()\n\n    server = await asyncio.start_server(handler, "127.0.0.1", PORT, ssl=server_ctx)\n    reader, writer = await asyncio.open_connection("127.0.0.1", PORT, ssl=client_ctx, server_hostname=hostname)\n    try:\n        writer.write(b"hello")\n        await writer.drain()\n        got = "got %r" % await reader.read(100)\n    except Exception as e:\n        got = describe(e)\n    await asyncio.wait_for(done.wait(), 5)\n    writer.close()\n    await writer.wait_closed()\n    server.close()\n    await server.wait_closed()\n    print(name, "| client:", got, "| server:", seen[0])\n\n\ndef server_context(cert="ec_cert.der", key="ec_key.der", need_client_cert=False):\n    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n    ctx.load_cert_chain(cert, key)\n    if need_client_cert:\n        ctx.verify_mode = ssl.CERT_REQUIRED\n        ctx.load_verify_locations(cafile=cert)\n    return ctx\n\n\ndef client_context(cafile="ec_cert.der", cert=None, key=None):\n    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n    if cafile:\n        ctx.verify_mode = ssl.CERT_REQUIRED\n        ctx.load_verify_locations(cafile=cafile)\n    if cert:\n        ctx.load_cert_chain(cert, key)\n    return ctx\n\n\nasync def main():\n    print(ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED)\n    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n    print("client verify_mode", ctx.verify_mode)\n    ctx.verify_mode = ssl.CERT_REQUIRED\n    print("now", ctx.verify_mode)\n    for args in (("garbage.der", "ec_key.der"), ("ec_cert.der", "garbage.der")):\n        try:\n            server_context(*args)\n        except Exception as e:\n            print("load_cert_chain", describe(e))\n    try:\n        client_context("garbage.der")\n    except Exception as e:\n        print("load_verify_locations", describe(e))\n    await case("verified", server_context(), client_context())\n    await case("wrong name", server_context(), client_context(), "foobar.local")\n    await case("unknown CA", server_context(), client_context("rsa_cert.der"))\n    await case("not verified", server_context(), client_context(None), "foobar.local")\n    await case("client cert missing", server_context(need_client_cert=True), client_context())\n    await case("client cert given", server_context(need_client_cert=True),\n               client_context(cert="ec_cert.der", key="ec_key_pkcs8.der"))\n    await case("RSA, PKCS#1 key", server_context("rsa_cert.der", "rsa_key.der"), client_context("rsa_cert.der"))\n\n\nasyncio.run(main())\n'

MP_TLS_OUTPUT = """\
0 1 2
client verify_mode 0
now 2
load_cert_chain ValueError invalid cert
load_cert_chain ValueError invalid key
load_verify_locations ValueError invalid cert
verified | client: got b'HELLO' | server: echoed b'hello'
wrong name | client: ValueError 
The certificate Common Name (CN) does not match with the expected CN
 | server: OSError (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')
unknown CA | client: ValueError 
The certificate is not correctly signed by the trusted CA
 | server: OSError (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE')
not verified | client: got b'HELLO' | server: echoed b'hello'
client cert missing | client: OSError (-30592, 'MBEDTLS_ERR_SSL_FATAL_ALERT_MESSAGE') | server: OSError (-29824, 'MBEDTLS_ERR_SSL_NO_CLIENT_CERTIFICATE')
client cert given | client: got b'HELLO' | server: echoed b'hello'
RSA, PKCS#1 key | client: got b'HELLO' | server: echoed b'hello'
"""


def test_micropython_ssl_api_with_der_files_prints_what_micropython_prints(der_certs):
    p = run_program(der_certs, MP_TLS_PROGRAM, str(free_port()), runner=("-m", "uasyncio.v3"))
    assert p.returncode == 0, p.stderr
    assert p.stdout == MP_TLS_OUTPUT


def test_uasyncio_v3_mp_install_binds_what_the_runner_binds(tmp_path):
    """What a shim for a tool that starts Python itself needs."""
    p = run_program(tmp_path, """
        from uasyncio.v3.mp import install
        install()
        import asyncio, ssl, ussl, uasyncio, micropython, sys, time
        print(asyncio is uasyncio is sys.modules["uasyncio.v3"], ssl is ussl, ssl.__name__)
        print(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).verify_mode, ssl.CERT_REQUIRED)
        print(isinstance(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), ssl.SSLContext), callable(time.ticks_ms))
        print(ssl.create_default_context().verify_mode == ssl.CERT_REQUIRED)   # CPython's names stay
    """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:4] == ["True True uasyncio.v3._mpssl", "0 2", "True True", "True"]
