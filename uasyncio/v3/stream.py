"""uasyncio.v3 streams: open_connection, start_server, Server.

Stream (also StreamReader and StreamWriter) and the accept loop are C
(uasyncio._uasyncio.Stream, .Acceptor); this file only connects, listens,
wraps sockets in TLS (Python's ssl module) and holds the Server object's
glue. As MicroPython's, a TLS stream does its handshake within its first
reads and writes: a failed one raises there, in the task that uses it.
"""
import errno as _errno
import socket as _socket

from uasyncio import LimitOverrunError, _connect
from uasyncio._uasyncio import Acceptor as _Acceptor
from uasyncio._uasyncio import Stream
from uasyncio._uasyncio import StreamReader as _Reader
from uasyncio._uasyncio import _v3 as _core
from uasyncio.core import coroutine as _coroutine

StreamReader = Stream
StreamWriter = Stream

__all__ = ["Stream", "StreamReader", "StreamWriter", "Server", "open_connection", "start_server",
           "LimitOverrunError"]


def _errtext(err):
    return _errno.errorcode.get(err, str(err))   # as MicroPython: the errno's name


@_coroutine
def open_connection(host, port, ssl=None, server_hostname=None, limit=None):
    """Connect without blocking; returns (stream, stream). A refused or
    failed connect raises OSError. ssl: True (ssl.create_default_context())
    or an ssl.SSLContext; the handshake happens within the first reads and
    writes. limit (beyond MicroPython): readline()'s line limit (None: no
    limit)."""
    _check_limit(limit)   # a bad limit fails before connecting
    s, addr = yield from _connect(host, port, False, None, _errtext)
    if ssl:
        try:
            if ssl is True:
                import ssl as _ssl
                ssl = _ssl.create_default_context()
            s = ssl.wrap_socket(s, server_hostname=server_hostname or host, do_handshake_on_connect=False)
        except BaseException:
            s.close()
            raise
    st = Stream(s, {"peername": addr}, limit)
    return st, st


class Server:
    """What start_server() gives: close(), await wait_closed(), async with;
    and CPython's is_serving(), start_serving(), serve_forever(), sockets."""

    def __init__(self, socks, cb, ssl, limit, backlog):
        self._socks = socks
        self._cb, self._ssl, self._limit, self._backlog = cb, ssl, limit, backlog
        self._acceptors = []
        self._tasks = []
        self._closed = _core.Event()   # set by close(): ends serve_forever()
        self._forever = False          # a task is in serve_forever()
        self.state = False   # True once close() was called
        self.task = None     # the accept loop's task (the first one's, with several sockets)

    async def __aenter__(self):
        """async with server: ... (closed, and waited for, on the way out)."""
        return self

    async def __aexit__(self, exc_type, exc, tb):
        """Close the server and wait until it has ended."""
        self.close()
        await self.wait_closed()

    def _start(self):
        """Listen and start the accept loops (nothing if serving or closed)."""
        if self._tasks or self.state:
            return
        for s in self._socks:
            s.listen(self._backlog)
            if self._ssl:
                a = _Acceptor(s, _tls_handler(self._cb, self._ssl, self._limit), _core.create_task, True)
            else:
                a = _Acceptor(s, self._cb, _core.create_task, limit=self._limit)
            self._acceptors.append(a)
            addr = s.getsockname()
            where = "%s:%s" % addr[:2] if isinstance(addr, tuple) else addr
            self._tasks.append(_core.create_task(self._serve(a), name="accept loop " + str(where)))
        self.task = self._tasks[0]

    def close(self):
        """Stop listening: the listening sockets are closed, the server's tasks end."""
        for a in self._acceptors:
            a.close()   # first: from another thread it raises, and nothing changed
        self.state = True
        self._closed.set()
        if not self._acceptors:
            for s in self._socks:
                s.close()
        for t in self._tasks:
            t.cancel()

    async def wait_closed(self):
        """Wait until the server's tasks have ended (or, not started, until close())."""
        if self._tasks:
            for t in self._tasks:
                await t
        elif not self.state:
            await self._closed.wait()

    def is_serving(self):
        """True while it accepts connections (started, not closed)."""
        return bool(self._tasks) and not self.state

    async def start_serving(self):
        """Start accepting connections (start_server(..., start_serving=False))."""
        if self.state:
            raise RuntimeError("server %r is closed" % (self,))
        self._start()
        await _core.sleep_ms(0)

    async def serve_forever(self):
        """Accept connections until close() (from another task), or until the
        task is cancelled (which closes the server): both raise CancelledError."""
        if self.state:
            raise RuntimeError("server %r is closed" % (self,))
        if self._forever:
            raise RuntimeError("server %r is already being awaited on serve_forever()" % (self,))
        self._forever = True
        self._start()
        try:
            await self._closed.wait()
        except _core.CancelledError:
            try:
                self.close()
                await self.wait_closed()
            finally:
                raise
        finally:
            self._forever = False
        raise _core.CancelledError()

    def get_loop(self):
        """The loop the server runs on."""
        return _core.get_event_loop()

    async def _serve(self, acceptor):
        try:
            await acceptor
        except _core.CancelledError:
            # Closed on purpose: the server just ends. Otherwise (its parent
            # was cancelled, say) the cancellation goes on.
            if not self.state:
                raise

    @property
    def socket(self):
        """The listening socket (beyond MicroPython: to learn the port of port 0)."""
        return self._socks[0]

    @property
    def sockets(self):
        """As CPython's Server.sockets: the listening sockets, () once closed."""
        return () if self.state else tuple(self._socks)

    def __repr__(self):
        return "<Server %r%s>" % (self._socks[0] if len(self._socks) == 1 else self._socks,
                                  " closed" if self.state else "")


