"""uasyncio.v3's Stream and accept loop yield only what the uasyncio 2.0 loop
understands (IORead/IOWrite, None, SleepMs), so they work in 2.0 tasks too."""
import socket
import threading

import uasyncio
from uasyncio._uasyncio import Acceptor, Stream
from v3util import echo_lines

HOST = "127.0.0.1"


@uasyncio.coroutine
def connect(port):
    s = socket.socket()
    s.setblocking(False)
    s.connect_ex((HOST, port))
    yield uasyncio.IOWrite(s)
    yield uasyncio.IOWriteDone(s)
    return Stream(s, {"peername": (HOST, port)})


def test_a_stream_in_a_2_0_task_against_a_thread(loop):
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(1)
    port = lsock.getsockname()[1]

    def peer():
        s, _ = lsock.accept()
        with s:
            f = s.makefile("rwb")
            for line in f:
                f.write(line.upper())
                f.flush()
            f.close()

    t = threading.Thread(target=peer)
    t.start()

    async def main():
        st = await connect(port)
        st.write(b"hello\n")
        await st.drain()
        line = await st.readline()
        await st.awrite(b"abc\n")
        exact = await st.readexactly(4)
        await st.wait_closed()
        return line, exact

    try:
        assert loop.run_until_complete(main()) == (b"HELLO\n", b"ABC\n")
    finally:
        t.join(10)
        lsock.close()


def test_the_accept_loop_in_a_2_0_loop(loop):
    lsock = socket.socket()
    lsock.bind((HOST, 0))
    lsock.listen(8)
    lsock.setblocking(False)
    port = lsock.getsockname()[1]
    peers = []

    async def handler(reader, writer):
        assert reader is writer
        peers.append(writer.get_extra_info("peername")[0])
        await echo_lines(reader, writer)

    acceptor = Acceptor(lsock, handler, loop.create_task)

    async def serve():
        await acceptor

    async def main():
        loop.create_task(serve())
        got = []
        for i in range(3):
            st = await connect(port)
            st.write(b"client %d\n" % i)
            await st.drain()
            got.append(await st.readline())
            await st.wait_closed()
        acceptor.close()
        await uasyncio.sleep_ms(10)   # the server's task ends
        return got

    assert loop.run_until_complete(main()) == [b"client %d\n" % i for i in range(3)]
    assert peers == [HOST] * 3
    assert acceptor.closed and lsock.fileno() == -1
