"""Every row of the yield table: what a task may yield and what the loop does."""
import socket

import pytest

import uasyncio
from uasyncio import IORead, IOReadDone, IOWrite, IOWriteDone, StopLoop


def test_yield_none_requeues_at_the_end(fake_loop):
    log = []

    def task(name):
        for i in range(3):
            log.append((name, i))
            yield

    fake_loop.create_task(task("a"))
    fake_loop.create_task(task("b"))
    fake_loop.run_until_complete(task("main"))
    assert log[:6] == [("a", 0), ("b", 0), ("main", 0), ("a", 1), ("b", 1), ("main", 1)]


def test_yield_int_sleeps_that_many_ms(fake_loop):
    woke = []

    def task():
        yield 250
        woke.append(fake_loop.time())

    fake_loop.run_until_complete(task())
    assert woke == [250]


def test_yield_zero_reschedules_without_sleeping(fake_loop):
    def task():
        yield 0
        yield 0
        return fake_loop.time()

    assert fake_loop.run_until_complete(task()) == 0
    assert all(d == 0 for d in fake_loop.waits)


def test_yield_false_parks_until_call_soon(fake_loop):
    log = []
    parked = []

    def sleeper():
        parked.append(fake_loop.cur_task)
        log.append("parked")
        yield False
        log.append("woken")

    def waker():
        yield 100
        log.append("waking")
        fake_loop.call_soon(parked[0])
        yield 100

    fake_loop.create_task(sleeper())
    fake_loop.run_until_complete(waker())
    assert log == ["parked", "waking", "woken"]


def test_parked_task_is_not_held_by_the_loop(fake_loop):
    import gc
    import weakref

    def task():
        yield False

    coro = task()
    ref = weakref.ref(coro)
    fake_loop.create_task(coro)
    del coro

    def main():
        yield
        yield

    fake_loop.run_until_complete(main())
    gc.collect()
    assert ref() is None


def test_yielded_coroutine_runs_ahead_of_the_yielder(fake_loop):
    log = []

    def child():
        log.append("child")
        yield

    def parent():
        log.append("parent 1")
        yield child()
        log.append("parent 2")

    fake_loop.run_until_complete(parent())
    assert log == ["parent 1", "child", "parent 2"]


async def _async_child(log):
    log.append("async child")


def test_yielded_native_coroutine_is_scheduled(fake_loop):
    log = []

    def parent():
        yield _async_child(log)
        yield
        log.append("parent")

    fake_loop.run_until_complete(parent())
    assert log == ["async child", "parent"]


def test_sleep_ms_object_sleeps(fake_loop):
    async def task():
        await uasyncio.sleep_ms(30)
        await uasyncio.sleep(0.02)
        return fake_loop.time()

    assert fake_loop.run_until_complete(task()) == 50


def test_a_parked_sleep_stays_in_the_smallest_object_size():
    """Every task parked in sleep() holds one SleepMs: it stays within 32
    bytes (the small-object allocator's class); only IORead and IOWrite carry
    the waiting stream's id."""
    from uasyncio.core import SleepMs, SysCall1
    assert SleepMs.__basicsize__ <= 32
    assert SysCall1.__basicsize__ < IORead.__basicsize__ == IOWrite.__basicsize__
    s = socket.socket()
    try:
        assert IORead(s).arg is s and IOWrite(s).arg is s   # made from Python: no owner
    finally:
        s.close()


def test_sleep_works_with_yield_from_and_await(fake_loop):
    def gen():
        yield from uasyncio.sleep_ms(5)
        yield from uasyncio.sleep(0.005)
        return fake_loop.time()

    async def native():
        await uasyncio.sleep_ms(5)
        return fake_loop.time()

    assert fake_loop.run_until_complete(gen()) == 10
    assert fake_loop.run_until_complete(native()) == 15


def test_two_pending_sleep_ms_objects_do_not_clobber(fake_loop):
    async def task():
        a = uasyncio.sleep_ms(10)
        b = uasyncio.sleep_ms(100)
        await b
        t1 = fake_loop.time()
        await a
        return t1, fake_loop.time()

    assert fake_loop.run_until_complete(task()) == (100, 110)


