"""uasyncio.udp: awaitable datagram operations over loopback (IPv4, and IPv6
where this machine has ::1)."""
import gc
import socket
import time
import weakref

import pytest

import uasyncio
from uasyncio import CancelledError
from uasyncio import udp


def run(loop, coro, secs=10):
    """Run coro to completion on loop, failing with TimeoutError after secs."""

    async def bounded():
        return await uasyncio.wait_for(coro, secs)

    return loop.run_until_complete(bounded())


def ipv6_loopback():
    """(True, '') if a datagram socket can bind ::1 here, else (False, why)."""
    if not socket.has_ipv6:
        return False, "socket.has_ipv6 is False"
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    except OSError as e:
        return False, "no AF_INET6 datagram socket: %s" % e
    try:
        s.bind(("::1", 0))
    except OSError as e:
        return False, "cannot bind ::1: %s" % e
    finally:
        s.close()
    return True, ""


HAVE_IPV6, IPV6_WHY = ipv6_loopback()
FAMILIES = [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]


def bound(af=socket.AF_INET, host="127.0.0.1"):
    s = udp.socket(af)
    s.bind((host, 0))
    return s


# ---- the socket ----------------------------------------------------------------------


def test_socket_is_a_non_blocking_datagram_socket():
    s = udp.socket()
    try:
        assert s.family == socket.AF_INET
        assert s.type == socket.SOCK_DGRAM
        assert s.getblocking() is False
    finally:
        s.close()
    if HAVE_IPV6:
        s = udp.socket(socket.AF_INET6)
        try:
            assert s.family == socket.AF_INET6 and s.type == socket.SOCK_DGRAM
            assert s.getblocking() is False
        finally:
            s.close()
    s = udp.socket(af=socket.AF_INET)
    s.close()


# ---- echo ------------------------------------------------------------------------------


@pytest.mark.parametrize("af,host", FAMILIES, ids=["ipv4", "ipv6"])
def test_echo_over_loopback(loop, af, host):
    if af == socket.AF_INET6 and not HAVE_IPV6:
        # Not skipped silently: the absence is detected, and said.
        print("IPv6 loopback not available here (%s): IPv4 only" % IPV6_WHY)
        assert IPV6_WHY and ipv6_loopback() == (False, IPV6_WHY)
        return
    srv = bound(af, host)
    cli = bound(af, host)
    addr = srv.getsockname()

    async def server():
        for _ in range(3):
            data, peer = await udp.recvfrom(srv, 1500)
            await udp.sendto(srv, data.upper(), peer)

    async def client():
        got = []
        for msg in (b"one", b"two", b"three"):
            await udp.sendto(cli, msg, addr)
            got.append(await udp.recv(cli, 1500))
        return got

    loop.create_task(server())
    try:
        assert run(loop, client()) == [b"ONE", b"TWO", b"THREE"]
    finally:
        run(loop, udp.close(srv))
        run(loop, udp.close(cli))
    assert srv.fileno() == -1 and cli.fileno() == -1


def test_ipv6_detection_is_consistent():
    """Whatever the machine has, the check agrees with the socket module."""
    print("IPv6 loopback available: %s%s" % (HAVE_IPV6, "" if HAVE_IPV6 else " (%s)" % IPV6_WHY))
    if HAVE_IPV6:
        s = udp.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        assert s.getsockname()[0] == "::1"
        s.close()
    else:
        assert IPV6_WHY


def test_ipv6_detector_reports_absence(monkeypatch):
    """The check is not vacuous: without IPv6 it says so, with a reason."""
    monkeypatch.setattr(socket, "has_ipv6", False)
    assert ipv6_loopback() == (False, "socket.has_ipv6 is False")
    monkeypatch.setattr(socket, "has_ipv6", True)
    real = socket.socket

    class NoV6(real):
        def bind(self, addr):
            if self.family == socket.AF_INET6:
                raise OSError(99, "Cannot assign requested address")
            return super().bind(addr)

    monkeypatch.setattr(socket, "socket", NoV6)
    ok, why = ipv6_loopback()
    assert not ok and "cannot bind ::1" in why


def test_echo_generator_based_yield_from(loop):
    srv = bound()
    cli = bound()

    def server():
        data, peer = yield from udp.recvfrom(srv, 100)
        yield from udp.sendto(srv, data[::-1], peer)

    def client():
        yield from udp.sendto(cli, b"abc", srv.getsockname())
        return (yield from udp.recv(cli, 100))

    loop.create_task(server())
    assert run(loop, client()) == b"cba"
    run(loop, udp.close(srv))
    run(loop, udp.close(cli))


