"""uasyncio.queues.Queue: v2's API; waiters woken at once, FIFO, no barging,
cancellation-safe hand-off."""
import gc
import time
import types
import weakref

import pytest

import uasyncio
from uasyncio import CancelledError, TimeoutError
from uasyncio.queues import Queue, QueueEmpty, QueueFull

from conftest import FakeClockLoop


def tick(n=1):
    """Yield to the loop n times (one loop pass each)."""
    for _ in range(n):
        yield


atick = types.coroutine(tick)   # the same, awaitable from async def


# ---- v2's producer / consumer -----------------------------------------------------

N = 200


@pytest.mark.parametrize("maxsize", [1, 2, 0])
def test_v2_producer_consumer_async_def(fake_loop, maxsize):
    q = Queue(maxsize=maxsize)
    got = []
    sizes = []

    async def producer():
        for i in range(N):
            await q.put(i)
            sizes.append(q.qsize())

    async def consumer():
        for _ in range(N):
            got.append(await q.get())
            sizes.append(q.qsize())
        return "consumed"

    fake_loop.create_task(producer())
    assert fake_loop.run_until_complete(consumer()) == "consumed"
    assert got == list(range(N))
    assert q.empty() and q.qsize() == 0
    if maxsize:
        assert max(sizes) <= maxsize
    else:
        # Unbounded: the producer never waits, it fills the queue in one step.
        assert max(sizes) == N
    # No polling: virtual time never moved, the loop never slept.
    assert fake_loop.t == 0
    assert all(w == 0 for w in fake_loop.waits)
    assert "timers=0" in repr(fake_loop)


@pytest.mark.parametrize("maxsize", [1, 2, 0])
def test_v2_producer_consumer_generators_yield_from(fake_loop, maxsize):
    q = Queue(maxsize)
    got = []

    def producer():
        for i in range(N):
            yield from q.put(i)

    def consumer():
        for _ in range(N):
            v = yield from q.get()
            got.append(v)

    fake_loop.create_task(consumer())
    fake_loop.run_until_complete(producer())
    fake_loop.run_until_complete(tick(3))
    assert got == list(range(N))
    assert q.qsize() == 0
    assert fake_loop.t == 0


def test_producer_consumer_on_real_loop(loop):
    q = Queue(1)
    got = []

    async def producer():
        for i in range(1000):
            await q.put(i)

    async def consumer():
        for _ in range(1000):
            got.append(await q.get())

    loop.create_task(producer())
    t0 = time.monotonic()
    loop.run_until_complete(consumer())
    assert got == list(range(1000))
    assert time.monotonic() - t0 < 2    # no 100 ms polling per item


# ---- the non-blocking API ----------------------------------------------------------


def test_nowait_exceptions():
    assert issubclass(QueueEmpty, Exception) and issubclass(QueueFull, Exception)
    q = Queue(maxsize=1)
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    q.put_nowait(12)
    with pytest.raises(QueueFull):
        q.put_nowait(42)
    assert q.qsize() == 1                  # the refused item did not go in
    assert q.get_nowait() == 12
    with pytest.raises(QueueEmpty):
        q.get_nowait()
    assert q.empty()


def test_qsize_empty_full_maxsize():
    q = Queue()
    assert q.maxsize == 0
    assert q.empty() and not q.full() and q.qsize() == 0
    for n in range(1000):
        q.put_nowait(n)
    assert q.qsize() == 1000 and not q.empty()
    assert not q.full()                    # unbounded: never full
    assert [q.get_nowait() for _ in range(1000)] == list(range(1000))

    q = Queue(maxsize=3)
    assert q.maxsize == 3
    assert not q.full()
    q.put_nowait("a")
    q.put_nowait("b")
    assert q.qsize() == 2 and not q.full() and not q.empty()
    q.put_nowait("c")
    assert q.full() and q.qsize() == 3
    assert q.get_nowait() == "a"
    assert not q.full() and q.qsize() == 2

    assert Queue(maxsize=5).maxsize == 5
    assert Queue(7).maxsize == 7


def test_get_and_put_awaitables_outside_loop_when_not_blocking():
    """As v2's own tests: drive put()/get() by hand; neither yields when it
    need not wait."""
    q = Queue(maxsize=1)
    it = q.put(42).__await__()
    with pytest.raises(StopIteration) as e:
        it.send(None)
    assert e.value.value is None
    it = q.get().__await__()
    with pytest.raises(StopIteration) as e:
        next(it)
    assert e.value.value == 42


