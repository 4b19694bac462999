"""uasyncio.websocket.server: a WebSocket server in the test's own loop, and
clients made of plain sockets that send hand-built (masked) frames.

Each client runs in a thread with blocking sockets and a timeout, while the
test's main coroutine keeps the loop running until the clients are done, the
whole bounded by the loop's wait_for and a pytest-timeout mark. The server's
handler reads the GET line, does the handshake with WSReader and echoes each
message with recv()/send(); it records what it saw (close codes, errors).
The `loop` fixture fails the test if a file descriptor was left open."""
import base64
import hashlib
import io
import os
import socket
import struct
import threading
import time

import pytest

import uasyncio
from conftest import run_program
from uasyncio.websocket.server import MAX_MESSAGE, WSConn, WSReader, WSWriter, make_respkey

HOST = "127.0.0.1"
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="            # RFC 6455, section 1.3
ACCEPT = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
CLIENT_TIMEOUT = 10     # seconds any one blocking client call may take


# ---- frames ---------------------------------------------------------------------


def mask_bytes(data, key):
    """data XOR the repeated 4-byte key (masking is its own inverse)."""
    n = len(data)
    if not n:
        return b""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, key=None, length=None):
    """A client frame: header (shortest length form unless length is given:
    then that value, in the form it needs) and the payload, masked."""
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        hdr = bytes([b0, mbit | n])
    elif n < 65536:
        hdr = bytes([b0, mbit | 126]) + struct.pack(">H", n)
    else:
        hdr = bytes([b0, mbit | 127]) + struct.pack(">Q", n)
    if mask:
        key = key or os.urandom(4)
        return hdr + key + mask_bytes(payload, key)
    return hdr + payload


def close_payload(code, reason=b""):
    return struct.pack(">H", code) + reason


