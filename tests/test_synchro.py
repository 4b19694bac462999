"""uasyncio.synchro.Lock: v2's acquire (yields once first) / release, the
`locked` attribute, FIFO hand-over, `async with`, cancellation safety."""
import time
import types

import pytest

import uasyncio
from uasyncio import CancelledError, TimeoutError
from uasyncio.synchro import Lock

from conftest import FakeClockLoop


def tick(n=1):
    for _ in range(n):
        yield


atick = types.coroutine(tick)


# ---- v2's example: three tasks sharing one lock ------------------------------------

ROUNDS = 4


def check_sections(log, names):
    """The critical sections never overlap, and they come in FIFO turns."""
    inside = None
    order = []
    for ev, name, t in log:
        if ev == "in":
            assert inside is None, "%s entered while %s holds the lock" % (name, inside)
            inside = name
            order.append(name)
        else:
            assert inside == name
            inside = None
    assert order == list(names) * ROUNDS
    return order


def test_v2_three_task_example_generators(fake_loop):
    lock = Lock()
    log = []

    def task(i):
        for _ in range(ROUNDS):
            yield from lock.acquire()
            log.append(("in", i, fake_loop.t))
            yield from uasyncio.sleep(0.5)
            log.append(("out", i, fake_loop.t))
            lock.release()

    for i in (1, 2, 3):
        fake_loop.create_task(task(i))
    fake_loop.run_until_complete(uasyncio.sleep(0.5 * 3 * ROUNDS + 1))
    check_sections(log, (1, 2, 3))
    # Hand-over is immediate: each section starts when the previous one ends.
    starts = [t for ev, _, t in log if ev == "in"]
    assert starts == [500 * k for k in range(3 * ROUNDS)]
    assert not lock.locked


def test_v2_three_task_example_async_def_on_real_loop(loop):
    lock = Lock()
    log = []

    async def task(i):
        for _ in range(ROUNDS):
            await lock.acquire()
            log.append(("in", i, None))
            await uasyncio.sleep_ms(5)
            log.append(("out", i, None))
            lock.release()

    async def main():
        for i in (1, 2, 3):
            loop.create_task(task(i))
        while len(log) < 2 * 3 * ROUNDS:
            await uasyncio.sleep_ms(5)

    t0 = time.monotonic()
    loop.run_until_complete(main())
    assert time.monotonic() - t0 < 2
    check_sections(log, (1, 2, 3))
    assert not lock.locked


# ---- basic API ------------------------------------------------------------------------


def test_release_unlocked_lock_raises_runtime_error(fake_loop):
    lock = Lock()
    with pytest.raises(RuntimeError):
        lock.release()

    async def main():
        await lock.acquire()
        lock.release()
        with pytest.raises(RuntimeError):
            lock.release()                    # a second release

    fake_loop.run_until_complete(main())
    assert not lock.locked


def test_locked_is_a_bool_attribute(fake_loop):
    lock = Lock()
    assert lock.locked is False
    assert not callable(lock.locked)
    with pytest.raises(AttributeError):
        lock.locked = True                    # read-only: only acquire/release change it

    async def main():
        r = await lock.acquire()
        assert r is True                      # as v2
        assert lock.locked is True
        lock.release()
        assert lock.locked is False

    fake_loop.run_until_complete(main())


def test_acquire_yields_once_even_when_free(fake_loop):
    lock = Lock()
    log = []

    async def a():
        log.append("A before acquire")
        await lock.acquire()
        log.append("A holds it")
        lock.release()

    async def b():
        log.append("B runs")

    fake_loop.create_task(a())
    fake_loop.create_task(b())
    fake_loop.run_until_complete(atick(3))
    assert log == ["A before acquire", "B runs", "A holds it"]
    assert not lock.locked


def test_acquire_yields_once_generator_form_counts_one_pass(fake_loop):
    lock = Lock()

    def main():
        before = len(fake_loop.waits)
        yield from lock.acquire()
        after = len(fake_loop.waits)
        lock.release()
        return after - before

    assert fake_loop.run_until_complete(main()) == 1