def test_get_does_not_yield_when_an_item_is_there(fake_loop):
    q = Queue()
    log = []

    async def getter():
        q.put_nowait("x")
        log.append("before get")
        log.append(await q.get())
        log.append("after get")

    async def other():
        log.append("other")

    fake_loop.create_task(getter())
    fake_loop.create_task(other())
    fake_loop.run_until_complete(atick(2))
    assert log == ["before get", "x", "after get", "other"]


def test_put_does_not_yield_when_there_is_room(fake_loop):
    q = Queue(maxsize=2)
    log = []

    async def putter():
        log.append("before")
        await q.put(1)
        await q.put(2)
        log.append("after")

    async def other():
        log.append("other")

    fake_loop.create_task(putter())
    fake_loop.create_task(other())
    fake_loop.run_until_complete(atick(2))
    assert log == ["before", "after", "other"]
    assert q.full()


# ---- wake-up: at once, in the next pass --------------------------------------------


def test_blocked_getter_runs_in_the_pass_after_put_nowait(fake_loop):
    q = Queue()
    log = []

    async def getter():
        log.append(("waiting", len(fake_loop.waits)))
        v = await q.get()
        log.append(("got", v, len(fake_loop.waits)))

    async def main():
        fake_loop.create_task(getter())
        await atick(5)                      # the getter parks
        log.append(("put", len(fake_loop.waits)))
        q.put_nowait("item")
        await atick(5)

    fake_loop.run_until_complete(main())
    (_, w0), (_, put_at), (_, v, got_at) = log
    assert v == "item"
    assert got_at == put_at + 1             # exactly one loop pass later
    assert fake_loop.t == 0
    assert all(w == 0 for w in fake_loop.waits)


def test_blocked_putter_runs_in_the_pass_after_get_nowait(fake_loop):
    q = Queue(maxsize=1)
    q.put_nowait("first")
    log = []

    async def putter():
        await q.put("second")
        log.append(("put done", len(fake_loop.waits)))

    async def main():
        fake_loop.create_task(putter())
        await atick(5)
        assert q.qsize() == 1
        log.append(("get", len(fake_loop.waits), q.get_nowait()))
        # The free slot is kept for the blocked putter, whose item goes in
        # when it runs: no space for anybody else meanwhile.
        assert q.full() and q.qsize() == 0
        with pytest.raises(QueueFull):
            q.put_nowait("barger")
        await atick(5)

    fake_loop.run_until_complete(main())
    assert log[0][2] == "first"
    assert log[1][1] == log[0][1] + 1
    assert q.get_nowait() == "second"
    assert fake_loop.t == 0


def test_wakeup_with_a_real_sleeping_loop_is_immediate(loop):
    """The getter waits with nothing else to do (the loop blocks in the
    poller); a put from a timer callback wakes it with no polling delay."""
    q = Queue()

    async def getter():
        t0 = time.monotonic()
        v = await q.get()
        return v, time.monotonic() - t0

    loop.call_later_ms(30, q.put_nowait, "late")
    v, dt = loop.run_until_complete(getter())
    assert v == "late"
    assert 0.025 <= dt < 0.09               # v2 would poll every 100 ms


def test_put_hands_item_to_waiting_getter_directly(fake_loop):
    q = Queue(maxsize=1)
    log = []

    async def getter():
        log.append(await q.get())

    async def main():
        fake_loop.create_task(getter())
        await atick(3)
        await q.put("direct")                 # does not wait: a getter takes it
        assert q.qsize() == 0                 # never entered the queue
        with pytest.raises(QueueEmpty):       # and nobody can barge in on it
            q.get_nowait()
        await atick(2)

    fake_loop.run_until_complete(main())
    assert log == ["direct"]


# ---- FIFO among waiters, no barging -------------------------------------------------


def test_fifo_among_three_waiting_getters(fake_loop):
    q = Queue()
    log = []

    async def getter(name):
        v = await q.get()
        log.append((name, v))

    async def main():
        for name in ("g0", "g1", "g2"):
            fake_loop.create_task(getter(name))
        await atick(3)
        for v in ("a", "b", "c"):
            q.put_nowait(v)
        assert q.qsize() == 0                 # all three handed over
        await atick(3)

    fake_loop.run_until_complete(main())
    assert log == [("g0", "a"), ("g1", "b"), ("g2", "c")]