def accept_for(key):
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def text_of(n):
    """A str of exactly n UTF-8 bytes, with two-byte characters in it."""
    return "\u00e9" * (n // 2) + "a" * (n % 2)


def binary_of(n, seed=b"ws"):
    out = bytearray()
    i = 0
    while len(out) < n:
        out += hashlib.sha256(seed + str(i).encode()).digest()
        i += 1
    return bytes(out[:n])


class Client:
    """A blocking WebSocket client on a plain socket, for a thread."""

    def __init__(self, port, rcvbuf=None):
        end = time.monotonic() + CLIENT_TIMEOUT
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.settimeout(CLIENT_TIMEOUT)
            if rcvbuf:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
            try:
                s.connect((HOST, port))
                break
            except ConnectionRefusedError:
                s.close()
                if time.monotonic() > end:
                    raise
                time.sleep(0.005)
        self.sock = s
        self.buf = bytearray()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _more(self):
        data = self.sock.recv(1 << 20)
        if not data:
            raise EOFError("the server closed the connection (%d bytes left over)" % len(self.buf))
        self.buf += data

    def recv_exact(self, n):
        while len(self.buf) < n:
            self._more()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def handshake(self, key=KEY, path="/", extra=b""):
        """Send the upgrade request; return (status line, headers dict)."""
        req = b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n"
        req += b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
        if key is not None:
            req += b"Sec-WebSocket-Key: " + key + b"\r\n"
        req += b"Sec-WebSocket-Version: 13\r\n" + extra + b"\r\n"
        self.send(req)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, rest = bytes(self.buf).split(b"\r\n\r\n", 1)
        self.buf = bytearray(rest)
        lines = head.split(b"\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        return lines[0], headers

    def open(self, key=KEY):
        status, headers = self.handshake(key)
        assert status.startswith(b"HTTP/1.1 101"), status
        assert headers[b"sec-websocket-accept"] == accept_for(key)
        return self

    def read_frame(self, raw_header=None):
        """(fin, opcode, payload) of the next server frame; a server never masks.
        raw_header, a list, gets the header's bytes."""
        b0, b1 = self.recv_exact(2)
        assert b1 & 0x80 == 0, "a server frame was masked"
        assert b0 & 0x70 == 0, "a reserved bit was set"
        n = b1 & 0x7F
        ext = b""
        if n == 126:
            ext = self.recv_exact(2)
            n = struct.unpack(">H", ext)[0]
        elif n == 127:
            ext = self.recv_exact(8)
            n = struct.unpack(">Q", ext)[0]
        if raw_header is not None:
            raw_header.append(bytes([b0, b1]) + ext)
        return bool(b0 & 0x80), b0 & 0x0F, self.recv_exact(n)

    def message(self):
        """The next data message: (opcode, payload); fragments joined."""
        opcode, parts = None, []
        while True:
            fin, op, payload = self.read_frame()
            assert op in (TEXT, BINARY, CONT), "expected a data frame, got opcode %d" % op
            if opcode is None:
                assert op != CONT
                opcode = op
            else:
                assert op == CONT
            parts.append(payload)
            if fin:
                return opcode, b"".join(parts)

    def expect_close(self, code):
        """The next frame is a close with code; then the server closes the TCP
        connection (no more bytes, then end of stream)."""
        fin, op, payload = self.read_frame()
        assert (fin, op) == (True, CLOSE), (fin, op, payload[:50])
        got = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else None
        assert got == code, "close status %r, expected %r (payload %r)" % (got, code, payload)
        self.expect_eof()
        return payload

    def expect_eof(self):
        assert self.buf == b"", bytes(self.buf[:50])
        assert self.sock.recv(100) == b"", "the server did not close the connection"


# ---- the server under test ----------------------------------------------------------


class EchoServer:
    """start_server on 127.0.0.1 port 0 in the test's loop; its handler does
    readline, WSReader, then echoes with recv/send until recv() gives None."""

    def __init__(self, loop, body=None, **ws_kw):
        self.loop = loop
        self.body = body        # async body(ws) instead of the echo, if given
        self.ws_kw = ws_kw
        self.active = 0
        self.served = 0
        self.closes = []        # close_code of each WebSocket once recv() gave None
        self.errors = []        # ValueError from WSReader
        self.requests = []      # the GET lines
        self.srv = uasyncio.start_server(self.handler, HOST, 0, backlog=64)
        loop.create_task(self.srv)
        loop.run_until_complete(uasyncio.sleep_ms(1))   # its first step binds
        self.port = self.srv.socket.getsockname()[1]

    async def handler(self, reader, writer):
        self.active += 1
        try:
            self.requests.append(await reader.readline())
            try:
                ws = await WSReader(reader, writer, **self.ws_kw)
            except ValueError as e:
                self.errors.append(e)
                return
            if self.body:
                await self.body(ws)
                return
            while True:
                msg = await ws.recv()
                if msg is None:
                    break
                await ws.send(msg)
            self.closes.append(ws.close_code)
        finally:
            self.active -= 1
            self.served += 1

    def run_clients(self, *clients, secs=40):
        """Run each client(port) in a thread while the loop runs; wait for
        them and for every connection's handler to end; stop the server.
        A client's exception is raised here."""
        errors = []
        threads = []

        def wrap(fn):
            def body():
                try:
                    fn(self.port)
                except BaseException as e:   # raised below, in the test
                    errors.append(e)
            return body

        async def main():
            for fn in clients:
                th = threading.Thread(target=wrap(fn), daemon=True)
                th.start()
                threads.append(th)
            await until(lambda: not any(th.is_alive() for th in threads), secs)
            await until(lambda: self.active == 0, 5)
            uasyncio.cancel(self.srv)
            await uasyncio.sleep_ms(20)

        try:
            run(self.loop, main(), secs + 10)
        except BaseException:
            # An exception out of the loop (from a handler, or a timeout):
            # stop the server so that its listening socket is closed.
            uasyncio.cancel(self.srv)
            try:
                self.loop.run_until_complete(uasyncio.sleep_ms(20))
            except Exception:
                pass
            raise
        finally:
            for th in threads:
                th.join(CLIENT_TIMEOUT)
        if errors:
            raise errors[0]


def run(loop, coro, secs=30):
    async def bounded():
        return await uasyncio.wait_for(coro, secs)

    return loop.run_until_complete(bounded())


async def until(cond, secs=20):
    end = time.monotonic() + secs
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached in %s s" % secs)
        await uasyncio.sleep_ms(5)


def good_client(port, word="still serving"):
    """Opens, echoes one text and one binary message, closes with 1000."""
    with Client(port) as c:
        c.open()
        c.send(frame(TEXT, word.encode()))
        assert c.message() == (TEXT, word.encode())
        c.send(frame(BINARY, b"\x00\xff" + word.encode()))
        assert c.message() == (BINARY, b"\x00\xff" + word.encode())
        c.send(frame(CLOSE, close_payload(1000)))
        c.expect_close(1000)


# ---- handshake -----------------------------------------------------------------------


def test_make_respkey_is_the_rfc_6455_example_with_a_newline():
    assert make_respkey(KEY) == ACCEPT + b"\n"
    assert make_respkey(KEY.decode()) == ACCEPT + b"\n"
    assert accept_for(KEY) == ACCEPT
    other = base64.b64encode(os.urandom(16))
    assert make_respkey(other) == accept_for(other) + b"\n"


@pytest.mark.timeout(30)
def test_handshake_answers_101_with_the_accept_key(loop):
    server = EchoServer(loop)
    seen = {}

    def client(port):
        with Client(port) as c:
            status, headers = c.handshake(KEY, path="/chat?x=1")
            seen["status"], seen["headers"] = status, headers
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert seen["status"] == b"HTTP/1.1 101 Switching Protocols"
    h = seen["headers"]
    assert h[b"sec-websocket-accept"] == ACCEPT
    assert h[b"upgrade"].lower() == b"websocket"
    assert h[b"connection"].lower() == b"upgrade"
    assert server.requests == [b"GET /chat?x=1 HTTP/1.1\r\n"]
    assert server.closes == [1000]
    assert server.errors == []


@pytest.mark.timeout(30)
def test_handshake_without_a_key_gets_400_and_the_connection_closed(loop):
    server = EchoServer(loop)
    seen = {}

    def client(port):
        with Client(port) as c:
            status, headers = c.handshake(key=None)
            seen["status"] = status
            c.expect_eof()
        good_client(port)

    server.run_clients(client)
    assert seen["status"].startswith(b"HTTP/1.1 400"), seen["status"]
    assert len(server.errors) == 1 and isinstance(server.errors[0], ValueError)
    assert "Sec-WebSocket-Key" in str(server.errors[0])
    assert server.closes == [1000]


# ---- echo -------------------------------------------------------------------------------

SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


def length_form(n):
    return 0 if n < 126 else 2 if n < 65536 else 8


@pytest.mark.timeout(60)
def test_text_and_binary_echo_at_every_length_form(loop):
    server = EchoServer(loop)
    headers = []

    def client(port):
        with Client(port) as c:
            c.open()
            for n in SIZES:
                for opcode, payload in ((TEXT, text_of(n).encode()), (BINARY, binary_of(n))):
                    assert len(payload) == n
                    c.send(frame(opcode, payload))
                    raw = []
                    fin, op, got = c.read_frame(raw)
                    assert (fin, op, len(got)) == (True, opcode, n)
                    assert got == payload, "%s message of %d bytes differs" % (opcode, n)
                    headers.append((n, len(raw[0]) - 2))
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    # The server's frames use the shortest length form: 7, 16 or 64 bits.
    assert headers == [(n, length_form(n)) for n in SIZES for _ in (TEXT, BINARY)]
    assert server.closes == [1000]


@pytest.mark.timeout(30)
def test_lengths_in_a_longer_form_than_needed_are_accepted(loop):
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            key = os.urandom(4)
            # 5 bytes in the 16-bit form, 300 bytes in the 64-bit form.
            c.send(bytes([0x81, 0x80 | 126]) + struct.pack(">H", 5) + key + mask_bytes(b"short", key))
            assert c.message() == (TEXT, b"short")
            body = binary_of(300)
            c.send(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 300) + key + mask_bytes(body, key))
            assert c.message() == (BINARY, body)
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert server.closes == [1000]


@pytest.mark.timeout(30)
def test_a_frame_trickled_in_byte_by_byte_is_echoed_whole(loop):
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            c.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            data = frame(TEXT, "h\u00e9llo \u20ac".encode())
            for i in range(len(data)):
                c.send(data[i:i + 1])
                time.sleep(0.002)
            assert c.message() == (TEXT, "h\u00e9llo \u20ac".encode())
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert server.closes == [1000]


# ---- fragmentation, control frames ----------------------------------------------------------


@pytest.mark.timeout(30)
def test_fragmented_message_with_a_ping_in_between(loop):
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            euro = "\u20ac".encode()      # 3 bytes, split across two fragments
            c.send(frame(TEXT, b"Hel", fin=False)
                   + frame(PING, b"are you there?")
                   + frame(CONT, b"lo wor" + euro[:1], fin=False)
                   + frame(PONG, b"unsolicited")     # ignored
                   + frame(CONT, b"", fin=False)
                   + frame(CONT, euro[1:] + b"ld", fin=True))
            assert c.read_frame() == (True, PONG, b"are you there?")
            assert c.message() == (TEXT, b"Hello wor" + euro + b"ld")
            # Binary in fragments, and an empty ping.
            c.send(frame(BINARY, b"\x00\x01", fin=False) + frame(PING, b"")
                   + frame(CONT, b"\x02\xff", fin=True))
            assert c.read_frame() == (True, PONG, b"")
            assert c.message() == (BINARY, b"\x00\x01\x02\xff")
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert server.closes == [1000]


NO_PONG = "no pong within 2 s"


def pong_or_timeout(c, secs=2):
    c.sock.settimeout(secs)
    try:
        return c.read_frame()
    except socket.timeout:
        return NO_PONG
    finally:
        c.sock.settimeout(CLIENT_TIMEOUT)


@pytest.mark.timeout(30)
def test_a_ping_between_messages_is_answered_at_once(loop):
    """A ping on its own (a client's keep-alive; here with the largest control
    payload, 125 bytes) gets its pong while the handler waits in recv(),
    without another message having to come."""
    server = EchoServer(loop)
    payload = binary_of(125)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"one"))
            assert c.message() == (TEXT, b"one")
            c.send(frame(PING, payload))
            pong = pong_or_timeout(c)
            c.send(frame(TEXT, b"two"))
            if pong == NO_PONG:
                late = c.read_frame()    # it comes once a message does
                assert c.message() == (TEXT, b"two")
                raise AssertionError("%s; it came only after the next message: %r"
                                     % (NO_PONG, late[:2] + (late[2][:20],)))
            assert pong == (True, PONG, payload)
            assert c.message() == (TEXT, b"two")
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert server.closes == [1000]


