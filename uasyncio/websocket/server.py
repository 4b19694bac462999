"""uasyncio.websocket.server: a WebSocket (RFC 6455) server on uasyncio
streams. The frame parsing, masking, UTF-8 checks, fragmentation, ping/pong
and the close handshake are C (uasyncio._uasyncio.WSConn); this file only
answers the HTTP upgrade request.

    async def echo(reader, writer):
        await reader.readline()                  # the GET line
        ws = await WSReader(reader, writer)      # the handshake
        out = WSWriter(ws, writer)
        while True:
            msg = await ws.read()                # one message; b"" once closed
            if not msg:
                break
            await out.awrite(msg)
"""
from uasyncio.core import coroutine as _coroutine
from uasyncio._uasyncio import WSConn, ws_accept_key

__all__ = ["make_respkey", "WSReader", "WSWriter", "WSConn", "MAX_MESSAGE"]

MAX_MESSAGE = 16 * 1024 * 1024   # default limit of one message (close 1009 beyond)


def make_respkey(webkey):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key, base64 with a trailing
    newline (as uasyncio 2.0's)."""
    if isinstance(webkey, str):
        webkey = webkey.encode()
    return ws_accept_key(webkey) + b"\n"


@_coroutine
def WSReader(reader, writer, max_message=MAX_MESSAGE):
    """Read the rest of the upgrade request (headers up to the blank line),
    answer it, and return the WebSocket stream (a WSConn). A request that is
    not a WebSocket upgrade is answered 400 and closed (ValueError)."""
    webkey = None
    while True:
        line = yield from reader.readline()
        if not line:
            raise ValueError("connection closed during the WebSocket handshake")
        if line in (b"\r\n", b"\n"):
            break
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"sec-websocket-key":
            webkey = value.strip()
    if not webkey:
        yield from writer.awrite(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
        yield from writer.aclose()
        raise ValueError("not a WebSocket request: no Sec-WebSocket-Key")
    yield from writer.awrite(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                             + ws_accept_key(webkey) + b"\r\n\r\n")
    return WSConn(reader, writer, max_message)


def WSWriter(reader, writer):
    """The writing side: what WSReader returned (a WSConn) serves for both;
    awrite(data) sends str as a text message and bytes as binary (text if
    they are valid UTF-8 and binary is not asked for, as 2.0 sent text)."""
    if isinstance(reader, WSConn):
        return reader
    raise TypeError("WSWriter(reader, writer): reader must be what WSReader() returned")
