"""wait_for / wait_for_ms: run a coroutine in the calling task, with a timeout."""
import socket
import time

import pytest

import uasyncio
from uasyncio import CancelledError, TimeoutError


def looper(iters):
    for _ in range(iters):
        yield from uasyncio.sleep(1.0)
    return 10


async def alooper(iters):
    for _ in range(iters):
        await uasyncio.sleep(1.0)
    return 10


def tick(n=1):
    for _ in range(n):
        yield


# ---- the reference scenario -------------------------------------------------


def test_v2_scenario_on_fake_clock(fake_loop):
    results = []

    def run_to():
        for timeout in (1, 2, 3):
            start = fake_loop.t
            try:
                ret = yield from uasyncio.wait_for(looper(2), timeout)
                results.append((timeout, "result", ret, fake_loop.t - start))
            except TimeoutError:
                results.append((timeout, "timeout", fake_loop.t - start))

    t0 = time.monotonic()
    fake_loop.run_until_complete(run_to())
    assert time.monotonic() - t0 < 1      # virtual time: instant
    assert results == [
        (1, "timeout", 1000),
        (2, "timeout", 2000),   # the timeout was armed before the second sleep
        (3, "result", 10, 2000),
    ]
    assert "timers=0" in repr(fake_loop)


def test_v2_scenario_with_async_def_and_await(fake_loop):
    results = []

    async def run_to():
        for timeout in (1, 2, 3):
            try:
                results.append(await uasyncio.wait_for(alooper(2), timeout))
            except TimeoutError:
                results.append("timeout")

    fake_loop.run_until_complete(run_to())
    assert results == ["timeout", "timeout", 10]
    assert fake_loop.t == 1000 + 2000 + 2000


def test_wait_for_ms_returns_the_coroutine_value(fake_loop):
    def main():
        v1 = yield from uasyncio.wait_for_ms(looper(1), 1500)
        v2 = yield from uasyncio.wait_for_ms(iter_return("x"), 10)
        return v1, v2, fake_loop.t

    assert fake_loop.run_until_complete(main()) == (10, "x", 1000)


def iter_return(v):
    yield
    return v


def test_wait_for_ms_times_out_at_the_given_ms(fake_loop):
    async def main():
        try:
            await uasyncio.wait_for_ms(alooper(5), 2500)
        except TimeoutError:
            return fake_loop.t
        return "finished"

    assert fake_loop.run_until_complete(main()) == 2500


def test_wait_for_accepts_float_seconds(fake_loop):
    def main():
        try:
            yield from uasyncio.wait_for(looper(3), 0.25)
        except TimeoutError:
            return fake_loop.t

    assert fake_loop.run_until_complete(main()) == 250


# ---- TimeoutError ---------------------------------------------------------------


def test_timeout_error_is_a_cancelled_error_subclass():
    assert issubclass(uasyncio.TimeoutError, uasyncio.CancelledError)
    assert uasyncio.TimeoutError is uasyncio.core.TimeoutError
    assert uasyncio.TimeoutError is not uasyncio.CancelledError


def test_raised_timeout_is_uasyncio_timeout_error(fake_loop):
    def main():
        try:
            yield from uasyncio.wait_for_ms(looper(1), 10)
        except CancelledError as e:
            return type(e)

    assert fake_loop.run_until_complete(main()) is uasyncio.TimeoutError


def test_coroutine_catching_timeout_error_makes_wait_for_return_its_value(fake_loop):
    seen = []

    async def patient():
        try:
            await uasyncio.sleep(10)
        except TimeoutError:
            seen.append(fake_loop.t)
            return "fallback"
        return "slept"

    async def main():
        return await uasyncio.wait_for(patient(), 1)

    assert fake_loop.run_until_complete(main()) == "fallback"
    assert seen == [1000]
    assert fake_loop.t == 1000
    assert "timers=0" in repr(fake_loop)


def test_coroutine_catching_timeout_can_keep_awaiting(fake_loop):
    def stubborn():
        try:
            yield from uasyncio.sleep(10)
        except TimeoutError:
            pass
        yield from uasyncio.sleep_ms(300)   # no second timeout: the timer fired once
        return "late"

    def main():
        return (yield from uasyncio.wait_for_ms(stubborn(), 100)), fake_loop.t

    assert fake_loop.run_until_complete(main()) == ("late", 400)


def test_nested_wait_for_outer_timeout_reaches_outer_caller(fake_loop):
    log = []

    async def inner():
        try:
            return await uasyncio.wait_for(alooper(10), 5)
        except TimeoutError:
            log.append(("inner saw", fake_loop.t))
            raise

    async def main():
        try:
            await uasyncio.wait_for(inner(), 1.5)
        except TimeoutError:
            log.append(("outer caller", fake_loop.t))
        await uasyncio.sleep(10)
        return "main"

    assert fake_loop.run_until_complete(main()) == "main"
    assert log == [("inner saw", 1500), ("outer caller", 1500)]
    # The inner 5 s timeout was removed: nothing hit the task during the 10 s sleep.
    assert fake_loop.t == 11500
    assert fake_loop.waits[-1] == 10000
    assert "timers=0" in repr(fake_loop)


