"""cancel(coro): CancelledError delivered into a task, whatever state it is in."""
import gc
import socket
import time
import weakref

import pytest

import uasyncio
from uasyncio import CancelledError


def tick(n=1):
    """Yield to the loop n times (generator-based)."""
    for _ in range(n):
        yield


# ---- a running task ---------------------------------------------------------


def test_cancel_cur_task_from_inside_takes_effect_at_next_yield(fake_loop):
    log = []

    def victim():
        log.append("start")
        uasyncio.cancel(fake_loop.cur_task)
        log.append("after cancel")   # cancel() does not raise here
        try:
            yield from uasyncio.sleep(10)
        except CancelledError:
            log.append(("cancelled", fake_loop.t))
            raise
        log.append("not reached")

    def main():
        fake_loop.create_task(victim())
        yield from tick(3)
        return "main done"

    assert fake_loop.run_until_complete(main()) == "main done"
    # Raised at the sleep's yield, at once: not after the 10 s.
    assert log == ["start", "after cancel", ("cancelled", 0)]
    assert fake_loop.t == 0
    assert "timers=0" in repr(fake_loop)


def test_cancel_cur_task_from_inside_async_def(fake_loop):
    log = []

    async def victim():
        uasyncio.cancel(fake_loop.cur_task)
        log.append("still running")
        try:
            await uasyncio.sleep_ms(500)
        except CancelledError:
            log.append("cancelled")
            raise
        log.append("not reached")

    def main():
        fake_loop.create_task(victim())
        yield from tick(3)

    fake_loop.run_until_complete(main())
    assert log == ["still running", "cancelled"]


def test_cancel_main_coroutine_propagates_out_of_run_until_complete(fake_loop):
    def main():
        yield
        uasyncio.cancel(fake_loop.cur_task)
        yield from uasyncio.sleep(5)
        return "not reached"

    with pytest.raises(CancelledError):
        fake_loop.run_until_complete(main())
    # The loop is still usable afterwards.
    assert fake_loop.run_until_complete(iter_value(7)) == 7


def iter_value(v):
    yield
    return v


# ---- a sleeping task ----------------------------------------------------------


def test_cancel_sleeping_task_wakes_it_at_the_time_of_the_cancel(fake_loop):
    got = []

    def victim():
        try:
            yield from uasyncio.sleep(10)
        except CancelledError:
            got.append(fake_loop.t)
            raise
        got.append("slept through")

    def main():
        v = victim()
        fake_loop.create_task(v)
        yield from uasyncio.sleep(3)
        cancelled_at = fake_loop.t
        uasyncio.cancel(v)
        yield
        return cancelled_at

    cancelled_at = fake_loop.run_until_complete(main())
    assert cancelled_at == 3000
    assert got == [3000]              # not 10000: woken by the cancel
    assert fake_loop.t == 3000
    assert all(w <= 3000 for w in fake_loop.waits)
    assert "timers=0" in repr(fake_loop)


def test_cancel_sleeping_task_real_loop_ends_long_before_its_sleep(loop):
    state = {}

    async def victim():
        try:
            await uasyncio.sleep(10)
        except CancelledError:
            state["cancelled"] = time.monotonic()
            raise
        state["slept"] = True

    async def main():
        v = victim()
        loop.create_task(v)
        await uasyncio.sleep_ms(10)
        uasyncio.cancel(v)
        while "cancelled" not in state:
            await uasyncio.sleep_ms(1)

    t0 = time.monotonic()
    loop.run_until_complete(main())
    assert time.monotonic() - t0 < 5
    assert "slept" not in state
    assert "timers=0" in repr(loop)


# ---- parked tasks ---------------------------------------------------------------


def test_cancel_task_parked_with_yield_false(fake_loop):
    log = []

    def victim():
        log.append("parking")
        try:
            yield False
        except CancelledError:
            log.append("cancelled")
            raise
        log.append("not reached")

    def main():
        v = victim()
        fake_loop.create_task(v)
        yield from tick(2)              # victim parks; the loop forgets it
        assert log == ["parking"]
        uasyncio.cancel(v)
        yield from tick(2)
        return v

    v = fake_loop.run_until_complete(main())
    assert log == ["parking", "cancelled"]
    assert v.gi_frame is None           # the generator has ended
    assert fake_loop.t == 0


