"""uasyncio.v3: Event, Lock, Semaphore, BoundedSemaphore and ThreadSafeFlag,
with cancellation while waiting in each. Tests of ours alone run as marked
async tests (the pytest plugin); `both` runs one on CPython's asyncio too."""
import os
import signal
import threading
import time

import pytest

import uasyncio
import uasyncio.v3 as v3
from conftest import run_program
from v3util import both  # noqa: F401 - a fixture


# ---- Event ---------------------------------------------------------------------

def test_event_wakes_every_waiter_in_order(both):
    async def waiter(ev, out, n):
        r = await ev.wait()
        out.append((n, r))

    async def main():
        ev = both.Event()
        out = []
        ts = [both.create_task(waiter(ev, out, i)) for i in range(3)]
        await both.sleep(0)
        assert not ev.is_set() and out == []
        ev.set()
        assert ev.is_set()
        for t in ts:
            await t
        return out
    assert both.run(main()) == [(0, True), (1, True), (2, True)]


def test_event_already_set_returns_at_once(both):
    async def main():
        ev = both.Event()
        ev.set()
        r = await ev.wait()
        ev.clear()
        return r, ev.is_set()
    assert both.run(main()) == (True, False)


@pytest.mark.uasyncio
async def test_event_cleared_before_the_waiter_runs_still_wakes_it():
    ev = v3.Event()
    t = v3.create_task(ev.wait())
    await v3.sleep(0)
    ev.set()
    ev.clear()
    assert await t is True


def test_cancel_while_waiting_for_an_event(both):
    async def main():
        ev = both.Event()
        t = both.create_task(ev.wait())
        await both.sleep(0)
        t.cancel()
        with pytest.raises(both.CancelledError):
            await t
        ev.set()   # no waiter left
        await both.sleep(0)
        return t.cancelled()
    assert both.run(main()) is True


# ---- Lock ----------------------------------------------------------------------

def test_lock_is_fifo_and_exclusive(both):
    async def worker(lock, out, n):
        async with lock:
            out.append(("in", n))
            await both.sleep(0)
            out.append(("out", n))

    async def main():
        lock = both.Lock()
        out = []
        ts = [both.create_task(worker(lock, out, i)) for i in range(3)]
        for t in ts:
            await t
        return out, lock.locked()
    out, locked = both.run(main())
    assert out == [("in", 0), ("out", 0), ("in", 1), ("out", 1), ("in", 2), ("out", 2)]
    assert locked is False


def test_lock_acquire_release_locked(both):
    async def main():
        lock = both.Lock()
        assert lock.locked() is False
        assert await lock.acquire() is True
        assert lock.locked() is True
        lock.release()
        assert lock.locked() is False
        with pytest.raises(RuntimeError):
            lock.release()
        return 1
    assert both.run(main()) == 1


def test_cancel_while_waiting_for_a_lock(both):
    async def main():
        lock = both.Lock()
        await lock.acquire()
        t = both.create_task(lock.acquire())
        t2 = both.create_task(lock.acquire())
        await both.sleep(0)
        t.cancel()
        await both.sleep(0)
        lock.release()
        assert await t2 is True
        assert lock.locked()
        lock.release()
        return t.cancelled()
    assert both.run(main()) is True


@pytest.mark.uasyncio
async def test_cancelled_after_the_lock_was_handed_passes_it_on():
    lock = v3.Lock()
    await lock.acquire()
    a = v3.create_task(lock.acquire())
    b = v3.create_task(lock.acquire())
    await v3.sleep(0)
    lock.release()      # handed to a, which has not run yet
    a.cancel()
    with pytest.raises(v3.CancelledError):
        await a
    assert await b is True   # a passed it on
    lock.release()
    assert lock.locked() is False


def test_lock_exception_inside_async_with_releases(both):
    async def main():
        lock = both.Lock()
        with pytest.raises(KeyError):
            async with lock:
                raise KeyError
        return lock.locked()
    assert both.run(main()) is False


# ---- Semaphore -----------------------------------------------------------------