@pytest.mark.timeout(30)
def test_a_ping_between_fragments_is_answered_before_the_message_ends(loop):
    """RFC 6455 5.5.2: a pong "as soon as is practical". A client that pings
    in the middle of a message it has not finished sending gets its pong
    without having to finish the message first."""
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"first half, ", fin=False))
            c.send(frame(PING, b"keepalive"))
            pong = pong_or_timeout(c)
            c.send(frame(CONT, b"second half", fin=True))
            if pong == NO_PONG:
                late = c.read_frame()    # it comes once the message is whole
                assert c.message() == (TEXT, b"first half, second half")
                raise AssertionError("%s while the message was unfinished; it came only "
                                     "after the message: %r" % (NO_PONG, late))
            assert pong == (True, PONG, b"keepalive")
            assert c.message() == (TEXT, b"first half, second half")
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert server.closes == [1000]


# ---- the close handshake -----------------------------------------------------------------------


@pytest.mark.timeout(30)
@pytest.mark.parametrize("payload, answer, code", [
    (close_payload(1000, b"bye"), close_payload(1000), 1000),
    (close_payload(1001, b"going away"), close_payload(1001), 1001),
    (close_payload(4000), close_payload(4000), 4000),
    (b"", b"", 1005),      # no status: answered with an empty close
], ids=["1000-bye", "1001", "4000", "empty"])
def test_close_handshake(loop, payload, answer, code):
    server = EchoServer(loop)
    got = {}

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"before closing"))
            assert c.message() == (TEXT, b"before closing")
            c.send(frame(CLOSE, payload))
            fin, op, body = c.read_frame()
            got["frame"] = (fin, op, body)
            c.expect_eof()        # then the server closes the TCP connection

    server.run_clients(client)
    assert got["frame"] == (True, CLOSE, answer)
    assert server.closes == [code]