def test_stop_loop_returns_its_value_and_drops_the_task(fake_loop):
    log = []

    def task():
        yield StopLoop(42)
        log.append("resumed")

    fake_loop.create_task(task())
    assert fake_loop.run_forever() == 42
    fake_loop.stop()
    assert fake_loop.run_forever() == 0
    assert log == []


def test_stop_loop_keeps_other_entries_queued(fake_loop):
    log = []

    def stopper():
        yield StopLoop("x")

    def other():
        log.append("other")
        yield

    fake_loop.create_task(stopper())
    fake_loop.create_task(other())
    fake_loop.call_soon(log.append, "cb")
    assert fake_loop.run_forever() == "x"
    assert log == []   # queued behind the stopper in the same pass
    fake_loop.stop()
    fake_loop.run_forever()
    assert log == ["other", "cb"]


@pytest.mark.parametrize("value", ["abc", 3.5, True, object(), [1]])
def test_unsupported_yield_raises_type_error_in_the_task(fake_loop, value):
    caught = []

    def task():
        try:
            yield value
        except TypeError as e:
            caught.append(str(e))
        return "done"

    assert fake_loop.run_until_complete(task()) == "done"
    assert type(value).__name__ in caught[0]
    assert "unsupported" in caught[0]


def test_uncaught_unsupported_yield_propagates_and_loop_stays_usable(fake_loop):
    def bad():
        yield "nope"

    with pytest.raises(TypeError, match="'nope'"):
        fake_loop.run_until_complete(bad())

    def good():
        yield
        return 7

    assert fake_loop.run_until_complete(good()) == 7


def test_ioread_parks_until_readable(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    got = []

    def reader():
        yield IORead(a)
        got.append(a.recv(100))
        yield IOReadDone(a)

    def writer():
        yield 20
        b.send(b"ping")

    loop.create_task(writer())
    loop.run_until_complete(reader())
    assert got == [b"ping"]
    a.close()
    b.close()


def test_iowrite_parks_until_writable(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    # Fill a's send buffer so the next IOWrite really has to wait.
    try:
        while True:
            a.send(b"x" * 65536)
    except BlockingIOError:
        pass
    order = []

    def writer():
        order.append("wait")
        yield IOWrite(a)
        order.append("writable")
        yield IOWriteDone(a)

    def drainer():
        yield 20
        order.append("drain")
        b.setblocking(False)
        try:
            while True:
                b.recv(1 << 20)
        except BlockingIOError:
            pass

    loop.create_task(drainer())
    loop.run_until_complete(writer())
    assert order == ["wait", "drain", "writable"]
    a.close()
    b.close()


def test_io_done_on_unregistered_object_is_harmless(loop):
    a, b = socket.socketpair()

    def task():
        yield IOReadDone(a)
        yield IOWriteDone(a)
        yield IOReadDone(a)
        return "ok"

    assert loop.run_until_complete(task()) == "ok"
    a.close()
    b.close()


def test_io_done_on_closed_socket_is_harmless(loop):
    a, b = socket.socketpair()
    a.close()

    def task():
        yield IOReadDone(a)
        return "ok"

    assert loop.run_until_complete(task()) == "ok"
    b.close()


def test_ioread_accepts_an_int_fd(loop):
    r, w = socket.socketpair()

    def task():
        yield IORead(r.fileno())
        return r.recv(10)

    w.send(b"fd")
    assert loop.run_until_complete(task()) == b"fd"
    r.close()
    w.close()


def test_syscall_classes_carry_their_argument():
    assert IORead(5).arg == 5
    assert uasyncio.SysCall(1, 2).args == (1, 2)
    assert issubclass(IORead, uasyncio.SysCall1)
    assert issubclass(uasyncio.SleepMs, uasyncio.SysCall1)
    assert uasyncio.sleep_ms(7).arg == 7
    assert uasyncio.sleep(1.5).arg == 1500
    with pytest.raises(NotImplementedError):
        uasyncio.SysCall().handle()


def test_sleep_truncates_to_whole_ms_as_v2():
    assert uasyncio.sleep(0.0019).arg == 1
    assert uasyncio.sleep(0).arg == 0