def test_fifo_among_three_waiting_putters_on_a_full_queue(fake_loop):
    q = Queue(maxsize=1)
    q.put_nowait("init")
    log = []

    async def putter(name):
        await q.put(name)
        log.append(name)

    async def main():
        for name in ("p0", "p1", "p2"):
            fake_loop.create_task(putter(name))
        await atick(3)
        assert log == [] and q.qsize() == 1
        got = []
        for _ in range(4):
            got.append(q.get_nowait())
            await atick(2)
        return got

    assert fake_loop.run_until_complete(main()) == ["init", "p0", "p1", "p2"]
    assert log == ["p0", "p1", "p2"]
    assert q.empty()


def test_no_barging_a_late_getter_waits_behind_the_handed_item(fake_loop):
    q = Queue()
    log = []

    async def getter(name):
        log.append((name, await q.get()))

    async def main():
        fake_loop.create_task(getter("early"))
        await atick(3)
        fake_loop.call_later_ms(5, q.put_nowait, "y")
        q.put_nowait("x")                     # handed to "early", which has not run yet
        log.append(("main", await q.get()))   # so main must wait: it gets the next one

    fake_loop.run_until_complete(main())
    assert log == [("early", "x"), ("main", "y")]
    assert fake_loop.t == 5


# ---- cancellation --------------------------------------------------------------------


def test_cancel_a_waiting_getter(fake_loop):
    q = Queue()
    log = []

    async def getter(name):
        try:
            v = await q.get()
        except CancelledError:
            log.append((name, "cancelled"))
            raise
        log.append((name, v))

    async def main():
        g1 = getter("g1")
        fake_loop.create_task(g1)
        fake_loop.create_task(getter("g2"))
        await atick(3)
        uasyncio.cancel(g1)
        await atick(3)
        q.put_nowait("x")                     # g1 is gone: g2 gets it
        await atick(3)
        # The queue works normally afterwards.
        q.put_nowait(1)
        q.put_nowait(2)
        assert q.qsize() == 2
        assert await q.get() == 1
        assert q.get_nowait() == 2
        assert q.empty()

    fake_loop.run_until_complete(main())
    assert log == [("g1", "cancelled"), ("g2", "x")]
    assert "timers=0" in repr(fake_loop)


def test_cancel_a_waiting_putter_its_item_never_goes_in(fake_loop):
    q = Queue(maxsize=1)
    q.put_nowait("init")
    log = []

    async def putter(v):
        try:
            await q.put(v)
        except CancelledError:
            log.append(("cancelled", v))
            raise
        log.append(("put", v))

    async def main():
        p1 = putter("p1")
        fake_loop.create_task(p1)
        fake_loop.create_task(putter("p2"))
        await atick(3)
        uasyncio.cancel(p1)
        await atick(3)
        assert q.get_nowait() == "init"
        await atick(3)
        assert q.get_nowait() == "p2"
        assert q.empty()

    fake_loop.run_until_complete(main())
    assert log == [("cancelled", "p1"), ("put", "p2")]


def test_handed_item_then_cancelled_goes_to_the_next_getter(fake_loop):
    q = Queue()
    log = []

    async def getter(name):
        try:
            v = await q.get()
        except CancelledError:
            log.append((name, "cancelled"))
            raise
        log.append((name, v))

    async def main():
        a = getter("A")
        fake_loop.create_task(a)
        fake_loop.create_task(getter("B"))
        await atick(3)
        q.put_nowait("x")          # handed to A, A is scheduled ...
        uasyncio.cancel(a)         # ... and cancelled before it runs
        await atick(3)
        assert q.empty()

    fake_loop.run_until_complete(main())
    assert log == [("A", "cancelled"), ("B", "x")]


def test_handed_item_then_cancelled_goes_back_to_the_front_of_the_queue(fake_loop):
    q = Queue()
    log = []

    async def getter():
        try:
            log.append(await q.get())
        except CancelledError:
            log.append("cancelled")
            raise

    async def main():
        a = getter()
        fake_loop.create_task(a)
        await atick(3)
        q.put_nowait("x")          # handed to A
        q.put_nowait("y")          # no getter left: queued
        assert q.qsize() == 1
        uasyncio.cancel(a)
        await atick(3)
        assert [q.get_nowait(), q.get_nowait()] == ["x", "y"]   # x first: order kept
        assert q.empty()

    fake_loop.run_until_complete(main())
    assert log == ["cancelled"]