# ---- malformed input ------------------------------------------------------------------------------


def big_header(length):
    """A masked binary frame header announcing length bytes (64-bit form)."""
    return bytes([0x82, 0x80 | 127]) + struct.pack(">Q", length) + os.urandom(4)


MALFORMED = [
    # id, bytes sent after the handshake, close status expected, WSReader kwargs
    ("bad-opcode-3", frame(3, b"abc"), 1002, {}),
    ("bad-opcode-11", frame(11, b""), 1002, {}),
    ("reserved-bit-rsv1", frame(TEXT, b"abc", rsv=4), 1002, {}),
    ("reserved-bit-rsv3", frame(BINARY, b"abc", rsv=1), 1002, {}),
    ("unmasked-frame", frame(TEXT, b"abc", mask=False), 1002, {}),
    ("continuation-without-start", frame(CONT, b"abc"), 1002, {}),
    ("new-message-inside-a-fragmented-one", frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"), 1002, {}),
    ("control-frame-of-126-bytes", frame(PING, b"x" * 126), 1002, {}),
    ("fragmented-ping", frame(PING, b"abc", fin=False), 1002, {}),
    ("fragmented-close", frame(CLOSE, close_payload(1000), fin=False), 1002, {}),
    ("64-bit-length-with-top-bit", bytes([0x82, 0xFF]) + b"\x80" + b"\x00" * 7 + b"abcd", 1002, {}),
    ("invalid-utf8", frame(TEXT, b"abc\xff"), 1007, {}),
    ("invalid-utf8-surrogate", frame(TEXT, b"\xed\xa0\x80"), 1007, {}),
    ("invalid-utf8-overlong", frame(TEXT, b"\xc0\xaf"), 1007, {}),
    ("invalid-utf8-across-fragments",
     frame(TEXT, b"abc\xe2\x82", fin=False) + frame(CONT, b"(def"), 1007, {}),
    ("text-ending-inside-a-character",
     frame(TEXT, b"abc\xe2\x82", fin=False) + frame(CONT, b"", fin=True), 1007, {}),
    ("close-with-code-999", frame(CLOSE, close_payload(999)), 1002, {}),
    ("close-with-code-1005", frame(CLOSE, close_payload(1005)), 1002, {}),
    ("close-with-1-byte-payload", frame(CLOSE, b"\x03"), 1002, {}),
    ("close-with-invalid-utf8-reason", frame(CLOSE, close_payload(1000, b"\xff")), 1007, {}),
    ("message-over-max_message", frame(BINARY, b"x" * 1025), 1009, {"max_message": 1024}),
    ("fragments-over-max_message",
     frame(BINARY, b"x" * 600, fin=False) + frame(CONT, b"y" * 600), 1009, {"max_message": 1024}),
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("data, code, kw", [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_malformed_input_closes_with_its_status_and_the_server_goes_on(loop, data, code, kw):
    server = EchoServer(loop, **kw)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"fine so far"))
            assert c.message() == (TEXT, b"fine so far")
            c.send(data)
            c.expect_close(code)
        good_client(port)

    server.run_clients(client)
    assert server.closes == [code, 1000]


@pytest.mark.timeout(30)
def test_a_1gb_length_is_refused_with_1009_at_once(loop):
    """The header alone is enough: the close comes without the server waiting
    for (or buffering) the announced gigabyte."""
    server = EchoServer(loop, max_message=64 * 1024)
    took = {}

    def client(port):
        with Client(port) as c:
            c.open()
            c.sock.settimeout(5)
            t0 = time.monotonic()
            c.send(big_header(1 << 30) + b"only a little data")
            c.expect_close(1009)
            took["s"] = time.monotonic() - t0
        good_client(port)

    server.run_clients(client)
    assert took["s"] < 2, took
    assert server.closes == [1009, 1000]


@pytest.mark.timeout(30)
def test_a_1gb_length_is_refused_by_the_default_limit(loop):
    assert MAX_MESSAGE == 16 * 1024 * 1024
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            c.sock.settimeout(5)
            c.send(big_header(1 << 30))
            c.expect_close(1009)
        good_client(port)

    server.run_clients(client)
    assert server.closes == [1009, 1000]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("cut", ["mid-payload", "mid-header", "after-handshake"])
def test_a_truncated_frame_then_the_client_closes(loop, cut):
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            if cut == "mid-payload":
                c.send(frame(BINARY, b"z" * 100)[:30])
            elif cut == "mid-header":
                c.send(big_header(1000)[:5])
            time.sleep(0.05)
        # The server ends that connection by itself; a new one is served.
        good_client(port)

    server.run_clients(client)
    assert server.closes == [1006, 1000]      # 1006: no close frame came
    assert server.served == 2


# ---- many clients ---------------------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_50_concurrent_websocket_clients_each_get_their_own_echo(loop):
    n = 50
    server = EchoServer(loop)
    done = []
    start = threading.Barrier(n, timeout=CLIENT_TIMEOUT)

    def make(i):
        def client(port):
            with Client(port) as c:
                key = base64.b64encode(os.urandom(16))
                c.open(key)                   # checks the accept key of this key
                start.wait()                  # all 50 are open at once
                for j in range(5):
                    word = "client %d message %d \u00e9" % (i, j)
                    c.send(frame(TEXT, word.encode()))
                    assert c.message() == (TEXT, word.encode())
                    blob = binary_of(1000 + i * 37 + j, seed=b"%d" % i)
                    c.send(frame(BINARY, blob))
                    assert c.message() == (BINARY, blob)
                c.send(frame(CLOSE, close_payload(1000)))
                c.expect_close(1000)
                done.append(i)
        return client

    server.run_clients(*[make(i) for i in range(n)])
    assert sorted(done) == list(range(n))
    assert server.closes == [1000] * n


@pytest.mark.timeout(60)
def test_concurrent_senders_on_one_connection_never_interleave_frames(loop):
    """Two tasks send large messages on one WebSocket while a third echoes
    what it receives: every frame arrives whole (one write at a time)."""
    n, size = 20, 100 * 1024
    got = []

    async def body(ws):
        async def sender(tag):
            for i in range(n):
                await ws.send(binary_of(size, seed=b"%s%d" % (tag, i)))
                await uasyncio.sleep_ms(0)

        loop.create_task(sender(b"a"))
        loop.create_task(sender(b"b"))
        while True:
            msg = await ws.recv()
            if msg is None:
                break
            await ws.send(msg)

    server = EchoServer(loop, body=body)

    def client(port):
        with Client(port, rcvbuf=16384) as c:    # small: the server's writes block
            c.open()
            for i in range(n):
                c.send(frame(TEXT, b"ping %d" % i))
            time.sleep(0.2)
            expected = {binary_of(size, seed=b"%s%d" % (t, i)) for t in (b"a", b"b") for i in range(n)}
            while len(got) < 3 * n:
                got.append(c.message())
            assert {m for op, m in got if op == BINARY} == expected
            assert [m for op, m in got if op == TEXT] == [b"ping %d" % i for i in range(n)]
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert len(got) == 3 * n


@pytest.mark.timeout(30)
def test_a_sender_waiting_behind_a_blocked_write_does_not_spin(loop):
    """One task's 8 MB send is stuck (the client does not read); a second
    task's send waits its turn. Waiting costs no CPU: the loop sleeps."""
    big = binary_of(8 << 20)
    cpu = {}

    async def body(ws):
        async def second():
            await uasyncio.sleep_ms(100)       # the big write is blocked by now
            t0 = time.thread_time()            # the loop runs in this thread

            async def watch():
                await uasyncio.sleep_ms(600)
                cpu["waiting"] = time.thread_time() - t0
            loop.create_task(watch())
            await ws.send(b"small")
            cpu["small sent"] = True

        loop.create_task(second())
        await ws.send(big)
        msg = await ws.recv()
        assert msg is None

    server = EchoServer(loop, body=body)
    got = []

    def client(port):
        with Client(port, rcvbuf=65536) as c:
            c.open()
            time.sleep(1.0)
            got.append(c.message())
            got.append(c.message())
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert got == [(BINARY, big), (BINARY, b"small")]
    assert cpu["small sent"]
    assert cpu["waiting"] < 0.3, "the loop used %.2f s of CPU in 0.6 s of waiting" % cpu["waiting"]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("parked", [False, True], ids=["alone", "another-sender-parked"])
@pytest.mark.parametrize("reading", [False, True], ids=["read-after", "read-waiting"])
def test_a_write_cancelled_half_way_ends_the_connection(loop, parked, reading):
    """An 8 MB send stuck on a client that does not read is cancelled: the
    connection is closed (the client gets part of the frame, then the end of
    the stream); a send parked behind it raises OSError; reads return None
    (the connection is over, close_code 1006), whether a task was already
    waiting in recv() or reads later."""
    big = binary_of(8 << 20)
    seen = {}

    async def body(ws):
        async def big_send():
            try:
                await ws.send(big)
            except uasyncio.CancelledError:
                seen["cancelled"] = True
                raise

        async def small_send():
            await uasyncio.sleep_ms(50)            # behind the blocked big write
            try:
                await ws.send(b"small")
                seen["small"] = "sent"
            except OSError as e:
                seen["small"] = e

        async def canceller():
            await uasyncio.sleep_ms(150)
            uasyncio.cancel(sender)

        sender = big_send()
        loop.create_task(sender)
        if parked:
            loop.create_task(small_send())
        loop.create_task(canceller())
        if not reading:
            await uasyncio.sleep_ms(250)           # read only after the cancel
        for key, read in (("recv", ws.recv), ("again", ws.read)):
            try:
                seen[key] = await read()
            except OSError as e:
                seen[key] = e
        seen["code"] = ws.close_code

    server = EchoServer(loop, body=body)
    got = {}

    def client(port):
        with Client(port, rcvbuf=65536) as c:
            c.open()
            time.sleep(0.5)
            n = 0
            while True:
                data = c.sock.recv(1 << 20)
                if not data:
                    break
                n += len(data)
            got["bytes"] = n

    server.run_clients(client)
    assert seen.get("cancelled") is True
    assert 0 < got["bytes"] < len(big)          # part of the frame, then EOF
    if parked:
        assert isinstance(seen["small"], OSError), seen["small"]
    assert seen["recv"] is None, "recv() after the cancelled write gave %r" % (seen["recv"],)
    assert seen["again"] == b"", "read() after that gave %r" % (seen["again"],)
    assert seen["code"] == 1006


@pytest.mark.timeout(30)
def test_broadcast_to_several_clients_as_in_the_chat_example(loop):
    """Each message goes to every client, sent by the receiving client's task
    to the others' WebSockets while they wait in recv()."""
    n, rounds = 5, 4
    clients = set()
    ready = threading.Barrier(n, timeout=CLIENT_TIMEOUT)
    heard = {}

    async def body(ws):
        clients.add(ws)
        try:
            while True:
                msg = await ws.recv()
                if msg is None:
                    break
                for other in list(clients):
                    await other.send(msg)
        finally:
            clients.discard(ws)

    server = EchoServer(loop, body=body)

    def make(i):
        def client(port):
            with Client(port) as c:
                c.open()
                ready.wait()
                for r in range(rounds):
                    c.send(frame(TEXT, ("%d says %d \u00e9" % (i, r)).encode()))
                msgs = [c.message() for _ in range(n * rounds)]
                heard[i] = msgs
                ready.wait()      # nobody leaves before everyone has heard all
                c.send(frame(CLOSE, close_payload(1000)))
                c.expect_close(1000)
        return client

    server.run_clients(*[make(i) for i in range(n)])
    everything = sorted(("%d says %d \u00e9" % (i, r)).encode() for i in range(n) for r in range(rounds))
    for i in range(n):
        assert sorted(m for op, m in heard[i]) == everything
        assert all(op == TEXT for op, m in heard[i])
        for j in range(n):   # each sender's messages arrive in order
            mine = [m for op, m in heard[i] if m.startswith(b"%d says" % j)]
            assert mine == [("%d says %d \u00e9" % (j, r)).encode() for r in range(rounds)]


@pytest.mark.timeout(30)
def test_read_n_awrite_binary_and_a_server_side_close(loop):
    seen = {}

    async def body(ws):
        seen["parts"] = [await ws.read(4), await ws.read(4), await ws.read(4)]
        seen["whole"] = await ws.read()
        await ws.awrite(b"valid utf-8 \xc3\xa9")          # bytes, valid UTF-8: text
        await ws.awrite(b"\xff\xfe")                      # not UTF-8: binary
        await ws.awrite(b"abc", binary=True)
        await ws.awrite("a str")
        await ws.awrite(bytearray(b"ba"), binary=False)
        await ws.send(b"bytes")                          # send: bytes are binary
        await ws.send("text")
        errors = []
        for call in (lambda: ws.awrite("x", binary=True), lambda: ws.awrite(b"\xff", binary=False),
                     lambda: ws.send(123), lambda: ws.aclose(999), lambda: ws.aclose(1005)):
            try:
                await call()
            except (TypeError, ValueError) as e:
                errors.append(type(e))
        seen["errors"] = errors
        await ws.aclose(4001, "done here")
        try:
            await ws.send("too late")
        except OSError:
            seen["late"] = "OSError"
        seen["after"] = await ws.recv()

    server = EchoServer(loop, body=body)
    got = []

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"abcdefghij") + frame(BINARY, b"\x00next"))
            for _ in range(7):
                got.append(c.message())
            payload = c.expect_close(4001)
            got.append(payload[2:])

    server.run_clients(client)
    assert seen["parts"] == [b"abcd", b"efgh", b"ij"]
    assert seen["whole"] == b"\x00next"
    assert got == [(TEXT, "valid utf-8 \u00e9".encode()), (BINARY, b"\xff\xfe"), (BINARY, b"abc"),
                   (TEXT, b"a str"), (TEXT, b"ba"), (BINARY, b"bytes"), (TEXT, b"text"), b"done here"]
    assert seen["errors"] == [TypeError, ValueError, TypeError, ValueError, ValueError]
    assert seen["late"] == "OSError"
    assert seen["after"] is None


