"""uasyncio: MicroPython's uasyncio 2.0 for CPython, with its event loop in C.

    import uasyncio as asyncio

The loop, the streams and the accept loop are C (uasyncio._uasyncio); this
file adds only the glue for connecting and for TLS, which go through
Python's socket and ssl modules.
"""
import errno as _errno
import os as _os
import socket as _socket

from uasyncio.core import *  # noqa: F401,F403
from uasyncio.core import __all__ as _core_all
from uasyncio.core import IORead, IOWrite, IOWriteDone, coroutine as _coroutine
from uasyncio._uasyncio import LimitOverrunError, PollEventLoop, StreamReader, StreamWriter  # noqa: F401
from uasyncio._uasyncio import start_server as _start_server

__all__ = _core_all + ["PollEventLoop", "StreamReader", "StreamWriter", "LimitOverrunError", "open_connection",
                       "start_server"]


def _close_now(sock):
    """Close sock as aclose() does (the running loop forgets its fd and
    wakes whoever waits on it) without yielding: fit for an except clause
    that may be handling GeneratorExit (a task being finalized), where a
    yield is an error."""
    for _ in StreamWriter(sock).aclose():   # closing never waits: nothing is yielded
        pass


def _tls_wrap(sock, ssl, server_side, server_hostname=None):
    """Wrap sock in TLS; the handshake waits on the loop, never blocks it."""
    import ssl as _ssl
    ctx = ssl
    if ctx is True:
        ctx = _ssl.create_default_context()
    sock.setblocking(False)
    s = ctx.wrap_socket(sock, server_side=server_side, do_handshake_on_connect=False,
                        server_hostname=None if server_side else server_hostname)
    try:   # wrap_socket took over the fd: from here on, s is what to close
        while True:
            try:
                s.do_handshake()
                return s
            except _ssl.SSLWantReadError:
                wait = IORead(s)
            except _ssl.SSLWantWriteError:
                wait = IOWrite(s)
            yield wait   # outside the handlers: what is thrown in here has no SSLWant* context
    except BaseException:
        _close_now(s)
        raise


def _connect(host, port, ssl, server_hostname, errtext=_os.strerror):
    """Connect without blocking, then (ssl: True or an SSLContext) the TLS
    handshake; returns (socket, peer address). A refused or failed connect
    raises OSError(err, errtext(err)). Both APIs' open_connection use it."""
    family, type_, proto, _, addr = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)[0]
    s = _socket.socket(family, type_, proto)
    try:
        s.setblocking(False)
        if family in (_socket.AF_INET, _socket.AF_INET6):
            s.setsockopt(_socket.IPPROTO_TCP, _socket.TCP_NODELAY, 1)
        err = s.connect_ex(addr)
        if err == _errno.EINPROGRESS:
            yield IOWrite(s)
            err = s.getsockopt(_socket.SOL_SOCKET, _socket.SO_ERROR)
            yield IOWriteDone(s)
        if err:
            raise OSError(err, errtext(err))
        if ssl:
            s = yield from _tls_wrap(s, ssl, False, server_hostname or host)
    except BaseException:
        _close_now(s)
        raise
    return s, addr


@_coroutine
def open_connection(host, port, ssl=False, server_hostname=None, limit=None):
    """Connect without blocking; returns (StreamReader, StreamWriter).
    A refused or failed connect raises OSError. ssl: True or an SSLContext.
    limit: the reader's line limit (None: no limit)."""
    StreamReader(None, limit=limit)   # a bad limit fails before connecting
    s, addr = yield from _connect(host, port, ssl, server_hostname)
    return StreamReader(s, limit=limit), StreamWriter(s, {"peername": addr})


def start_server(client_coro, host, port, backlog=10, ssl=None, limit=None):
    """A task to schedule: listens, and runs client_coro(reader, writer) for
    each connection. ssl: an SSLContext for a TLS server. limit: each
    reader's line limit (None: no limit)."""
    if ssl is None:
        return _start_server(client_coro, host, port, backlog, limit)

    @_coroutine
    def tls_client(reader, writer):
        try:
            s = yield from _tls_wrap(reader.ios, ssl, True)
        except (OSError, ValueError):
            return   # a failed handshake ends that connection only (_tls_wrap closed it)
        yield from client_coro(StreamReader(s, limit=limit), StreamWriter(s, writer.extra))

    return _start_server(tls_client, host, port, backlog, limit)