def test_handed_item_then_cancelled_on_a_bounded_queue_nothing_lost(fake_loop):
    q = Queue(maxsize=1)
    log = []

    def getter():                      # generator-based: the cancel goes through yield from
        try:
            v = yield from q.get()
        except CancelledError:
            log.append("cancelled")
            raise
        log.append(v)

    def main():
        a = getter()
        fake_loop.create_task(a)
        yield from tick(3)
        q.put_nowait("x")              # handed to A: the queue stays empty ...
        q.put_nowait("y")              # ... so there is room for y
        uasyncio.cancel(a)
        yield from tick(3)
        out = []
        while not q.empty():
            out.append(q.get_nowait())
        return out

    assert fake_loop.run_until_complete(main()) == ["x", "y"]
    assert log == ["cancelled"]


def test_woken_putter_cancelled_before_it_runs_puts_nothing_and_passes_the_slot_on(fake_loop):
    """As asyncio: a put() cancelled before it ran did not happen; the slot
    kept for it goes to the next putter."""
    q = Queue(maxsize=1)
    q.put_nowait("init")
    log = []

    async def putter(v):
        try:
            await q.put(v)
        except CancelledError:
            log.append(("cancelled", v))
            raise
        log.append(("put", v))

    async def main():
        p = putter("p")
        fake_loop.create_task(p)
        fake_loop.create_task(putter("next"))
        await atick(3)
        assert q.get_nowait() == "init"    # the slot is kept for p, p is woken
        uasyncio.cancel(p)                 # and cancelled before it runs
        await atick(3)
        out = []
        while not q.empty():
            out.append(q.get_nowait())
        return out

    assert fake_loop.run_until_complete(main()) == ["next"]   # p's item never went in
    assert log == [("cancelled", "p"), ("put", "next")]


def test_blocked_put_returns_before_any_consumer_holds_its_item(fake_loop):
    """uasyncio 2.0's and asyncio's order: a blocked put()'s item enters the
    queue when the putter runs again, so the producer has gone on to its
    next step before a consumer receives the item."""
    q = Queue(maxsize=1)
    log = []

    async def producer():
        for i in range(4):
            await q.put(i)
            log.append(("put returned", i))

    async def consumer():
        for _ in range(4):
            log.append(("got", await q.get()))

    fake_loop.create_task(producer())
    fake_loop.run_until_complete(consumer())
    for i in range(4):
        assert log.index(("put returned", i)) < log.index(("got", i)), log


def test_full_queue_with_a_woken_putter_and_waiting_getter(fake_loop):
    """The woken putter's item, when it goes in, goes to the getter that
    waits by then, in FIFO order with the rest."""
    q = Queue(maxsize=1)
    q.put_nowait("a")
    got = []

    async def putter():
        await q.put("b")

    async def getter():
        got.append(await q.get())

    async def main():
        fake_loop.create_task(putter())
        await atick(2)
        assert q.get_nowait() == "a"
        fake_loop.create_task(getter())    # queue empty: it waits for "b"
        await atick(4)
        assert got == ["b"] and q.empty() and not q.full()

    fake_loop.run_until_complete(main())


def test_spurious_wake_of_a_waiting_getter_keeps_it_waiting(fake_loop):
    q = Queue()
    log = []

    async def getter():
        log.append(await q.get())

    async def main():
        g = getter()
        fake_loop.create_task(g)
        await atick(3)
        fake_loop.call_soon(g)          # resumed with nothing to get
        await atick(3)
        assert log == []
        q.put_nowait("real")
        await atick(3)

    fake_loop.run_until_complete(main())
    assert log == ["real"]


def test_timeout_fires_as_item_is_handed_over_item_not_lost(fake_loop):
    """The getter's wait_for timer and the producer's put fall due in the same
    pass: the item handed to the timed-out getter goes back to the queue."""
    q = Queue()
    log = []

    async def getter():
        try:
            log.append(await uasyncio.wait_for_ms(q.get(), 10))
        except TimeoutError:
            log.append("timeout")

    async def main():
        fake_loop.create_task(getter())
        await atick(2)
        await uasyncio.sleep_ms(10)   # wakes in the same pass as the timeout, after it
        q.put_nowait("x")
        await atick(3)
        return q.qsize()

    assert fake_loop.run_until_complete(main()) == 1
    assert log == ["timeout"]
    assert q.get_nowait() == "x"


def test_wait_for_ms_timeout_on_get(fake_loop):
    q = Queue()

    async def main():
        try:
            await uasyncio.wait_for_ms(q.get(), 50)
        except TimeoutError:
            at = fake_loop.t
        else:
            raise AssertionError("no timeout")
        # No stale getter is left behind: the item stays in the queue.
        q.put_nowait("v")
        assert q.qsize() == 1
        assert await uasyncio.wait_for_ms(q.get(), 50) == "v"
        return at

    assert fake_loop.run_until_complete(main()) == 50
    assert fake_loop.t == 50
    assert "timers=0" in repr(fake_loop)


