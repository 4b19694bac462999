"""Bad input is refused with a clear error, and the loop recovers from errors."""
import socket
import time

import pytest

import uasyncio
from conftest import FakeClockLoop


def tick(n=1):
    for _ in range(n):
        yield


def returning(v):
    yield
    return v


# ---- scheduling something that is not a coroutine ----------------------------------


@pytest.mark.parametrize("bad, tname", [(123, "int"), (lambda: 1, "function"), (None, "NoneType")])
def test_create_task_non_coroutine_raises_type_error_naming_type(loop, bad, tname):
    with pytest.raises(TypeError, match="create_task") as ei:
        loop.create_task(bad)
    assert tname in str(ei.value)
    assert "queued=0" in repr(loop)


def test_call_soon_non_callable_raises_type_error(loop):
    with pytest.raises(TypeError) as ei:
        loop.call_soon(42)
    assert "int" in str(ei.value)
    assert "queued=0" in repr(loop)


def test_call_soon_without_arguments_raises_type_error(loop):
    with pytest.raises(TypeError):
        loop.call_soon()


# ---- delays -----------------------------------------------------------------------------


def test_call_later_non_number_delay_names_the_function(loop):
    with pytest.raises(TypeError, match="call_later") as ei:
        loop.call_later("x", lambda: None)
    assert "str" in str(ei.value)
    with pytest.raises(TypeError, match="call_later_ms"):
        loop.call_later_ms(None, lambda: None)
    assert "timers=0" in repr(loop)


def test_sleep_non_number_names_the_function():
    with pytest.raises(TypeError, match="sleep") as ei:
        uasyncio.sleep("x")
    assert "str" in str(ei.value)
    with pytest.raises(TypeError, match="sleep_ms") as ei:
        uasyncio.sleep_ms(None)
    assert "NoneType" in str(ei.value)


@pytest.mark.parametrize("fn", [uasyncio.sleep, uasyncio.sleep_ms])
def test_sleep_nan_raises_value_error(fn):
    with pytest.raises(ValueError):
        fn(float("nan"))


def test_call_later_nan_raises_value_error(loop):
    with pytest.raises(ValueError):
        loop.call_later(float("nan"), lambda: None)
    assert "timers=0" in repr(loop)


@pytest.mark.parametrize("how", ["yield -5", "sleep_ms(-5)", "sleep(-0.005)"])
def test_negative_delay_resumes_in_the_next_pass(fake_loop, how):
    log = []

    def a():
        log.append("A0")
        if how == "yield -5":
            yield -5
        elif how == "sleep_ms(-5)":
            yield from uasyncio.sleep_ms(-5)
        else:
            yield from uasyncio.sleep(-0.005)
        log.append("A1")

    def c():
        for i in range(1, 4):
            log.append("C%d" % i)
            yield

    def main():
        fake_loop.create_task(a())
        fake_loop.create_task(c())
        yield from tick(5)

    fake_loop.run_until_complete(main())
    # Pass 1: A0 C1; pass 2: C2 then A (its timer expired at the pass start); pass 3: C3.
    assert log == ["A0", "C1", "C2", "A1", "C3"]
    assert fake_loop.t == 0
    assert all(w == 0 for w in fake_loop.waits)


def test_call_later_ms_negative_fires_at_next_pass(fake_loop):
    log = []

    def main():
        fake_loop.call_later_ms(-10, log.append, "cb")
        log.append("main 1")
        yield
        log.append("main 2")
        yield
        log.append("main 3")

    fake_loop.run_until_complete(main())
    # Pass 1: main 1 (the timer is set, already expired); pass 2: main 2, then
    # the callback (expired timers join the queue at the start of the pass).
    assert log == ["main 1", "main 2", "cb", "main 3"]
    assert fake_loop.t == 0
    assert all(w == 0 for w in fake_loop.waits)


