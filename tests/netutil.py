"""Helpers for tests on real TCP sockets on 127.0.0.1: a server scheduled
on the test's loop, clients (in the loop, plain blocking sockets, from a
thread), resets, an echo handler, and TLS (a self-signed certificate made
for the test, server and client contexts)."""
import shutil
import socket
import ssl
import struct
import subprocess
import time

import pytest

import uasyncio

HOST = "127.0.0.1"


def free_port():
    """A port nothing listens on (bound, read, closed again)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((HOST, 0))
    port = s.getsockname()[1]
    s.close()
    return port


def serve(loop, handler, port=None, **kw):
    """Schedule start_server(handler) (on port 0: the kernel picks a free
    one, no race with other processes); returns (server coro, port)."""
    srv = uasyncio.start_server(handler, HOST, port or 0, **kw)
    loop.create_task(srv)
    loop.run_until_complete(uasyncio.sleep_ms(1))   # its first step binds
    return srv, srv.socket.getsockname()[1]


async def stop(srv):
    """Cancel the server task and let the loop run so it closes its socket."""
    uasyncio.cancel(srv)
    await uasyncio.sleep_ms(20)


async def connect(port, **kw):
    """open_connection, retried while the just-scheduled server is not yet listening."""
    for _ in range(400):
        try:
            return await uasyncio.open_connection(HOST, port, **kw)
        except ConnectionRefusedError:
            await uasyncio.sleep_ms(5)
    raise AssertionError("server on port %d never listened" % port)


async def raw_connect(port, rcvbuf=None):
    """A plain blocking client socket (connect completes in the kernel's backlog)."""
    for _ in range(400):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        try:
            s.connect((HOST, port))
            return s
        except ConnectionRefusedError:
            s.close()
            await uasyncio.sleep_ms(5)
    raise AssertionError("server on port %d never listened" % port)


def thread_connect(port, deadline_s=10):
    """Blocking connect from a thread, retried while the server starts."""
    end = time.monotonic() + deadline_s
    while True:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(30)
        try:
            s.connect((HOST, port))
            return s
        except ConnectionRefusedError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.005)


def set_rst_on_close(s):
    """SO_LINGER 0: close() then sends RST instead of FIN."""
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


async def echo_lines(reader, writer):
    """Server handler: echo each line until EOF, then close."""
    while True:
        line = await reader.readline()
        if not line:
            break
        await writer.awrite(line)
    await writer.aclose()


# ---- TLS -------------------------------------------------------------------------


def openssl_command():
    """The openssl binary (scripts/install-deps.sh installs it)."""
    exe = shutil.which("openssl")
    if exe:
        return exe
    pytest.fail("the `openssl` command is needed to make the test certificate: "
                "scripts/install-deps.sh installs it (Debian's openssl package)")


@pytest.fixture
def cert(tmp_path):
    """(cert.pem, key.pem) of a self-signed certificate for localhost / 127.0.0.1."""
    certfile, keyfile = tmp_path / "cert.pem", tmp_path / "key.pem"
    proc = subprocess.run(
        [openssl_command(), "req", "-x509", "-newkey", "rsa:2048", "-nodes",
         "-keyout", str(keyfile), "-out", str(certfile), "-days", "1",
         "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, "openssl req failed: " + proc.stderr
    return str(certfile), str(keyfile)


def server_context(cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert[0], cert[1])
    return ctx


def client_context(cert, check_hostname):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(cert[0])
    ctx.check_hostname = check_hostname
    return ctx


class _ScriptedSSLSocket(ssl.SSLSocket):
    def send(self, data, flags=0):
        self.given.append(data)
        return self.answer(data)


def scripted_ssl_socket(answer):
    """An ssl.SSLSocket (the streams treat it as one; never handshaken) whose
    send(data) keeps data in .given and returns answer(data). Close it."""
    a, b = socket.socketpair()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.sslsocket_class = _ScriptedSSLSocket
    s = ctx.wrap_socket(a, do_handshake_on_connect=False)
    b.close()
    s.given, s.answer = [], answer
    return s
