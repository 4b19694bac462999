"""The server side's "peername": the address the client connected from, the
same through get_extra_info(), the 2.0 writer's .extra and v3's .e, asked
at once or only after the connection closed, over IPv4 and (where the
machine has it) IPv6."""
import socket
import threading

import pytest

import uasyncio
import uasyncio.v3 as v3
from conftest import run, until  # noqa: F401


def ipv6_loopback():
    """(True, '') if a TCP socket can listen on ::1 here, else (False, why)."""
    if not socket.has_ipv6:
        return False, "socket.has_ipv6 is False"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
            s.listen()
    except OSError as e:
        return False, "cannot listen on ::1: %s" % e
    return True, ""


HAVE_IPV6, IPV6_WHY = ipv6_loopback()
FAMILIES = [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]


def connect_from_thread(host, port, out):
    """Connect, note the client's own address, send a line, wait for EOF."""
    with socket.create_connection((host, port), timeout=20) as c:
        out.append(c.getsockname())
        c.sendall(b"hello\n")
        while c.recv(100):
            pass


def check_family(af):
    """False (and why, said) when this family cannot be tested here."""
    if af == socket.AF_INET6 and not HAVE_IPV6:
        print("IPv6 loopback not available here (%s): IPv4 only" % IPV6_WHY)
        assert IPV6_WHY and ipv6_loopback() == (False, IPV6_WHY)
        return False
    return True


def serve_one_client(loop, af, host, handler, done):
    """A 2.0 server on host for one client from a thread, until done();
    returns the client's own address."""
    srv = uasyncio.start_server(handler, host, 0)
    loop.create_task(srv)
    loop.run_until_complete(uasyncio.sleep_ms(1))
    port = srv.socket.getsockname()[1]
    client = []
    t = threading.Thread(target=connect_from_thread, args=(host, port, client))
    t.start()

    async def main():
        await until(done)
        uasyncio.cancel(srv)
        await uasyncio.sleep_ms(20)

    run(loop, main())
    t.join(20)
    return client[0]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("af,host", FAMILIES, ids=["ipv4", "ipv6"])
def test_v2_server_side_peername(loop, af, host):
    if not check_family(af):
        return
    seen = []

    async def handler(reader, writer):
        seen.append(("line", await reader.readline()))
        seen.append(("extra", dict(writer.extra)))
        seen.append(("info", writer.get_extra_info("peername")))
        await writer.aclose()
        seen.append(("after close", writer.get_extra_info("peername")))

    peer = serve_one_client(loop, af, host, handler, lambda: len(seen) == 4)
    assert seen == [("line", b"hello\n"), ("extra", {"peername": peer}), ("info", peer),
                    ("after close", peer)]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("af,host", FAMILIES, ids=["ipv4", "ipv6"])
def test_v2_peername_asked_only_after_the_close(loop, af, host):
    """Nothing asked while the connection lived: the address is still there."""
    if not check_family(af):
        return
    writers = []

    async def handler(reader, writer):
        await reader.readline()
        await writer.aclose()
        writers.append(writer)

    peer = serve_one_client(loop, af, host, handler, lambda: writers)
    assert writers[0].extra == {"peername": peer}
    assert writers[0].get_extra_info("peername") == peer


@pytest.mark.timeout(30)
@pytest.mark.parametrize("af,host", FAMILIES, ids=["ipv4", "ipv6"])
def test_v3_server_side_peername(af, host):
    if not check_family(af):
        return
    seen = []
    client = []

    async def handler(reader, writer):
        seen.append(("line", await reader.readline()))
        seen.append(("e", dict(writer.e)))
        seen.append(("info", writer.get_extra_info("peername")))
        writer.close()
        await writer.wait_closed()
        seen.append(("after close", writer.get_extra_info("peername")))

    async def main():
        server = await v3.start_server(handler, host, 0)
        port = server.socket.getsockname()[1]
        t = threading.Thread(target=connect_from_thread, args=(host, port, client))
        t.start()
        while len(seen) < 4:
            await v3.sleep_ms(5)
        server.close()
        await server.wait_closed()
        t.join(20)

    v3.run(v3.wait_for(main(), 20))
    peer = client[0]
    assert seen == [("line", b"hello\n"), ("e", {"peername": peer}), ("info", peer), ("after close", peer)]


def test_a_writer_made_by_hand_keeps_its_extra():
    """StreamWriter(s, extra) and Stream(s, e): what is given is what is read."""
    a, b = socket.socketpair()
    try:
        w = uasyncio.StreamWriter(a, {"peername": ("10.0.0.1", 5)})
        assert w.extra == {"peername": ("10.0.0.1", 5)}
        assert w.get_extra_info("peername") == ("10.0.0.1", 5)
        w2 = uasyncio.StreamWriter(a)
        assert w2.extra == {} and w2.get_extra_info("peername") is None
        st = v3.Stream(b, {"peername": "x"})
        assert st.e == {"peername": "x"} and st.get_extra_info("peername") == "x"
        st2 = v3.Stream(b)
        assert st2.e == {} and st2.get_extra_info("peername", 7) == 7
        with pytest.raises(KeyError):
            st2.get_extra_info("peername")
    finally:
        a.close()
        b.close()


@pytest.mark.timeout(30)
def test_peername_survives_a_memory_error_while_it_is_made(loop):
    """The address made into the dict failing with MemoryError (each
    allocation in turn) does not lose it: asked again, it is there."""
    import _testcapi
    writers = []

    async def handler(reader, writer):
        await reader.readline()
        await writer.aclose()
        writers.append(writer)

    peer = serve_one_client(loop, socket.AF_INET, "127.0.0.1", handler, lambda: writers)
    failed = 0
    for i in range(200):
        _testcapi.set_nomemory(i, i + 1)   # the i-th allocation from now fails
        try:
            got = writers[0].get_extra_info("peername")
        except MemoryError:
            failed += 1
            continue
        finally:
            _testcapi.remove_mem_hooks()
        break
    assert failed, "no allocation failed: nothing was tested"
    assert got == peer
    assert writers[0].extra == {"peername": peer}