def test_releaser_cannot_take_the_lock_straight_back(fake_loop):
    lock = Lock()
    log = []

    async def greedy():
        await lock.acquire()
        await atick(3)                       # "waiter" queues up meanwhile
        lock.release()
        assert lock.locked                   # handed to the waiter: stays locked
        await lock.acquire()                 # must wait its turn
        log.append("greedy again")
        lock.release()

    async def waiter():
        await lock.acquire()
        log.append("waiter")
        await atick(2)
        lock.release()

    fake_loop.create_task(greedy())
    fake_loop.create_task(waiter())
    fake_loop.run_until_complete(atick(20))
    assert log == ["waiter", "greedy again"]
    assert not lock.locked


def test_fifo_hand_over_among_waiters(fake_loop):
    lock = Lock()
    log = []

    async def holder():
        await lock.acquire()
        await uasyncio.sleep_ms(10)
        lock.release()

    async def waiter(name):
        await lock.acquire()
        log.append(name)
        lock.release()

    async def main():
        fake_loop.create_task(holder())
        await atick(3)
        for name in ("w0", "w1", "w2", "w3"):
            fake_loop.create_task(waiter(name))
            await atick(1)
        await uasyncio.sleep_ms(20)

    fake_loop.run_until_complete(main())
    assert log == ["w0", "w1", "w2", "w3"]
    assert not lock.locked


# ---- async with ------------------------------------------------------------------------


def test_async_with(fake_loop):
    lock = Lock()
    log = []

    async def main():
        async with lock as r:
            log.append(("inside", lock.locked, r))
        log.append(("after", lock.locked))

    fake_loop.run_until_complete(main())
    assert log == [("inside", True, True), ("after", False)]


def test_async_with_releases_on_exception(fake_loop):
    lock = Lock()

    class Boom(Exception):
        pass

    async def main():
        with pytest.raises(Boom):
            async with lock:
                assert lock.locked
                raise Boom()
        assert not lock.locked
        async with lock:                      # usable again
            assert lock.locked
        return "ok"

    assert fake_loop.run_until_complete(main()) == "ok"
    assert not lock.locked


def test_async_with_mutual_exclusion_and_hand_over(fake_loop):
    lock = Lock()
    log = []

    async def worker(name):
        for _ in range(3):
            async with lock:
                log.append(("in", name, fake_loop.t))
                await uasyncio.sleep_ms(10)
                log.append(("out", name, fake_loop.t))

    async def main():
        for name in "abc":
            fake_loop.create_task(worker(name))
        await uasyncio.sleep_ms(200)

    fake_loop.run_until_complete(main())
    inside = None
    order = []
    for ev, name, _ in log:
        if ev == "in":
            assert inside is None
            inside = name
            order.append(name)
        else:
            inside = None
    assert order == list("abc") * 3
    assert [t for ev, _, t in log if ev == "in"] == [10 * k for k in range(9)]
    assert not lock.locked


def test_owner_cancelled_inside_async_with_releases_and_hands_over(fake_loop):
    lock = Lock()
    log = []

    async def owner():
        try:
            async with lock:
                log.append("owner in")
                await uasyncio.sleep(10)
        except CancelledError:
            log.append(("owner cancelled", fake_loop.t))
            raise

    async def waiter():
        async with lock:
            log.append(("waiter in", fake_loop.t))

    async def main():
        o = owner()
        fake_loop.create_task(o)
        await atick(3)
        fake_loop.create_task(waiter())
        await uasyncio.sleep_ms(5)
        uasyncio.cancel(o)
        await atick(4)

    fake_loop.run_until_complete(main())
    assert log == ["owner in", ("owner cancelled", 5), ("waiter in", 5)]
    assert not lock.locked


# ---- cancellation ------------------------------------------------------------------------


def test_cancelled_waiter_never_owns_the_lock(fake_loop):
    lock = Lock()
    log = []

    async def holder():
        await lock.acquire()
        await uasyncio.sleep_ms(10)
        log.append("holder releases")
        lock.release()

    async def waiter(name):
        try:
            await lock.acquire()
        except CancelledError:
            log.append((name, "cancelled", lock.locked))
            raise
        log.append((name, "owns"))
        lock.release()

    async def main():
        fake_loop.create_task(holder())
        await atick(3)
        b = waiter("B")
        fake_loop.create_task(b)
        fake_loop.create_task(waiter("C"))
        await atick(3)                        # both parked behind the holder
        uasyncio.cancel(b)
        await uasyncio.sleep_ms(20)

    fake_loop.run_until_complete(main())
    assert log == [("B", "cancelled", True), "holder releases", ("C", "owns")]
    assert not lock.locked