def test_huge_delay_is_clamped_and_the_task_parks_in_a_timer(loop):
    state = []

    async def sleeper():
        try:
            await uasyncio.sleep(1e12)
        except uasyncio.CancelledError:
            state.append("cancelled")
            raise
        state.append("woke")

    async def main():
        s = sleeper()
        loop.create_task(s)
        await uasyncio.sleep_ms(0)
        await uasyncio.sleep_ms(0)
        assert "timers=1" in repr(loop)
        uasyncio.cancel(s)
        await uasyncio.sleep_ms(0)
        return "ok"

    assert loop.run_until_complete(main()) == "ok"
    assert state == ["cancelled"]
    assert "timers=0" in repr(loop)


def test_huge_delay_wakes_after_ticks_max_delay_on_fake_clock(fake_loop):
    def sleeper():
        yield from uasyncio.sleep(1e12)
        return fake_loop.t

    assert fake_loop.run_until_complete(sleeper()) == uasyncio.TICKS_MAX_DELAY
    assert fake_loop.waits == [uasyncio.TICKS_MAX_DELAY]


def test_huge_call_later_is_accepted(fake_loop):
    fake_loop.call_later(10 ** 30, lambda: None)
    fake_loop.call_later_ms(2 ** 80, lambda: None)
    assert "timers=2" in repr(fake_loop)


# ---- unsupported yields -------------------------------------------------------------------

BAD_YIELDS = ["abc", 3.5, True, object()]
BAD_IDS = ["str", "float", "True", "object"]


@pytest.mark.parametrize("value", BAD_YIELDS, ids=BAD_IDS)
def test_unsupported_yield_raises_type_error_inside_the_task(fake_loop, value):
    log = []

    def task():
        try:
            yield value
        except TypeError as e:
            log.append(str(e))
        yield
        log.append("went on")
        return "done"

    assert fake_loop.run_until_complete(task()) == "done"
    assert len(log) == 2
    assert repr(value) in log[0]
    assert type(value).__name__ in log[0]
    assert log[1] == "went on"


@pytest.mark.parametrize("value", BAD_YIELDS, ids=BAD_IDS)
def test_unsupported_yield_uncaught_propagates_and_loop_stays_usable(loop, value):
    def bad():
        yield value
        return "not reached"

    with pytest.raises(TypeError) as ei:
        loop.run_until_complete(bad())
    msg = str(ei.value)
    assert repr(value) in msg
    assert "of type %s" % type(value).__name__ in msg
    assert loop.run_until_complete(returning(42)) == 42


def test_unsupported_yield_from_non_main_task_propagates(loop):
    def bad():
        yield
        yield "nope"

    def main():
        loop.create_task(bad())
        yield from tick(5)
        return "main"

    with pytest.raises(TypeError, match="nope"):
        loop.run_until_complete(main())
    assert loop.run_until_complete(returning("again")) == "again"


# ---- re-entering the loop -----------------------------------------------------------------


def test_run_until_complete_inside_a_task_raises_runtime_error(loop):
    ran = []

    def inner():
        ran.append("inner")
        yield

    def main():
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_until_complete(inner())
        with pytest.raises(RuntimeError, match="already running"):
            loop.run_forever()
        yield
        return "main"

    assert loop.run_until_complete(main()) == "main"
    assert ran == []
    assert loop.run_until_complete(returning(1)) == 1


def test_run_forever_inside_a_callback_raises_runtime_error(fake_loop):
    errors = []

    def cb():
        try:
            fake_loop.run_forever()
        except RuntimeError as e:
            errors.append(str(e))

    def main():
        fake_loop.call_soon(cb)
        yield from tick(2)
        return "main"

    assert fake_loop.run_until_complete(main()) == "main"
    assert len(errors) == 1 and "running" in errors[0]


# ---- errors in tasks and callbacks ------------------------------------------------------------