def test_cancel_task_parked_on_ioread_of_socketpair(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    log = []
    try:
        def victim():
            try:
                yield uasyncio.IORead(a)
            except CancelledError:
                log.append("cancelled")
                raise
            log.append("not reached")

        def main():
            v = victim()
            loop.create_task(v)
            yield from tick(2)
            uasyncio.cancel(v)
            for _ in range(5):
                yield
            return "ok"

        t0 = time.monotonic()
        assert loop.run_until_complete(main()) == "ok"
        assert time.monotonic() - t0 < 5
        assert log == ["cancelled"]
        # The task no longer waits on the socket.
        assert loop.remove_reader(a) is False
    finally:
        a.close()
        b.close()


# ---- a task not started yet -------------------------------------------------------


def test_cancel_queued_task_not_started_never_runs_its_body(fake_loop):
    ran = []

    async def victim():
        ran.append("body")
        await uasyncio.sleep_ms(1)

    v = victim()
    fake_loop.create_task(v)
    uasyncio.cancel(v)

    def main():
        yield from tick(3)
        return "main"

    assert fake_loop.run_until_complete(main()) == "main"
    assert ran == []
    assert v.cr_frame is None           # closed by the CancelledError at its start
    assert "queued=0" in repr(fake_loop)


def test_cancel_task_created_in_the_same_pass_never_runs(fake_loop):
    ran = []

    def victim():
        ran.append("body")
        yield

    def main():
        v = victim()
        fake_loop.create_task(v)
        uasyncio.cancel(v)
        yield from tick(3)
        return v

    v = fake_loop.run_until_complete(main())
    assert ran == []
    assert v.gi_frame is None


# ---- a finished coroutine -----------------------------------------------------------


def test_cancel_finished_coroutine_is_a_noop(fake_loop):
    async def quick():
        return 5

    c = quick()
    assert fake_loop.run_until_complete(c) == 5
    assert uasyncio.cancel(c) is None
    assert "queued=0 timers=0" in repr(fake_loop)
    # Nothing was scheduled anywhere: the loop runs another coroutine normally.
    assert fake_loop.run_until_complete(iter_value("next")) == "next"


def test_cancel_finished_non_main_generator_is_a_noop(fake_loop):
    def quick():
        yield
        return 1

    def main():
        q = quick()
        fake_loop.create_task(q)
        yield from tick(3)
        assert q.gi_frame is None
        uasyncio.cancel(q)             # no error
        yield from tick(2)
        return "ok"

    assert fake_loop.run_until_complete(main()) == "ok"


# ---- a task that catches CancelledError ----------------------------------------------


def test_task_catching_cancelled_error_keeps_running_and_finishes(fake_loop):
    log = []

    def victim():
        try:
            yield from uasyncio.sleep(10)
        except CancelledError:
            log.append(("caught", fake_loop.t))
        yield from uasyncio.sleep(1)
        log.append(("finished", fake_loop.t))

    def main():
        v = victim()
        fake_loop.create_task(v)
        yield from uasyncio.sleep_ms(500)
        uasyncio.cancel(v)
        yield from uasyncio.sleep(2)
        return "main"

    assert fake_loop.run_until_complete(main()) == "main"
    assert log == [("caught", 500), ("finished", 1500)]


def test_main_coroutine_catching_cancelled_error_returns_its_value(fake_loop):
    def main():
        try:
            uasyncio.cancel(fake_loop.cur_task)
            yield from uasyncio.sleep(10)
        except CancelledError:
            pass
        yield from uasyncio.sleep_ms(5)
        return "recovered"

    assert fake_loop.run_until_complete(main()) == "recovered"
    assert fake_loop.t == 5


def test_double_cancel_of_sleeping_task_delivers_one_cancelled_error(fake_loop):
    caught = []

    def victim():
        for _ in range(3):
            try:
                yield from uasyncio.sleep(10)
                return
            except CancelledError:
                caught.append(fake_loop.t)
        caught.append("gave up")

    def main():
        v = victim()
        fake_loop.create_task(v)
        yield from uasyncio.sleep_ms(100)
        uasyncio.cancel(v)
        uasyncio.cancel(v)              # already queued with it: still one
        yield from uasyncio.sleep_ms(100)
        uasyncio.cancel(v)
        yield from uasyncio.sleep_ms(100)
        return "ok"

    assert fake_loop.run_until_complete(main()) == "ok"
    assert caught == [100, 200]
    # The victim is back asleep (10 s) and the loop holds its timer.
    assert "timers=1" in repr(fake_loop)


# ---- CancelledError stays inside the loop ------------------------------------------------


def test_cancelled_error_never_escapes_run_until_complete_for_non_main_tasks(loop):
    a, b = socket.socketpair()
    try:
        def sleeper():
            yield from uasyncio.sleep(10)

        def parked():
            yield False

        def io_waiter():
            yield uasyncio.IORead(a)

        def busy():
            while True:
                yield

        def main():
            tasks = [sleeper(), parked(), io_waiter(), busy()]
            for t in tasks:
                loop.create_task(t)
            unstarted = sleeper()
            loop.create_task(unstarted)
            uasyncio.cancel(unstarted)
            yield from tick(2)
            for t in tasks:
                uasyncio.cancel(t)
            yield from tick(3)
            return [t.gi_frame is None for t in tasks + [unstarted]]

        assert loop.run_until_complete(main()) == [True] * 5
        assert "queued=0 timers=0" in repr(loop)
    finally:
        a.close()
        b.close()


def test_cancelled_error_does_not_escape_run_forever(fake_loop):
    def victim():
        yield from uasyncio.sleep(1)

    def stopper(v):
        yield
        uasyncio.cancel(v)
        yield
        yield
        yield uasyncio.StopLoop("stopped")

    v = victim()
    fake_loop.create_task(v)
    fake_loop.create_task(stopper(v))
    assert fake_loop.run_forever() == "stopped"
    assert v.gi_frame is None


# ---- bad input ----------------------------------------------------------------------


@pytest.mark.parametrize("bad", [42, None, 3.5, lambda: 1, object()],
                         ids=["int", "None", "float", "function", "object"])
def test_cancel_non_coroutine_raises_type_error(bad):
    with pytest.raises(TypeError) as ei:
        uasyncio.cancel(bad)
    assert type(bad).__name__ in str(ei.value)


# ---- no memory growth -----------------------------------------------------------------


def test_cancelling_10000_sleeping_tasks_leaves_nothing_in_the_loop(loop):
    N = 10000
    count = [0]
    refs = []

    async def sleeper():
        try:
            await uasyncio.sleep(10)
        except CancelledError:
            count[0] += 1
            raise

    async def main():
        for _ in range(N):
            c = sleeper()
            refs.append(weakref.ref(c))
            loop.create_task(c)
            del c
        await uasyncio.sleep_ms(0)      # every sleeper is now asleep
        assert "timers=%d" % N in repr(loop)
        for r in refs:
            uasyncio.cancel(r())
        await uasyncio.sleep_ms(0)
        await uasyncio.sleep_ms(0)
        return "done"

    t0 = time.monotonic()
    assert loop.run_until_complete(main()) == "done"
    assert time.monotonic() - t0 < 5
    assert count[0] == N
    assert "queued=0 timers=0" in repr(loop)
    gc.collect()
    assert sum(r() is not None for r in refs) == 0


def test_cancel_of_an_awaited_coroutine_goes_through_its_task(fake_loop):
    """As in 2.0: the exception reaches the inner coroutine at its await,
    through the task that awaits it, and then its awaiter."""
    log = []

    async def inner():
        try:
            await uasyncio.sleep_ms(500)
        except uasyncio.CancelledError:
            log.append(("inner", fake_loop.time()))
            raise

    i = inner()

    async def outer():
        try:
            await i
        except uasyncio.CancelledError:
            log.append(("outer", fake_loop.time()))
        return "outer done"

    async def main():
        fake_loop.create_task(outer())
        await uasyncio.sleep_ms(5)
        uasyncio.cancel(i)
        await uasyncio.sleep_ms(5)

    fake_loop.run_until_complete(main())
    assert log == [("inner", 5), ("outer", 5)]


# ---- a task parked in a Queue or Lock: found through what it waits in ---------


@pytest.mark.parametrize("kind", ["queue", "lock", "inner coroutine"])
def test_cancel_of_a_parked_task_reaches_it_in_its_own_loop(kind):
    """The Queue or Lock operation knows the task and the loop: the cancel
    goes there, even from a task of another loop, and finds it without
    looking at every live task."""
    from uasyncio.queues import Queue
    from uasyncio.synchro import Lock
    loop_a, loop_b = uasyncio.PollEventLoop(), uasyncio.PollEventLoop()
    q, lock = Queue(), Lock()
    phase, log = ["a"], []

    async def inner():
        if kind == "queue":
            await q.get()
        else:
            await lock.acquire()

    async def waiter():
        try:
            if kind == "inner coroutine":
                await inner()
            await inner()
        except CancelledError:
            log.append(phase[0])

    async def start():
        if kind != "queue":
            await lock.acquire()   # held: the waiter parks
        loop_a.create_task(w)
        await uasyncio.sleep_ms(2)

    async def from_b():
        uasyncio.cancel(w)
        await uasyncio.sleep_ms(2)

    async def settle():
        await uasyncio.sleep_ms(2)

    w = waiter()
    loop_a.run_until_complete(start())
    phase[0] = "b"
    loop_b.run_until_complete(from_b())
    assert log == []   # not run by loop b
    phase[0] = "a"
    loop_a.run_until_complete(settle())
    assert log == ["a"]
    loop_a.close()
    loop_b.close()


def test_cancel_of_tasks_parked_in_a_queue_among_many_live_tasks(loop):
    from uasyncio.queues import Queue
    q = Queue()
    cancelled = []

    async def sleeper():
        await uasyncio.sleep(60)

    async def waiter(i):
        try:
            await q.get()
        except CancelledError:
            cancelled.append(i)

    async def main():
        sleepers = [sleeper() for _ in range(5000)]
        for s in sleepers:
            loop.create_task(s)
        waiters = [waiter(i) for i in range(100)]
        for w in waiters:
            loop.create_task(w)
        await uasyncio.sleep_ms(2)
        for w in waiters:
            uasyncio.cancel(w)
        await uasyncio.sleep_ms(2)
        for s in sleepers:
            uasyncio.cancel(s)
        await uasyncio.sleep_ms(2)

    loop.run_until_complete(main())
    assert cancelled == list(range(100))
    q.put_nowait(1)   # no waiter left to hand it to
    assert q.qsize() == 1


def test_cancel_of_a_coroutine_run_by_wait_for_reaches_it(fake_loop):
    """The await chain is followed through wait_for(): the coroutine gets
    CancelledError (not TimeoutError), and it comes out of the wait_for()."""
    log = []

    async def inner():
        try:
            await uasyncio.sleep(60)
        except CancelledError as e:
            log.append(("inner", type(e).__name__, fake_loop.time()))
            raise

    i = inner()

    async def outer():
        try:
            await uasyncio.wait_for(i, 100)
        except CancelledError as e:
            log.append(("outer", type(e).__name__, fake_loop.time()))

    async def main():
        fake_loop.create_task(outer())
        await uasyncio.sleep_ms(5)
        uasyncio.cancel(i)
        await uasyncio.sleep_ms(5)

    fake_loop.run_until_complete(main())
    assert log == [("inner", "CancelledError", 5), ("outer", "CancelledError", 5)]