# ---- the API -----------------------------------------------------------------------------------------


class MockStream:
    def __init__(self, data):
        self.bio = io.BytesIO(data)

    def read(self, n=-1):
        return self.bio.read(n)

    def readline(self):
        return self.bio.readline()


def test_wsconn_over_a_non_socket_reader_is_a_type_error(loop, tmp_path):
    a, b = socket.socketpair()
    try:
        writer = uasyncio.StreamWriter(b, {})
        # A StreamReader over an object that is not a socket.
        reader = uasyncio.StreamReader(a, MockStream(b"\x81\x80abcd"))
        with pytest.raises(TypeError):
            WSConn(reader, writer)
        # ... over a regular file.
        path = tmp_path / "f"
        path.write_bytes(b"\x81\x80abcd")
        with open(path, "rb") as f:
            with pytest.raises(TypeError):
                WSConn(uasyncio.StreamReader(f), writer)
        # Not a StreamReader at all.
        with pytest.raises(TypeError):
            WSConn(io.BytesIO(b""), writer)
        with pytest.raises(TypeError):
            WSConn(a, writer)
        # WSWriter wants what WSReader returned.
        with pytest.raises(TypeError):
            WSWriter(reader, writer)
    finally:
        a.close()
        b.close()


# ---- the StreamReader over the payloads ---------------------------------------------------------