def test_wait_for_get_returns_item_in_time(fake_loop):
    q = Queue()

    async def main():
        fake_loop.call_later_ms(20, q.put_nowait, "in time")
        return await uasyncio.wait_for(q.get(), 1), fake_loop.t

    assert fake_loop.run_until_complete(main()) == ("in time", 20)
    assert "timers=0" in repr(fake_loop)


def test_wait_for_ms_timeout_on_put(fake_loop):
    q = Queue(maxsize=1)
    q.put_nowait("full")

    async def main():
        with pytest.raises(TimeoutError):
            await uasyncio.wait_for_ms(q.put("late"), 30)
        assert q.get_nowait() == "full"
        assert q.empty()                      # the timed-out put did not happen

    fake_loop.run_until_complete(main())
    assert fake_loop.t == 30


def test_getter_left_waiting_by_a_closed_loop_does_not_swallow_items(fake_loop):
    """A getter parked on a loop that was then closed can never run: the next
    put_nowait() must neither fail nor hand it the item (which would be lost);
    the queue stays usable from another loop."""
    q = Queue()
    old = FakeClockLoop()

    async def getter():
        await q.get()

    old.create_task(getter())
    old.run_until_complete(atick(3))
    old.close()

    q.put_nowait("x")                  # the dead getter must not take it
    assert q.qsize() == 1

    async def main():
        return await q.get()

    assert fake_loop.run_until_complete(main()) == "x"
    assert q.empty()


def test_putter_left_waiting_by_a_closed_loop_does_not_lose_the_got_item():
    """get_nowait() on a full queue with a putter parked on a closed loop
    returns the oldest item (it must not fail after taking it out)."""
    q = Queue(maxsize=1)
    q.put_nowait("a")
    old = FakeClockLoop()

    async def putter():
        await q.put("b")

    old.create_task(putter())
    old.run_until_complete(atick(3))
    old.close()
    assert q.get_nowait() == "a"


# ---- volume and memory -----------------------------------------------------------------


@pytest.mark.parametrize("maxsize", [1, 0])
def test_hundred_thousand_item_handoff(loop, maxsize):
    q = Queue(maxsize)
    n = 100_000

    async def producer():
        for i in range(n):
            await q.put(i)

    async def consumer():
        total = count = 0
        for _ in range(n):
            total += await q.get()
            count += 1
        return count, total

    loop.create_task(producer())
    t0 = time.monotonic()
    assert loop.run_until_complete(consumer()) == (n, n * (n - 1) // 2)
    assert time.monotonic() - t0 < 20
    assert q.empty()


class Item:
    pass


def test_items_are_released_after_consumption(fake_loop):
    q = Queue(maxsize=4)
    refs = []

    async def producer():
        for _ in range(50):
            it = Item()
            refs.append(weakref.ref(it))
            await q.put(it)
            del it

    async def consumer():
        for _ in range(50):
            v = await q.get()
            assert isinstance(v, Item)
            del v

    fake_loop.create_task(producer())
    fake_loop.run_until_complete(consumer())
    gc.collect()
    assert len(refs) == 50
    assert all(r() is None for r in refs)


def test_items_left_in_a_dropped_queue_are_released():
    q = Queue()
    items = [Item() for _ in range(10)]
    refs = [weakref.ref(i) for i in items]
    for i in items:
        q.put_nowait(i)
    del items, i
    gc.collect()
    assert all(r() is not None for r in refs)   # the queue holds them
    del q
    gc.collect()
    assert all(r() is None for r in refs)


async def wait_forever_on(q):
    await q.get()                            # a queue nobody will ever put to


async def put_blocked(q, v):
    await q.put(v)


def test_abandoned_waiters_do_not_keep_the_queue_alive(fake_loop):
    def start():
        q = Queue(maxsize=1)
        queued, blocked = Item(), Item()
        q.put_nowait(queued)
        fake_loop.create_task(wait_forever_on(Queue()))
        fake_loop.create_task(put_blocked(q, blocked))
        fake_loop.run_until_complete(atick(3))
        assert q.full() and q.qsize() == 1   # the putter waits
        return [weakref.ref(queued), weakref.ref(blocked)]

    refs = start()
    fake_loop.close()                         # drops whatever it still holds
    gc.collect()
    # The parked tasks, their queues and the items were one garbage cycle.
    assert [r() for r in refs] == [None, None]