def _check_limit(limit):
    _Reader(None, limit=limit)   # raises for a bad limit, as 2.0's open_connection checks


def _tls_handler(cb, ctx, limit):
    # As MicroPython: cb runs at once; the handshake happens within the
    # stream's first reads and writes, and a failed one raises there. A
    # wrap that fails is reported, and that connection closed.
    def client(sock, peer):
        sock.setblocking(False)   # (the wrap takes the socket object's mode)
        s = ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        st = Stream(s, {"peername": peer}, limit)
        return cb(st, st)
    return client


def _listeners(host, port, family, flags, reuse_address, reuse_port):
    """Bound, non-blocking sockets for each address of (host, port): one
    host, several (a list), or all interfaces (None or "")."""
    hosts = host if isinstance(host, (list, tuple)) else [host or None]
    infos = []
    for h in hosts:
        for info in _socket.getaddrinfo(h, port, family, _socket.SOCK_STREAM, 0, flags):
            if info not in infos:
                infos.append(info)
    socks = []
    try:
        for fam, type_, proto, _, addr in infos:
            s = _socket.socket(fam, type_, proto)
            socks.append(s)
            s.setblocking(False)
            if reuse_address is None or reuse_address:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
            if reuse_port:
                s.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEPORT, 1)
            if fam == _socket.AF_INET6 and len(infos) > 1:
                # IPv6 apart from IPv4, each on its own socket (as CPython's).
                s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
            try:
                s.bind(addr)
            except OSError as e:
                if e.errno != _errno.EADDRNOTAVAIL or len(infos) == 1:
                    raise
                socks.pop().close()   # that family is not enabled here (as CPython skips it)
        if not socks:
            raise OSError(_errno.EADDRNOTAVAIL, "no address to listen on for %r" % (host,))
    except BaseException:
        for s in socks:
            s.close()
        raise
    return socks


async def start_server(cb, host=None, port=None, backlog=5, ssl=None, limit=None, *, family=0,
                       flags=_socket.AI_PASSIVE, sock=None, reuse_address=None, reuse_port=None,
                       start_serving=True):
    """Listen on (host, port) and run cb(reader, writer) as a task for each
    connection; returns the Server, started unless start_serving=False.
    ssl: an ssl.SSLContext. limit (beyond MicroPython): each stream's line
    limit (None: no limit). As CPython's: host None (or "") for all
    interfaces, or a list of hosts; sock: a socket bound already;
    reuse_address (default: on), reuse_port."""
    _check_limit(limit)
    if sock is not None:
        if host is not None or port is not None:
            raise ValueError("host/port and sock can not be specified at the same time")
        sock.setblocking(False)
        socks = [sock]
    else:
        socks = _listeners(host, port, family, flags, reuse_address, reuse_port)
    srv = Server(socks, cb, ssl, limit, backlog)
    if start_serving:
        try:
            srv._start()
            # Let the server's task start, so that it is there to be cancelled.
            await _core.sleep_ms(0)
        except BaseException:
            srv.close()
            raise
    return srv