@pytest.mark.timeout(30)
def test_wsreader_returns_a_streamreader_over_the_payloads(loop):
    """As uasyncio 2.0: WSReader() gives a StreamReader; readline() and
    readexactly(n) run across messages, read(n) takes part of a message and
    the next read the rest of it, and aclose() ends the connection."""
    seen = {}

    async def body(ws):
        seen["is_reader"] = isinstance(ws, uasyncio.StreamReader)
        seen["polls_socket"] = isinstance(ws.polls, socket.socket)
        seen["line1"] = await ws.readline()          # "ab" + "c\nd": across two messages
        seen["line2"] = await ws.readline()          # the rest of that message, then "e\n"
        seen["exact"] = await ws.readexactly(7)      # "fgh" + "ijkl"
        seen["part"] = await ws.read(2)              # "mn" of "mnop"
        seen["rest"] = await ws.read()               # "op": the rest of that message
        seen["recv"] = await ws.recv()               # the message API stays
        await ws.aclose()

    server = EchoServer(loop, body=body)

    def client(port):
        with Client(port) as c:
            c.open()
            for m in [b"ab", b"c\nd", b"e\n", b"fgh", b"ijkl", b"mnop"]:
                c.send(frame(BINARY, m))
            c.send(frame(TEXT, "\u00e9t\u00e9".encode()))
            c.expect_close(1000)

    server.run_clients(client)
    assert seen == {"is_reader": True, "polls_socket": True, "line1": b"abc\n", "line2": b"de\n",
                    "exact": b"fghijkl", "part": b"mn", "rest": b"op", "recv": "\u00e9t\u00e9"}