# ---- recv / recvfrom / sendto ----------------------------------------------------------------


def test_recv_returns_bytes_recvfrom_returns_bytes_and_address(loop):
    srv = bound()
    cli = bound()
    try:
        async def main():
            await udp.sendto(cli, b"first", srv.getsockname())
            await udp.sendto(cli, b"second", srv.getsockname())
            a = await udp.recv(srv, 100)
            b = await udp.recvfrom(srv, 100)
            return a, b

        a, b = run(loop, main())
        assert a == b"first" and isinstance(a, bytes)
        assert isinstance(b, tuple)
        assert b == (b"second", cli.getsockname())
    finally:
        srv.close()
        cli.close()


def test_recv_truncates_to_n_and_the_rest_of_the_datagram_is_gone(loop):
    srv = bound()
    cli = bound()
    try:
        async def main():
            await udp.sendto(cli, b"0123456789", srv.getsockname())
            await udp.sendto(cli, b"next", srv.getsockname())
            return await udp.recv(srv, 4), await udp.recv(srv, 100)

        assert run(loop, main()) == (b"0123", b"next")
    finally:
        srv.close()
        cli.close()


def test_sendto_with_addr_none_on_a_connected_socket(loop):
    srv = bound()
    cli = bound()
    cli.connect(srv.getsockname())
    try:
        async def main():
            await udp.sendto(cli, b"implicit")              # addr defaults to None
            await udp.sendto(cli, b"explicit none", None)
            await udp.sendto(cli, b"keyword", addr=None)
            return [await udp.recvfrom(srv, 100) for _ in range(3)]

        got = run(loop, main())
        assert got == [(m, cli.getsockname()) for m in (b"implicit", b"explicit none", b"keyword")]
    finally:
        srv.close()
        cli.close()


def test_sendto_returns_none_and_sends_a_bytearray_and_memoryview(loop):
    srv = bound()
    cli = bound()
    try:
        async def main():
            r = await udp.sendto(cli, bytearray(b"ba"), srv.getsockname())
            await udp.sendto(cli, memoryview(b"xmvx")[1:3], srv.getsockname())
            return r, await udp.recv(srv, 10), await udp.recv(srv, 10)

        assert run(loop, main()) == (None, b"ba", b"mv")
    finally:
        srv.close()
        cli.close()


def test_burst_of_datagrams_none_lost(loop):
    srv = bound()
    cli = bound()
    n = 100                  # 100 x 200 bytes: well inside the default receive buffer
    try:
        async def sender():
            for i in range(n):
                await udp.sendto(cli, b"%04d" % i + b"." * 196, srv.getsockname())

        async def receiver():
            got = []
            for _ in range(n):
                got.append(await udp.recv(srv, 1000))
            return got

        loop.create_task(sender())
        got = run(loop, receiver())
        assert len(got) == n
        assert [int(g[:4]) for g in got] == list(range(n))     # all, in order
        assert all(len(g) == 200 for g in got)
    finally:
        srv.close()
        cli.close()


def test_burst_sent_before_the_receiver_runs(loop):
    srv = bound()
    cli = bound()
    n = 64
    try:
        async def main():
            for i in range(n):
                await udp.sendto(cli, b"%d" % i, srv.getsockname())
            return [int(await udp.recv(srv, 100)) for _ in range(n)]

        assert run(loop, main()) == list(range(n))
    finally:
        srv.close()
        cli.close()


# ---- waiting: woken by the datagram, cancellable -----------------------------------------------


def test_task_waiting_in_recv_is_woken_when_a_datagram_arrives(loop):
    srv = bound()
    cli = bound()
    log = []

    async def receiver():
        log.append("waiting")
        data = await udp.recv(srv, 100)
        log.append((data, time.monotonic()))

    async def main():
        loop.create_task(receiver())
        await uasyncio.sleep_ms(50)
        assert log == ["waiting"]            # it really waits
        sent = time.monotonic()
        await udp.sendto(cli, b"wake", srv.getsockname())
        for _ in range(200):
            if len(log) == 2:
                break
            await uasyncio.sleep_ms(1)
        return sent

    try:
        sent = run(loop, main())
        assert log[1][0] == b"wake"
        assert log[1][1] - sent < 0.05
    finally:
        srv.close()
        cli.close()