def test_cancelled_during_the_first_yield_never_owns_the_lock(fake_loop):
    lock = Lock()
    log = []

    async def waiter():
        try:
            await lock.acquire()
        except CancelledError:
            log.append("cancelled")
            raise
        log.append("owns")

    async def main():
        w = waiter()
        fake_loop.create_task(w)
        await atick(1)                        # w is in acquire()'s first yield; lock free
        assert not lock.locked
        uasyncio.cancel(w)
        await atick(3)

    fake_loop.run_until_complete(main())
    assert log == ["cancelled"]
    assert not lock.locked


def test_wait_for_timeout_on_acquire_never_owns_the_lock(fake_loop):
    lock = Lock()
    log = []

    async def holder():
        await lock.acquire()
        await uasyncio.sleep_ms(100)
        lock.release()
        log.append("released")

    async def impatient():
        try:
            await uasyncio.wait_for_ms(lock.acquire(), 30)
        except TimeoutError:
            log.append(("timeout", fake_loop.t))
            return
        log.append("owns")

    async def main():
        fake_loop.create_task(holder())
        await atick(2)
        fake_loop.create_task(impatient())
        await uasyncio.sleep_ms(200)

    fake_loop.run_until_complete(main())
    assert log == [("timeout", 30), "released"]
    assert not lock.locked
    assert "timers=0" in repr(fake_loop)


def test_handed_then_cancelled_passes_the_lock_on(fake_loop):
    lock = Lock()
    log = []

    async def waiter(name):
        try:
            await lock.acquire()
        except CancelledError:
            log.append((name, "cancelled"))
            raise
        log.append((name, "owns"))
        await atick(2)
        lock.release()

    async def main():
        await lock.acquire()
        b = waiter("B")
        fake_loop.create_task(b)
        fake_loop.create_task(waiter("C"))
        await atick(3)
        lock.release()                        # handed to B, which is scheduled ...
        assert lock.locked
        uasyncio.cancel(b)                    # ... and cancelled before it runs
        await atick(6)

    fake_loop.run_until_complete(main())
    assert log == [("B", "cancelled"), ("C", "owns")]
    assert not lock.locked


def test_handed_then_cancelled_with_no_other_waiter_unlocks(fake_loop):
    lock = Lock()
    log = []

    def waiter():                             # generator form: the cancel goes through yield from
        try:
            yield from lock.acquire()
        except CancelledError:
            log.append("cancelled")
            raise
        log.append("owns")

    def main():
        yield from lock.acquire()
        b = waiter()
        fake_loop.create_task(b)
        yield from tick(3)
        lock.release()
        uasyncio.cancel(b)
        yield from tick(3)
        return lock.locked

    assert fake_loop.run_until_complete(main()) is False
    assert log == ["cancelled"]
    # And it can be taken again at once.
    fake_loop.run_until_complete(lock.acquire())
    assert lock.locked
    lock.release()


def test_waiter_left_by_a_closed_loop_does_not_keep_the_lock(fake_loop):
    """A waiter parked on a loop that was then closed can never run: release()
    must not fail, and must not hand the lock to it (it would stay locked
    for ever); another loop can take the lock."""
    lock = Lock()
    old = FakeClockLoop()

    async def holder():
        await lock.acquire()

    async def waiter():
        await lock.acquire()

    old.run_until_complete(holder())
    old.create_task(waiter())
    old.run_until_complete(atick(3))       # the waiter parks behind the holder
    old.close()

    lock.release()
    assert not lock.locked

    async def main():
        await lock.acquire()
        lock.release()
        return "acquired"

    fake_loop.call_later_ms(1000, fake_loop.stop)   # bound the run if it hangs
    assert fake_loop.run_until_complete(main()) == "acquired"
    assert fake_loop.t == 0