@pytest.mark.timeout(30)
def test_websocket_readline_and_readexactly_at_the_end_give_what_is_left(loop):
    seen = {}

    async def body(ws):
        seen["line"] = await ws.readline()
        seen["exact"] = await ws.readexactly(100)
        seen["after"] = await ws.read()

    server = EchoServer(loop, body=body)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(TEXT, b"one\ntwo"))
            c.send(frame(CLOSE, close_payload(1000)))
            c.expect_close(1000)

    server.run_clients(client)
    assert seen == {"line": b"one\n", "exact": b"two", "after": b""}


@pytest.mark.timeout(30)
def test_websocket_readline_over_the_readers_limit_raises_limitoverrunerror(loop):
    seen = {}

    async def handler(reader, writer):
        await reader.readline()
        ws = await WSReader(reader, writer)
        seen["errors"] = []
        while True:   # each time limit bytes pile up without a newline: an error
            try:
                seen["next"] = await ws.readline()
                break
            except uasyncio.LimitOverrunError as e:
                seen["errors"].append(e)
        await ws.aclose()

    async def main(port):
        done = []

        def client():
            with Client(port) as c:
                c.open()
                for _ in range(10):
                    c.send(frame(BINARY, b"x" * 30))   # 300 bytes, no newline
                c.send(frame(BINARY, b"ok\n"))
                c.expect_close(1000)
            done.append(1)

        th = threading.Thread(target=client, daemon=True)
        th.start()
        await until(lambda: done or not th.is_alive())
        th.join(CLIENT_TIMEOUT)

    srv = uasyncio.start_server(handler, HOST, 0, limit=100)
    loop.create_task(srv)
    loop.run_until_complete(uasyncio.sleep_ms(1))
    try:
        run(loop, main(srv.socket.getsockname()[1]))
    finally:
        uasyncio.cancel(srv)
        loop.run_until_complete(uasyncio.sleep_ms(20))
    assert seen["errors"] and all(isinstance(e, ValueError) and e.limit == 100 for e in seen["errors"])
    assert "limit of 100 bytes" in str(seen["errors"][0])
    # The bytes of the long line buffered when it went over were dropped;
    # what came after is read as usual.
    assert seen["next"].endswith(b"ok\n") and len(seen["next"]) <= 100