def test_nested_wait_for_inner_shorter_times_out_inner_only(fake_loop):
    async def inner():
        try:
            await uasyncio.wait_for(alooper(10), 1)
        except TimeoutError:
            return ("inner timed out", fake_loop.t)

    async def main():
        return await uasyncio.wait_for(inner(), 5)

    assert fake_loop.run_until_complete(main()) == ("inner timed out", 1000)
    assert "timers=0" in repr(fake_loop)


# ---- timers are removed --------------------------------------------------------------


def test_timer_removed_when_coroutine_finishes_early(fake_loop):
    def fast(i):
        yield from uasyncio.sleep_ms(1)
        return i

    def instant(i):
        return i
        yield  # noqa: unreachable, makes this a generator

    def main():
        total = 0
        for i in range(200):
            total += yield from uasyncio.wait_for_ms(fast(i), 1000)
            total += yield from uasyncio.wait_for(instant(i), 1)
        assert "timers=0" in repr(fake_loop)
        yield from uasyncio.sleep(5)
        return total

    assert fake_loop.run_until_complete(main()) == 2 * sum(range(200))
    assert "timers=0" in repr(fake_loop)
    # Only the 1 ms sleeps and the final 5 s: never a leftover timeout.
    assert fake_loop.waits[:-1] == [1] * 200
    assert fake_loop.waits[-1] == 5000
    assert fake_loop.t == 200 + 5000


def test_timer_removed_when_coroutine_raises(fake_loop):
    def failing():
        yield from uasyncio.sleep_ms(10)
        raise ValueError("boom")

    def main():
        with pytest.raises(ValueError, match="boom"):
            yield from uasyncio.wait_for_ms(failing(), 1000)
        assert "timers=0" in repr(fake_loop)
        yield from uasyncio.sleep(3)
        return "ok"

    assert fake_loop.run_until_complete(main()) == "ok"
    assert fake_loop.waits == [10, 3000]


def test_wait_for_propagates_value_error_out_of_run_until_complete(fake_loop):
    async def failing():
        await uasyncio.sleep_ms(1)
        raise ValueError("from the coroutine")

    async def main():
        await uasyncio.wait_for(failing(), 1)

    with pytest.raises(ValueError, match="from the coroutine"):
        fake_loop.run_until_complete(main())
    assert "timers=0" in repr(fake_loop)


# ---- outside a task ---------------------------------------------------------------------


def test_wait_for_outside_a_running_loop_raises_runtime_error():
    def coro():
        yield
        return 1

    w = uasyncio.wait_for(coro(), 1)
    with pytest.raises(RuntimeError):
        next(w)
    w2 = uasyncio.wait_for_ms(coro(), 1)
    with pytest.raises(RuntimeError):
        w2.send(None)


def test_wait_for_stepped_from_a_callback_raises_runtime_error(fake_loop):
    errors = []

    def coro():
        yield

    def cb():
        try:
            next(uasyncio.wait_for_ms(coro(), 10))
        except RuntimeError as e:
            errors.append(e)

    def main():
        fake_loop.call_soon(cb)
        yield from tick(2)

    fake_loop.run_until_complete(main())
    assert len(errors) == 1


# ---- I/O and other tasks ------------------------------------------------------------------


def test_wait_for_times_out_task_parked_on_ioread(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        def read_one():
            yield uasyncio.IORead(a)
            return a.recv(1)

        def main():
            t0 = time.monotonic()
            try:
                yield from uasyncio.wait_for_ms(read_one(), 50)
            except TimeoutError:
                return "timeout", time.monotonic() - t0
            return "read", None

        what, elapsed = loop.run_until_complete(main())
        assert what == "timeout"
        assert elapsed < 5
        assert loop.remove_reader(a) is False   # no longer registered
        assert "timers=0" in repr(loop)
    finally:
        a.close()
        b.close()


def test_wait_for_on_ioread_returns_data_when_it_arrives(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    try:
        def read_one():
            yield uasyncio.IORead(a)
            return a.recv(10)

        def writer():
            yield from uasyncio.sleep_ms(5)
            b.send(b"hi")

        def main():
            loop.create_task(writer())
            return (yield from uasyncio.wait_for(read_one(), 5))

        t0 = time.monotonic()
        assert loop.run_until_complete(main()) == b"hi"
        assert time.monotonic() - t0 < 4
        assert "timers=0" in repr(loop)
    finally:
        a.close()
        b.close()


def test_uncaught_timeout_ends_task_silently_others_continue(fake_loop):
    log = []

    def victim():
        log.append("victim start")
        yield from uasyncio.wait_for_ms(looper(5), 100)
        log.append("victim not reached")

    def counter():
        for i in range(5):
            yield from uasyncio.sleep_ms(50)
            log.append(("count", i, fake_loop.t))

    def main():
        v = victim()
        fake_loop.create_task(v)
        fake_loop.create_task(counter())
        yield from uasyncio.sleep(1)
        return v

    v = fake_loop.run_until_complete(main())
    assert v.gi_frame is None
    assert "victim not reached" not in log
    assert log[0] == "victim start"
    assert [e for e in log if e[0] == "count"] == [("count", i, 50 * (i + 1)) for i in range(5)]
    assert "timers=0" in repr(fake_loop)
