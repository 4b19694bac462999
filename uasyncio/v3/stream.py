"""uasyncio.v3 streams: open_connection, start_server, Server.

Stream (also StreamReader and StreamWriter) and the accept loop are C
(uasyncio._uasyncio.Stream, .Acceptor); this file only connects, listens,
runs the TLS handshakes (through Python's ssl module) and holds the Server
object's glue.
"""
import errno as _errno
import socket as _socket

from uasyncio import LimitOverrunError, _connect, _tls_wrap
from uasyncio._uasyncio import Acceptor as _Acceptor
from uasyncio._uasyncio import Stream
from uasyncio._uasyncio import StreamReader as _Reader
from uasyncio._uasyncio import _v3 as _core
from uasyncio.core import coroutine as _coroutine

_tls_wrap = _coroutine(_tls_wrap)   # awaitable from async def too

StreamReader = Stream
StreamWriter = Stream

__all__ = ["Stream", "StreamReader", "StreamWriter", "Server", "open_connection", "start_server",
           "LimitOverrunError"]


def _errtext(err):
    return _errno.errorcode.get(err, str(err))   # as MicroPython: the errno's name


@_coroutine
def open_connection(host, port, ssl=None, server_hostname=None, limit=None):
    """Connect without blocking; returns (stream, stream). A refused or
    failed connect raises OSError. ssl: True or an ssl.SSLContext. limit
    (beyond MicroPython): readline()'s line limit (None: no limit)."""
    _check_limit(limit)   # a bad limit fails before connecting
    s, addr = yield from _connect(host, port, ssl, server_hostname, _errtext)
    st = Stream(s, {"peername": addr}, limit)
    return st, st


class Server:
    """What start_server() gives: close(), await wait_closed(), async with."""

    def __init__(self, acceptor):
        self._acceptor = acceptor
        self.state = False   # True once close() was called
        self.task = None

    async def __aenter__(self):
        """async with server: ... (closed, and waited for, on the way out)."""
        return self

    async def __aexit__(self, exc_type, exc, tb):
        """Close the server and wait until it has ended."""
        self.close()
        await self.wait_closed()

    def close(self):
        """Stop listening: the listening socket is closed, the server's task ends."""
        self._acceptor.close()   # first: from another thread it raises, and nothing changed
        self.state = True
        self.task.cancel()

    async def wait_closed(self):
        """Wait until the server's task has ended."""
        await self.task

    async def _serve(self):
        try:
            await self._acceptor
        except _core.CancelledError:
            # Closed on purpose: the server just ends. Otherwise (its parent
            # was cancelled, say) the cancellation goes on.
            if not self.state:
                raise

    @property
    def socket(self):
        """The listening socket (beyond MicroPython: to learn the port of port 0)."""
        return self._acceptor.sock

    @property
    def sockets(self):
        """As CPython's Server.sockets: the listening sockets."""
        return [self._acceptor.sock]

    def __repr__(self):
        return "<Server %r%s>" % (self._acceptor.sock, " closed" if self.state else "")


def _check_limit(limit):
    _Reader(None, limit=limit)   # raises for a bad limit, as 2.0's open_connection checks


def _tls_handler(cb, ctx, limit):
    async def client(sock, peer):
        try:
            s = await _tls_wrap(sock, ctx, True)
        except (OSError, ValueError):
            return   # a failed handshake ends that connection only (_tls_wrap closed it)
        st = Stream(s, {"peername": peer}, limit)
        await cb(st, st)
    return client


async def start_server(cb, host, port, backlog=5, ssl=None, limit=None):
    """Listen on (host, port) and run cb(reader, writer) as a task for each
    connection; returns the started Server. ssl: an ssl.SSLContext. limit
    (beyond MicroPython): each stream's line limit (None: no limit)."""
    _check_limit(limit)
    family, _, _, _, addr = _socket.getaddrinfo(host, port, 0, _socket.SOCK_STREAM)[0]
    s = _socket.socket(family, _socket.SOCK_STREAM)
    try:
        s.setblocking(False)
        s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        s.bind(addr)
        s.listen(backlog)
    except BaseException:
        s.close()
        raise
    if ssl:
        acceptor = _Acceptor(s, _tls_handler(cb, ssl, limit), _core.create_task, True)
    else:
        acceptor = _Acceptor(s, cb, _core.create_task, limit=limit)
    srv = Server(acceptor)
    srv.task = _core.create_task(srv._serve())
    try:
        # Let the server's task start, so that it is there to be cancelled.
        await _core.sleep_ms(0)
    except _core.CancelledError:
        srv.close()
        raise
    return srv