def test_recv_waiting_task_can_be_cancelled_and_unregisters(loop):
    srv = bound()
    cli = bound()
    log = []

    async def receiver():
        try:
            await udp.recv(srv, 100)
        except CancelledError:
            log.append("cancelled")
            raise
        log.append("received")

    async def main():
        r = receiver()
        loop.create_task(r)
        await uasyncio.sleep_ms(20)
        uasyncio.cancel(r)
        await uasyncio.sleep_ms(20)
        assert log == ["cancelled"]
        # Nothing is registered for the socket any more ...
        assert loop.remove_reader(srv) is False
        # ... and a new task may wait on it (no "already waiting" error).
        loop.create_task(receiver())
        await uasyncio.sleep_ms(5)
        await udp.sendto(cli, b"after", srv.getsockname())
        await uasyncio.sleep_ms(20)

    try:
        run(loop, main())
        assert log == ["cancelled", "received"]
    finally:
        srv.close()
        cli.close()


def test_recvfrom_with_wait_for_times_out(loop):
    srv = bound()
    try:
        async def main():
            t0 = time.monotonic()
            with pytest.raises(uasyncio.TimeoutError):
                await uasyncio.wait_for_ms(udp.recvfrom(srv, 100), 30)
            return time.monotonic() - t0

        assert 0.025 <= run(loop, main()) < 1
        assert loop.remove_reader(srv) is False
    finally:
        srv.close()


# ---- close -------------------------------------------------------------------------------------


def test_close_unregisters_and_closes_the_fd_is_reused_cleanly(loop):
    """After close() the fd is free (the fixture checks nothing leaked); a new
    socket that gets the same fd number waits and wakes normally."""
    cli = bound()

    async def one_round():
        s = bound()
        fd = s.fileno()
        got = []

        async def receiver():
            got.append(await udp.recv(s, 100))   # registers with the poller

        loop.create_task(receiver())
        await uasyncio.sleep_ms(10)
        await udp.sendto(cli, b"x", s.getsockname())
        for _ in range(100):
            if got:
                break
            await uasyncio.sleep_ms(1)
        assert got == [b"x"]
        r = await udp.close(s)
        assert r is None
        assert s.fileno() == -1
        return fd

    try:
        fds = [run(loop, one_round()) for _ in range(3)]
        assert len(set(fds)) == 1          # the same fd number each time
    finally:
        cli.close()


def test_close_outside_a_running_loop_closes_the_socket():
    s = udp.socket()
    it = udp.close(s).__await__()
    with pytest.raises(StopIteration):
        next(it)
    assert s.fileno() == -1


# ---- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [None, 42, "sock", b"x", object()])
def test_bad_socket_argument_is_a_type_error(bad):
    with pytest.raises(TypeError):
        udp.recv(bad, 10)
    with pytest.raises(TypeError):
        udp.recvfrom(bad, 10)
    with pytest.raises(TypeError):
        udp.sendto(bad, b"x", ("127.0.0.1", 9))
    with pytest.raises(TypeError):
        udp.sendto(bad, b"x")
    with pytest.raises(TypeError):
        udp.close(bad)


class Buf(bytearray):
    """A buffer that can be weakly referenced."""


@pytest.mark.parametrize("addr", [("127.0.0.1", 9), None], ids=["addr", "no-addr"])
def test_bad_socket_argument_does_not_keep_the_buffer(addr):
    """A call refused with TypeError must not hold on to its arguments."""
    buf = Buf(b"payload")
    ref = weakref.ref(buf)
    for _ in range(3):
        with pytest.raises(TypeError):
            udp.sendto(None, buf, addr)
    del buf
    gc.collect()
    assert ref() is None, "sendto() kept the buffer after refusing the socket"


def test_bad_size_and_family_arguments():
    s = udp.socket()
    try:
        with pytest.raises(TypeError):
            udp.recv(s, "10")
        with pytest.raises(TypeError):
            udp.recvfrom(s, None)
        with pytest.raises(TypeError):
            udp.recv(s)
    finally:
        s.close()
    with pytest.raises(TypeError):
        udp.socket("inet")
    with pytest.raises(OSError):
        udp.socket(-5)


def test_error_from_the_socket_is_raised_in_the_task(loop):
    s = bound()
    try:
        async def main():
            with pytest.raises((OSError, TypeError)):
                await udp.sendto(s, b"x", ("no such host name.invalid", 1))
            with pytest.raises(OSError):
                await udp.sendto(s, b"x")     # not connected: no destination
            return "still running"

        assert run(loop, main()) == "still running"
    finally:
        s.close()