@pytest.mark.timeout(30)
@pytest.mark.parametrize("declared", [2 ** 63 - 1, 2 ** 63], ids=["2**63-1", "2**63"])
def test_a_frame_declaring_2_63_bytes_is_refused_before_any_allocation(loop, declared):
    """The header's length is judged before a byte of payload is buffered:
    2**63 - 1 is over max_message (1009), 2**63 is not a valid length (1002).
    Python's allocator (which holds the stream buffers) never grows much."""
    import tracemalloc
    server = EchoServer(loop)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", declared) + os.urandom(4) + b"0123456789")
            c.expect_close(1009 if declared < 2 ** 63 else 1002)

    tracemalloc.start()
    try:
        server.run_clients(client)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert server.closes == [1009 if declared < 2 ** 63 else 1002]
    assert peak < 4 << 20, peak


@pytest.mark.timeout(30)
def test_fragments_count_as_one_message_against_max_message(loop):
    """Ten fragments of 200 bytes are each under max_message=1024, the
    message is not: 1009 once the fragment that crosses it starts."""
    server = EchoServer(loop, max_message=1024)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(BINARY, b"a" * 200, fin=False))
            for _ in range(8):
                c.send(frame(CONT, b"b" * 200, fin=False))
            c.send(frame(CONT, b"c" * 200))
            c.expect_close(1009)
        good_client(port)

    server.run_clients(client)
    assert server.closes == [1009, 1000]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["readexactly", "readline", "read"])
def test_a_timed_out_websocket_read_leaves_its_bytes_for_the_next(loop, how):
    seen = {}
    sent = threading.Event()

    async def body(ws):
        op = {"readexactly": lambda: ws.readexactly(10), "readline": ws.readline, "read": ws.read}[how]
        try:
            # A first message of 5 bytes arrives; read() returns it at once,
            # the others wait for more and time out.
            seen["first"] = await uasyncio.wait_for_ms(op(), 300)
        except uasyncio.TimeoutError:
            seen["first"] = "timeout"
        sent.set()
        seen["second"] = await op()
        await ws.aclose()

    server = EchoServer(loop, body=body)

    def client(port):
        with Client(port) as c:
            c.open()
            c.send(frame(BINARY, b"12345"))
            assert sent.wait(CLIENT_TIMEOUT)
            c.send(frame(BINARY, b"6789\n"))
            c.expect_close(1000)

    server.run_clients(client)
    if how == "read":
        assert seen == {"first": b"12345", "second": b"6789\n"}
    else:
        assert seen == {"first": "timeout", "second": b"123456789\n"[:10]}




@pytest.mark.timeout(60)
@pytest.mark.parametrize("then", ["recv", "read", "readexactly", "readline"])
def test_after_a_line_over_the_limit_the_rest_of_its_message_is_all_a_read_gets(tmp_path, then):
    """readline() over the limit drops the line's bytes: the message being
    read shrinks by as many, so the next read returns only what is left of
    it (never bytes from past the buffer), then the next message. In a
    program of its own: reading past the buffer may crash."""
    proc = run_program(tmp_path, """
        import socket, sys
        import uasyncio
        from uasyncio.websocket.server import WSConn

        def frame(payload):   # a masked binary frame, key 0: the payload as it is
            return bytes([0x82, 0x80 | len(payload)]) + bytes(4) + payload

        async def main(then):
            a, b = socket.socketpair()
            a.setblocking(False)
            ws = WSConn(uasyncio.StreamReader(a, limit=10), uasyncio.StreamWriter(a, {}))
            close = bytes([0x88, 0x82]) + bytes(4) + b"\\x03\\xe8"   # 1000
            b.sendall(frame(b"x" * 50 + b"\\nabc") + frame(b"after") + close)
            seen = {}
            try:
                await ws.readline()
            except uasyncio.LimitOverrunError as e:
                seen["limit"] = e.limit
            op = {"recv": ws.recv, "read": ws.read, "readexactly": lambda: ws.readexactly(3),
                  "readline": ws.readline}[then]
            seen["rest"] = await op()
            seen["next"] = await ws.recv()
            await ws.aclose()
            b.close()
            print(sorted(seen.items()))

        loop = uasyncio.get_event_loop()
        loop.run_until_complete(main(sys.argv[1]))
        """, then)
    assert proc.returncode == 0, proc.stderr
    if then == "readline":   # no newline in what is left: it runs on into the next message
        want = [("limit", 10), ("next", None), ("rest", b"abcafter")]
    else:
        want = [("limit", 10), ("next", b"after"), ("rest", b"abc")]
    assert proc.stdout.strip() == repr(want)