def test_exception_in_task_propagates_and_other_tasks_run_next_time(loop):
    log = []

    def failing():
        yield
        raise ValueError("task failed")

    def counter():
        for i in range(5):
            log.append(i)
            yield

    def main():
        loop.create_task(failing())
        loop.create_task(counter())
        yield from tick(10)
        return "main"

    with pytest.raises(ValueError, match="task failed"):
        loop.run_until_complete(main())
    assert log and len(log) < 5
    # The counter is still scheduled: it finishes during the next run.
    assert loop.run_until_complete(returning_after(10, "second")) == "second"
    assert log == [0, 1, 2, 3, 4]


def returning_after(n, v):
    for _ in range(n):
        yield
    return v


def test_exception_in_callback_propagates_and_loop_stays_usable(loop):
    def cb():
        raise ZeroDivisionError("in callback")

    def main():
        loop.call_soon(cb)
        yield from tick(3)
        return "main"

    with pytest.raises(ZeroDivisionError, match="in callback"):
        loop.run_until_complete(main())
    assert loop.run_until_complete(returning(5)) == 5


def test_exception_in_timed_callback_propagates(fake_loop):
    def cb(x):
        raise KeyError(x)

    fake_loop.call_later_ms(100, cb, "k")

    def main():
        yield from uasyncio.sleep(1)

    with pytest.raises(KeyError, match="k"):
        fake_loop.run_until_complete(main())
    assert fake_loop.t == 100


class Custom(BaseException):
    pass


@pytest.mark.parametrize("exc", [KeyboardInterrupt, Custom, SystemExit])
def test_base_exception_in_task_propagates(loop, exc):
    def bad():
        yield
        raise exc("stop")

    def main():
        loop.create_task(bad())
        yield from tick(3)
        return "main"

    with pytest.raises(exc):
        loop.run_until_complete(main())
    assert loop.run_until_complete(returning("usable")) == "usable"


def test_base_exception_in_main_task_propagates(fake_loop):
    def main():
        yield from uasyncio.sleep_ms(10)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fake_loop.run_until_complete(main())


# ---- a closed loop ---------------------------------------------------------------------------


def test_closed_loop_refuses_scheduling_and_running(loop):
    loop.close()

    def coro():
        yield

    with pytest.raises(RuntimeError, match="closed"):
        loop.create_task(coro())
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(lambda: None)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, lambda: None)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later_ms(1, lambda: None)
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_forever()
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(coro())
    with pytest.raises(RuntimeError, match="closed"):
        loop.add_reader(0, lambda: None)
    assert "closed=True" in repr(loop)
    loop.close()   # closing twice is harmless


def test_close_drops_pending_tasks(fake_loop):
    def sleeper():
        yield from uasyncio.sleep(100)

    s = sleeper()
    fake_loop.create_task(s)
    fake_loop.create_task(sleeper())
    fake_loop.call_later(5, lambda: None)
    fake_loop.close()
    assert "queued=0 timers=0" in repr(fake_loop)


# ---- constructor and method arguments ------------------------------------------------------------


def test_call_at_args_not_a_tuple_raises_type_error(loop):
    with pytest.raises(TypeError):
        loop.call_at_(0, lambda *a: None, [1, 2])
    with pytest.raises(TypeError):
        loop.call_at_("soon", lambda: None)
    assert "timers=0" in repr(loop)


def test_call_at_with_tuple_args_calls_back(fake_loop):
    got = []
    fake_loop.call_at_(50, lambda *a: got.append(a), (1, 2))

    def main():
        yield from uasyncio.sleep_ms(100)

    fake_loop.run_until_complete(main())
    assert got == [(1, 2)]


@pytest.mark.parametrize("kwargs", [{"runq_len": -1}, {"waitq_len": -1}])
def test_event_loop_negative_length_raises_value_error(kwargs):
    with pytest.raises(ValueError):
        uasyncio.EventLoop(**kwargs)