def test_semaphore_limits_holders(both):
    async def worker(sem, state):
        async with sem:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
            await both.sleep(0.001)
            state["now"] -= 1

    async def main():
        sem = both.Semaphore(2)
        state = {"now": 0, "max": 0}
        await both.gather(*[worker(sem, state) for _ in range(6)])
        return state["max"], sem.locked()
    assert both.run(main()) == (2, False)


def test_semaphore_release_above_initial_is_allowed_bounded_is_not(both):
    async def main():
        s = both.Semaphore(1)
        s.release()
        await s.acquire()
        await s.acquire()
        assert s.locked()
        b = both.BoundedSemaphore(1)
        with pytest.raises(ValueError):
            b.release()
        await b.acquire()
        b.release()
        return 1
    assert both.run(main()) == 1


def test_semaphore_rejects_a_negative_value(both):
    with pytest.raises(ValueError):
        both.Semaphore(-1)


@pytest.mark.uasyncio
async def test_cancel_while_waiting_for_a_semaphore():
    s = v3.Semaphore(0)
    t = v3.create_task(s.acquire())
    await v3.sleep(0)
    t.cancel()
    await v3.sleep(0)
    s.release()
    assert not s.locked()
    assert t.cancelled() is True


# ---- ThreadSafeFlag ------------------------------------------------------------

@pytest.mark.uasyncio
async def test_flag_set_before_wait():
    f = v3.ThreadSafeFlag()
    f.set()
    assert await f.wait() is None
    f.set()
    f.clear()
    t = v3.create_task(f.wait())
    await v3.sleep_ms(5)
    assert not t.done()
    t.cancel()


@pytest.mark.uasyncio
async def test_flag_set_from_a_thread_wakes_the_loop_at_once():
    f = v3.ThreadSafeFlag()
    th = threading.Timer(0.05, f.set)
    t0 = time.monotonic()
    th.start()
    await f.wait()
    th.join()
    assert time.monotonic() - t0 < 5   # woken by the set, not by some timer


@pytest.mark.uasyncio
async def test_flag_set_from_a_signal_handler():
    f = v3.ThreadSafeFlag()
    old = signal.signal(signal.SIGUSR1, lambda *a: f.set())
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        await f.wait()
    finally:
        signal.signal(signal.SIGUSR1, old)


@pytest.mark.uasyncio
async def test_flag_two_waiters_raise():
    f = v3.ThreadSafeFlag()
    t = v3.create_task(f.wait())
    await v3.sleep(0)
    with pytest.raises(RuntimeError):
        await f.wait()
    f.set()
    await t


@pytest.mark.uasyncio
async def test_cancel_while_waiting_for_a_flag():
    f = v3.ThreadSafeFlag()
    t = v3.create_task(f.wait())
    await v3.sleep(0)
    t.cancel()
    with pytest.raises(v3.CancelledError):
        await t
    # another task may wait now
    f.set()
    await v3.wait_for(f.wait(), 1)


@pytest.mark.uasyncio
async def test_flag_waits_forever_without_busy_looping():
    f = v3.ThreadSafeFlag()
    c0 = time.process_time()
    threading.Timer(0.2, f.set).start()
    await f.wait()
    assert time.process_time() - c0 < 0.15


def test_v2_loop_has_call_soon_threadsafe_and_v3_loop_too(uasyncio_loop):
    assert callable(uasyncio_loop.call_soon_threadsafe)
    assert callable(uasyncio.get_event_loop().call_soon_threadsafe)


@pytest.mark.uasyncio
async def test_call_soon_threadsafe_from_a_thread_sets_an_event(uasyncio_loop):
    ev = v3.Event()
    threading.Timer(0.02, uasyncio_loop.call_soon_threadsafe, (ev.set,)).start()
    assert await v3.wait_for(ev.wait(), 10) is True


def test_pending_tasks_are_finalized_at_exit(tmp_path):
    out = run_program(tmp_path, """
        import uasyncio.v3 as v3
        async def f():
            try:
                await v3.sleep(100)
            finally:
                print('finally ran')
        async def main():
            v3.create_task(f())
            await v3.sleep(0)
        v3.run(main())
        """)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "finally ran\n"