def test_event_loop_non_int_length_raises_type_error():
    with pytest.raises(TypeError):
        uasyncio.EventLoop("x")
    with pytest.raises(TypeError):
        uasyncio.PollEventLoop(runq_len=1.5)


def test_add_reader_without_fileno_raises_type_error(loop):
    with pytest.raises(TypeError):
        loop.add_reader(object(), lambda: None)
    with pytest.raises(TypeError):
        loop.add_writer("not a file", lambda: None)


def test_add_reader_non_callable_callback_raises_type_error(loop):
    a, b = socket.socketpair()
    try:
        with pytest.raises(TypeError):
            loop.add_reader(a, 42)
        assert loop.remove_reader(a) is False
    finally:
        a.close()
        b.close()


# ---- I/O on a closed socket ---------------------------------------------------------------------


@pytest.mark.parametrize("syscall", [uasyncio.IORead, uasyncio.IOWrite])
def test_io_wait_on_closed_socket_raises_inside_the_task(loop, syscall):
    s = socket.socket()
    s.close()
    assert s.fileno() == -1

    def task():
        try:
            yield syscall(s)
        except (ValueError, OSError) as e:
            return type(e)
        return None

    err = loop.run_until_complete(task())
    assert err is not None and issubclass(err, (ValueError, OSError))
    assert loop.run_until_complete(returning("usable")) == "usable"


def test_io_wait_on_closed_socket_uncaught_propagates_from_task(loop):
    s = socket.socket()
    s.close()

    def task():
        yield uasyncio.IORead(s)

    with pytest.raises((ValueError, OSError)):
        loop.run_until_complete(task())
    assert loop.run_until_complete(returning(3)) == 3


# ---- ticks --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("delta", [2 ** 29, -(2 ** 29), 2 ** 40, -(2 ** 70)])
def test_ticks_add_overflow(delta):
    with pytest.raises(OverflowError, match="ticks interval overflow"):
        uasyncio.ticks_add(0, delta)


def test_ticks_add_largest_allowed_delta():
    t = uasyncio.ticks_add(0, 2 ** 29 - 1)
    assert uasyncio.ticks_diff(t, 0) == 2 ** 29 - 1
    t = uasyncio.ticks_add(0, -(2 ** 29 - 1))
    assert uasyncio.ticks_diff(t, 0) == -(2 ** 29 - 1)


@pytest.mark.parametrize("args", [("a", 1), (1, "a"), (1.5, 1), (None, 0)])
def test_ticks_diff_non_int_raises_type_error(args):
    with pytest.raises(TypeError, match="ticks_diff"):
        uasyncio.ticks_diff(*args)


def test_ticks_add_non_int_raises_type_error():
    with pytest.raises(TypeError):
        uasyncio.ticks_add("a", 1)
    with pytest.raises(TypeError):
        uasyncio.ticks_add(0, 1.5)


# ---- no queue overflow ------------------------------------------------------------------------------------


def test_100k_tasks_spawned_in_one_go_all_run(loop):
    N = 100_000
    done = [0]

    def worker():
        yield
        done[0] += 1

    def main():
        for _ in range(N):
            loop.create_task(worker())
        yield
        yield
        return "main"

    t0 = time.monotonic()
    assert loop.run_until_complete(main()) == "main"
    assert time.monotonic() - t0 < 5
    assert done[0] == N
    assert "queued=0 timers=0" in repr(loop)


def test_100k_sleeping_tasks_in_small_loop_all_wake():
    N = 100_000
    lp = FakeClockLoop()
    try:
        done = [0]

        def worker(i):
            yield from uasyncio.sleep_ms(1 + i % 7)
            done[0] += 1

        for i in range(N):
            lp.create_task(worker(i))
        assert "queued=%d" % N in repr(lp)

        def main():
            yield from uasyncio.sleep_ms(10)
            return lp.t

        assert lp.run_until_complete(main()) == 10
        assert done[0] == N
        assert "timers=0" in repr(lp)
    finally:
        lp.close()
