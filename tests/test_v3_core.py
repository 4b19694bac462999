"""uasyncio.v3: tasks, run, sleep, current_task, cancel, the exceptions and
the exception handler. What drives a loop itself uses `aio` (or `both`, on
CPython's asyncio too); the rest are marked async tests (the pytest plugin)."""
import gc
import sys

import pytest

import uasyncio
import uasyncio.v3 as v3
from v3util import aio, both, run_both  # noqa: F401 - fixtures


# ---- run, create_task, sleep ------------------------------------------------

def test_run_returns_the_value(both):
    async def main():
        await both.sleep(0)
        return 42
    assert both.run(main()) == 42


def test_run_raises_what_the_main_task_raised(both):
    async def main():
        await both.sleep(0)
        raise KeyError("k")
    with pytest.raises(KeyError):
        both.run(main())


def test_loop_is_reusable_after_an_exception(aio):
    async def bad():
        raise ValueError("x")

    async def good():
        await aio.sleep_ms(1)
        return "ok"
    with pytest.raises(ValueError):
        aio.run(bad())
    assert aio.run(good()) == "ok"
    assert aio.get_event_loop().run_until_complete(good()) == "ok"


def test_module_run_until_complete(aio):
    async def f():
        await aio.sleep_ms(1)
        return "r"
    assert aio.run_until_complete(f()) == "r"
    t = aio.create_task(f())
    assert aio.run_until_complete(t) == "r"



def test_module_run_until_complete_with_no_task_runs_until_stop(aio):
    """MicroPython's core function: with no task (or None), until stop()."""
    out = []

    async def worker(n):
        await aio.sleep_ms(1)
        out.append(n)
        if n == 2:
            aio.get_event_loop().stop()
    for call in (lambda: aio.run_until_complete(), lambda: aio.run_until_complete(None)):
        out.clear()
        for n in range(3):
            aio.create_task(worker(n))
        assert call() is None
        assert out == [0, 1, 2]
    with pytest.raises(TypeError):
        aio.run_until_complete(None, None)

PROGRAM_UNTIL_IDLE = """
    import socket, threading, time
    import uasyncio.v3 as asyncio
    out = []

    async def sleeper(n):
        await asyncio.sleep_ms(5 * n)
        out.append(("slept", n))

    async def forgotten(ev):
        await ev.wait()            # no task will set it: nothing can wake this one
        out.append("never")

    async def flag_waiter(flag):
        await flag.wait()          # another thread sets it: the loop must wait
        out.append("flag")

    async def server_then_close():
        server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        await asyncio.sleep_ms(30)  # the listening socket waits on I/O meanwhile
        server.close()
        await server.wait_closed()
        out.append("server closed")
        closed.set()

    for n in range(3):
        asyncio.create_task(sleeper(n))
    asyncio.create_task(forgotten(asyncio.Event()))
    flag = asyncio.ThreadSafeFlag()
    asyncio.create_task(flag_waiter(flag))
    asyncio.create_task(server_then_close())
    closed = threading.Event()

    def setter():
        # Only once everything else is over, and a moment later, so the loop
        # has nothing left but the flag's waiter when the flag is set.
        closed.wait(30)
        time.sleep(0.05)
        flag.set()
    setter_thread = threading.Thread(target=setter)
    setter_thread.start()
    print(asyncio.run_until_complete())
    print(out)
    setter_thread.join(30)
    print(closed.is_set())
"""


def test_module_run_until_complete_with_no_task_returns_once_nothing_can_wake(tmp_path):
    """MicroPython's core function with no task: it returns when no task is
    queued, sleeping or waiting on I/O (a ThreadSafeFlag counts: another
    thread may set it), though a task still waits on an Event no one sets."""
    from conftest import run_program
    proc = run_program(tmp_path, PROGRAM_UNTIL_IDLE, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == [
        "None",
        "[('slept', 0), ('slept', 1), ('slept', 2), 'server closed', 'flag']",
        "True",
    ], proc.stdout + proc.stderr


def test_create_task_returns_a_task_that_runs(both):
    async def child(out, n):
        out.append(n)
        await both.sleep(0)
        out.append(n + 10)
        return n * 2

    async def main():
        out = []
        ts = [both.create_task(child(out, i)) for i in range(3)]
        assert all(isinstance(t, both.Task) for t in ts)
        res = [await t for t in ts]
        return out, res
    assert both.run(main()) == ([0, 1, 2, 10, 11, 12], [0, 2, 4])


def test_create_task_rejects_a_non_coroutine(both):
    async def main():
        for bad in (1, None, lambda: None):
            with pytest.raises(TypeError):
                both.create_task(bad)
    both.run(main())


def test_run_rejects_a_non_coroutine(aio):
    with pytest.raises(TypeError):
        aio.run(5)


def test_generator_coroutines_are_tasks_too(aio):
    def gen():
        yield from aio.sleep_ms(1)
        return "gen"

    async def main():
        return await aio.create_task(gen())
    assert aio.run(main()) == "gen"


def test_sleep_order_by_deadline(both):
    async def sleeper(out, d):
        await both.sleep(d)
        out.append(d)

    async def main():
        out = []
        ts = [both.create_task(sleeper(out, d)) for d in (0.03, 0.01, 0.02, 0)]
        for t in ts:
            await t
        return out
    assert both.run(main()) == [0, 0.01, 0.02, 0.03]


@pytest.mark.uasyncio
async def test_sleep_ms_orders_and_accepts_negative():
    async def sleeper(out, d):
        await v3.sleep_ms(d)
        out.append(d)

    out = []
    ts = [v3.create_task(sleeper(out, d)) for d in (20, -5, 10)]
    for t in ts:
        await t
    assert out == [-5, 10, 20]


def test_sleep_rejects_bad_delays(aio):
    with pytest.raises(TypeError):
        aio.sleep("1")
    with pytest.raises(TypeError):
        aio.sleep_ms(None)
    with pytest.raises(ValueError):
        aio.sleep(float("nan"))


@pytest.mark.uasyncio
async def test_sleep_ms_allocates_nothing_in_steady_state():
    import tracemalloc

    for _ in range(1000):
        await v3.sleep_ms(0)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for _ in range(10000):
        await v3.sleep_ms(0)
    grown = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    assert grown < 1000


# ---- current_task ----------------------------------------------------------------

def test_current_task(both):
    async def child():
        return both.current_task()

    async def main():
        me = both.current_task()
        t = both.create_task(child())
        assert await t is t
        return me
    t = both.run(main())
    assert isinstance(t, both.Task) and t.done()


def test_current_task_outside_a_task_raises(aio):
    with pytest.raises(RuntimeError):
        aio.current_task()


# ---- exceptions ------------------------------------------------------------------

def test_exception_classes():
    assert issubclass(v3.CancelledError, BaseException)
    assert not issubclass(v3.CancelledError, Exception)
    assert issubclass(v3.TimeoutError, Exception)
    assert not issubclass(v3.TimeoutError, v3.CancelledError)
    assert v3.CancelledError is not uasyncio.CancelledError
    assert v3.__version__ == (3, 0, 0)


# ---- Task --------------------------------------------------------------------------

def test_task_awaited_by_several_tasks(both):
    async def slow():
        await both.sleep(0.01)
        return "v"

    async def waiter(t):
        return await t

    async def main():
        t = both.create_task(slow())
        ws = [both.create_task(waiter(t)) for _ in range(3)]
        return [await w for w in ws] + [await t]
    assert both.run(main()) == ["v"] * 4


def test_task_exception_reaches_every_awaiter(both):
    async def bad():
        await both.sleep(0)
        raise ValueError("bad")

    async def waiter(t):
        try:
            await t
        except ValueError as e:
            return str(e)

    async def main():
        t = both.create_task(bad())
        ws = [both.create_task(waiter(t)) for _ in range(2)]
        return [await w for w in ws]
    assert both.run(main()) == ["bad", "bad"]


def test_task_done_result_exception_cancelled(both):
    async def ok():
        return 1

    async def bad():
        raise ValueError("e")

    async def forever():
        await both.sleep(10)

    async def main():
        a, b, c = both.create_task(ok()), both.create_task(bad()), both.create_task(forever())
        assert not a.done()
        with pytest.raises(both.InvalidStateError):
            a.result()
        with pytest.raises(both.InvalidStateError):
            a.exception()
        await both.sleep(0)
        assert a.done() and a.result() == 1 and a.exception() is None and not a.cancelled()
        assert b.done() and isinstance(b.exception(), ValueError)
        with pytest.raises(ValueError):
            b.result()
        assert c.cancel()
        await both.sleep(0)
        assert c.done() and c.cancelled()
        with pytest.raises(both.CancelledError):
            c.result()
        with pytest.raises(both.CancelledError):
            c.exception()
        assert not c.cancel()
        return "ok"
    assert both.run(main()) == "ok"


def test_done_callbacks(both):
    async def ok():
        await both.sleep(0)
        return 5

    async def main():
        seen = []
        t = both.create_task(ok())
        cb = lambda task: seen.append(("a", task.result()))  # noqa: E731
        t.add_done_callback(cb)
        t.add_done_callback(lambda task: seen.append(("b", task is t)))
        gone = lambda task: seen.append("never")  # noqa: E731
        t.add_done_callback(gone)
        assert t.remove_done_callback(gone) == 1
        assert t.remove_done_callback(gone) == 0
        await t
        await both.sleep(0)
        t.add_done_callback(lambda task: seen.append("late"))
        await both.sleep(0)
        return seen
    assert both.run(main()) == [("a", 5), ("b", True), "late"]


@pytest.mark.uasyncio
async def test_task_cannot_await_itself():
    with pytest.raises(RuntimeError):
        await v3.current_task()


# ---- cancel ------------------------------------------------------------------------

@pytest.mark.uasyncio
async def test_cancel_a_sleeping_task_is_immediate(uasyncio_loop):
    async def sleeper(out):
        try:
            await v3.sleep(3600)
        except v3.CancelledError:
            out.append("cancelled")
            raise

    out = []
    t = v3.create_task(sleeper(out))
    await v3.sleep(0)
    t0 = uasyncio_loop.time()
    assert t.cancel() is True
    with pytest.raises(v3.CancelledError):
        await t
    assert uasyncio.ticks_diff(uasyncio_loop.time(), t0) < 1000
    assert out == ["cancelled"]


def test_cancel_same_output_as_asyncio():
    def program(aio, out):
        async def sleeper():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                out.append("child cancelled")
                raise

        async def main():
            t = aio.create_task(sleeper())
            await aio.sleep(0)
            out.append(t.cancel())
            try:
                await t
            except aio.CancelledError:
                out.append("awaiter got CancelledError")
            out.append(t.cancel())
            out.append(t.done())
            return "end"
        return main()
    a, b = run_both(program)
    assert a == b


def test_cancel_a_task_not_started_yet(both):
    async def never(out):
        out.append("ran")

    async def main():
        out = []
        t = both.create_task(never(out))
        t.cancel()
        with pytest.raises(both.CancelledError):
            await t
        return out
    assert both.run(main()) == []


@pytest.mark.uasyncio
async def test_cancel_self_raises():
    with pytest.raises(RuntimeError, match="can't cancel self"):
        v3.current_task().cancel()


@pytest.mark.uasyncio
async def test_cancel_is_forwarded_to_the_awaited_task():
    async def inner(out):
        try:
            await v3.sleep(3600)
        except v3.CancelledError:
            out.append("inner")
            raise

    async def outer(out, t):
        try:
            await t
        except v3.CancelledError:
            out.append("outer")
            raise

    out = []
    ti = v3.create_task(inner(out))
    to = v3.create_task(outer(out, ti))
    await v3.sleep(0)
    to.cancel()
    with pytest.raises(v3.CancelledError):
        await to
    assert out == ["inner", "outer"] and ti.cancelled()


def test_cancelled_error_caught_lets_the_task_go_on(both):
    async def stubborn():
        try:
            await both.sleep(10)
        except both.CancelledError:
            pass
        return "survived"

    async def main():
        t = both.create_task(stubborn())
        await both.sleep(0)
        t.cancel()
        return await t
    assert both.run(main()) == "survived"


def test_cancel_the_main_task_from_another(aio):
    async def killer(t):
        t.cancel()

    async def main():
        aio.create_task(killer(aio.current_task()))
        await aio.sleep(3600)
    with pytest.raises(aio.CancelledError):
        aio.run(main())


# ---- the exception handler ---------------------------------------------------------

def test_unretrieved_exception_goes_to_the_handler(aio):
    seen = []

    async def bad():
        raise ValueError("lost")

    async def main():
        loop = aio.get_event_loop()
        assert loop.get_exception_handler() is None
        handler = lambda loop, ctx: seen.append((ctx["message"], type(ctx["exception"]), type(ctx["future"])))  # noqa: E731
        loop.set_exception_handler(handler)
        assert loop.get_exception_handler() is handler
        aio.create_task(bad())
        await aio.sleep_ms(5)
        return "done"
    assert aio.run(main()) == "done"
    assert seen == [("Task exception wasn't retrieved", ValueError, aio.Task)]


def test_awaited_exception_does_not_reach_the_handler(aio):
    seen = []

    async def bad():
        raise ValueError("x")

    async def main():
        aio.get_event_loop().set_exception_handler(lambda l, c: seen.append(c))
        t = aio.create_task(bad())
        await aio.sleep(0)   # t ended; MicroPython reports it only a pass later
        with pytest.raises(ValueError):
            await t
        await aio.sleep(0)
        await aio.sleep(0)
    aio.run(main())
    assert seen == []


def test_cancelled_task_is_not_reported(aio):
    seen = []

    async def sleeper():
        await aio.sleep(10)

    async def main():
        aio.get_event_loop().set_exception_handler(lambda l, c: seen.append(c))
        t = aio.create_task(sleeper())
        await aio.sleep(0)
        t.cancel()
        await aio.sleep(0)
        await aio.sleep(0)
    aio.run(main())
    assert seen == []


def test_default_handler_prints_message_task_and_traceback(aio, capsys):
    async def bad():
        raise ValueError("printed")

    async def main():
        aio.create_task(bad())
        await aio.sleep_ms(5)
    aio.run(main())
    err = capsys.readouterr().err
    assert "Task exception wasn't retrieved" in err
    assert "future: <Task" in err and "coro=" in err
    assert "ValueError: printed" in err and "Traceback" in err


def test_handler_that_raises_stops_run_and_the_loop_stays_usable(aio):
    async def bad():
        raise ValueError("x")

    def handler(loop, ctx):
        raise RuntimeError("handler failed")

    async def main():
        aio.get_event_loop().set_exception_handler(handler)
        aio.create_task(bad())
        await aio.sleep_ms(10)
    with pytest.raises(RuntimeError, match="handler failed"):
        aio.run(main())
    aio.get_event_loop().set_exception_handler(None)

    async def ok():
        return 3
    assert aio.run(ok()) == 3


@pytest.mark.parametrize("how", ["done callback", "call_soon"])
def test_a_failing_callback_goes_to_the_handler_and_the_loop_goes_on(both, how):
    """As CPython: an exception raised by a callback (a task's done callback,
    one given to call_soon) goes to the exception handler, and the loop,
    with main still pending, carries on."""
    seen = []

    def bad(*args):
        raise ValueError("in callback")

    async def child():
        return 1

    async def main():
        loop = both.get_event_loop()
        loop.set_exception_handler(lambda l, ctx: seen.append((ctx["message"], ctx["exception"])))
        if how == "call_soon":
            loop.call_soon(bad)
        else:
            both.create_task(child()).add_done_callback(bad)
        for _ in range(3):
            await both.sleep(0)
        return "main done"
    assert both.run(main()) == "main done"
    assert [(m.startswith("Exception in callback"), type(e)) for m, e in seen] == [(True, ValueError)]


def test_a_failing_done_callback_with_no_handler_is_printed_and_the_loop_goes_on(both, capsys):
    def bad(task):
        raise ValueError("printed from a callback")

    async def child():
        return 1

    async def main():
        both.create_task(child()).add_done_callback(bad)
        for _ in range(3):
            await both.sleep(0)
        return "main done"
    assert both.run(main()) == "main done"
    err = capsys.readouterr().err
    if both is v3:   # CPython's goes to logging
        assert "Exception in callback" in err
        assert "ValueError: printed from a callback" in err and "Traceback" in err


def test_call_exception_handler_and_default(aio, capsys):
    loop = aio.get_event_loop()
    loop.call_exception_handler({"message": "hello"})
    loop.default_exception_handler({"message": "direct"})
    loop.default_exception_handler(loop, {"message": "micropython style"})
    err = capsys.readouterr().err
    assert "hello" in err and "direct" in err and "micropython style" in err
    with pytest.raises(TypeError):
        loop.call_exception_handler("no dict")
    with pytest.raises(TypeError):
        loop.set_exception_handler(5)


def test_keyboard_interrupt_in_a_task_stops_the_loop(aio):
    async def intr():
        raise KeyboardInterrupt

    async def main():
        aio.create_task(intr())
        await aio.sleep(3600)
    with pytest.raises(KeyboardInterrupt):
        aio.run(main())


# ---- loops -------------------------------------------------------------------------

def test_get_event_loop_is_a_loop_and_new_event_loop_replaces_it(aio):
    loop = aio.get_event_loop()
    assert isinstance(loop, aio.Loop)
    assert isinstance(loop, uasyncio.PollEventLoop)
    assert aio.get_event_loop() is loop
    assert aio.get_event_loop(16, 16) is loop
    new = aio.new_event_loop()
    assert new is not loop and aio.get_event_loop() is new
    loop.close()


def test_loop_create_task_run_until_complete(aio):
    loop = aio.get_event_loop()

    async def f():
        await aio.sleep_ms(1)
        return "r"
    t = loop.create_task(f())
    assert loop.run_until_complete(t) == "r"
    assert loop.run_until_complete(t) == "r"   # already done
    assert loop.run_until_complete(f()) == "r"


def test_run_forever_and_stop(aio):
    loop = aio.get_event_loop()
    out = []

    async def f():
        out.append(1)
        await aio.sleep_ms(5)
        out.append(2)
        loop.stop()
    loop.create_task(f())
    loop.run_forever()
    assert out == [1, 2]


def test_run_inside_a_running_loop_raises(aio):
    async def inner():
        pass

    async def main():
        c = inner()
        with pytest.raises(RuntimeError):
            aio.run(c)
        c.close()
        return 1
    assert aio.run(main()) == 1


def test_tasks_of_a_closed_loop_are_released(aio):
    ev = []

    async def forever():
        try:
            await aio.sleep(3600)
        finally:
            ev.append("finally")
    loop = aio.new_event_loop()
    loop.create_task(forever())

    async def main():
        await aio.sleep(0)
    loop.run_until_complete(main())
    loop.close()
    gc.collect()
    assert ev == ["finally"]


PROGRAM_WAKE_WHILE_CLOSING = """
import gc
import sys
import uasyncio.v3 as asyncio

how = sys.argv[1]
ev, lock, q = asyncio.Event(), asyncio.Lock(), asyncio.Queue()
out = []

async def woken(name):
    try:
        if how == "event":
            await ev.wait()
        elif how == "lock":
            await lock.acquire()
        elif how == "queue":
            await q.get()
        else:
            await asyncio.sleep(60)
    finally:
        out.append(name)

async def waker():
    try:
        await asyncio.sleep(60)
    finally:
        if how == "event":
            ev.set()
        elif how == "lock":
            lock.release()
        elif how == "queue":
            q.put_nowait(1)
        else:
            for t in others:
                t.cancel()
        out.append("waker")

async def main():
    global others
    await lock.acquire()   # the waker releases it
    others = [asyncio.create_task(woken("a"))]
    asyncio.create_task(waker())
    others.append(asyncio.create_task(woken("b")))
    await asyncio.sleep_ms(1)

asyncio.run(main())
loop = asyncio.get_event_loop()
if sys.argv[2] == "close":
    loop.close()
    print(repr(loop))
    gc.collect()
    print(sorted(out))
"""


@pytest.mark.parametrize("how", ["event", "lock", "queue", "cancel"])
@pytest.mark.parametrize("when", ["close", "exit"])
def test_a_finally_run_by_close_that_wakes_another_task_leaves_nothing_queued(tmp_path, how, when):
    """close() finalizes the pending tasks one by one: a finally block that
    wakes a task not finalized yet (an Event set, a Lock released, a Queue
    item, a cancel) must not queue it in the closed loop (whose run queue
    would then hold a freed Task); at interpreter exit too. Run apart: the
    next collection would read freed memory."""
    from conftest import run_program
    proc = run_program(tmp_path, PROGRAM_WAKE_WHILE_CLOSING, how, when, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    if when == "close":
        assert proc.stdout.splitlines() == [
            "<Loop running=False closed=True queued=0 timers=0>", "['a', 'b', 'waker']"]


def test_v2_and_v3_share_the_loop_code(aio):
    """A 2.0 awaitable (uasyncio.sleep_ms, a SleepMs) works in a v3 task."""
    async def main():
        await uasyncio.sleep_ms(1)
        await uasyncio.sleep(0)
        return "shared"
    assert aio.run(main()) == "shared"


# ---- 2.0 awaitables in v3 tasks: each wakes the Task's own record ---------------------

def run_virtual(aio, main):
    """Run main() on a new virtual-clock loop (a task that is never woken
    again makes wait_for time out at once, not hang)."""
    loop = aio.new_event_loop(virtual_clock=True)
    try:
        return loop.run_until_complete(aio.wait_for(main(), 3600))
    finally:
        loop.close()


def test_v2_wait_for_ms_times_out_a_v3_task(aio):
    from uasyncio.queues import Queue
    ev = aio.Event()

    async def timed(aw, ms):
        try:
            return await uasyncio.wait_for_ms(aw, ms)
        except uasyncio.TimeoutError:
            return "timeout"

    async def quick():
        await aio.sleep_ms(5)
        return "quick"

    async def main():
        tasks = [aio.create_task(timed(aio.sleep(10), 20)), aio.create_task(timed(quick(), 20)),
                 aio.create_task(timed(ev.wait(), 20)), aio.create_task(timed(Queue().get(), 20))]
        res = await aio.gather(*tasks)
        ev.set()   # its waiter left when it timed out
        await aio.sleep(0)
        return res
    assert run_virtual(aio, main) == ["timeout", "quick", "timeout", "timeout"]


def test_v2_queue_and_lock_wake_v3_tasks(aio):
    from uasyncio.queues import Queue
    from uasyncio.synchro import Lock
    q, small, lock = Queue(), Queue(maxsize=1), Lock()
    out = []

    async def getter():
        out.append(("got", await q.get()))

    async def putter():
        await small.put(1)
        await small.put(2)   # waits for room
        out.append("put 2")

    async def locker(name):
        await lock.acquire()
        out.append(("locked", name))
        await aio.sleep_ms(1)
        lock.release()

    async def main():
        tasks = [aio.create_task(getter()), aio.create_task(putter()),
                 aio.create_task(locker("a")), aio.create_task(locker("b"))]
        await aio.sleep_ms(1)
        q.put_nowait("item")
        assert small.get_nowait() == 1
        await aio.gather(*tasks)
        return out
    assert sorted(map(str, run_virtual(aio, main))) == sorted(map(str, [
        ("got", "item"), "put 2", ("locked", "a"), ("locked", "b")]))


@pytest.mark.parametrize("where", ["awaited coroutine", "queue"])
def test_v2_cancel_reaches_a_v3_task_through_its_record(aio, where):
    from uasyncio.queues import Queue
    q = Queue()

    async def inner():
        if where == "queue":
            await q.get()
        else:
            await aio.sleep(10)

    async def outer(c):
        try:
            await c
        except uasyncio.CancelledError:
            return "cancelled"

    async def main():
        c = inner()
        t = aio.create_task(outer(c))
        await aio.sleep_ms(1)
        uasyncio.cancel(c)
        return await t
    assert run_virtual(aio, main) == "cancelled"


@pytest.mark.parametrize("how", ["2.0 cancel of the awaited coroutine", "2.0 cancel pending as it parks",
                                 "a Wait stepped by hand"])
def test_a_v3_task_woken_off_a_wait_can_be_cancelled_later(aio, how):
    """A task parked on a v3 Wait (the Wait is kept in its record's timer
    fields) that runs again other than through that Wait: a 2.0 cancel
    (of a coroutine it awaits, or pending while it parks), or a Wait stepped
    by hand and not yielded. The Wait lets go of it, so a later cancel(),
    which looks at the Wait it is parked on, finds none."""
    ev = aio.Event()
    me = []

    async def inner():
        await ev.wait()

    async def holder():
        try:
            if how == "2.0 cancel of the awaited coroutine":
                await inner()
            elif how == "2.0 cancel pending as it parks":
                uasyncio.cancel(me[0])   # its own coroutine: raised at its next yield
                await ev.wait()
            else:
                w = ev.wait().__await__()
                assert next(w) is False   # parks it, but not yielded
        except uasyncio.CancelledError:
            pass
        await aio.sleep(10)   # the record goes to the timer heap
        return "not cancelled"

    async def main():
        c = holder()
        me.append(c)
        t = aio.create_task(c)
        await aio.sleep_ms(1)
        if how == "2.0 cancel of the awaited coroutine":
            uasyncio.cancel(t.get_coro().cr_await)
        await aio.sleep_ms(1)
        assert t.cancel()
        try:
            await t
        except aio.CancelledError:
            ev.set()   # no task waits on it any more
            await aio.sleep(0)
            return "cancelled"
    assert run_virtual(aio, main) == "cancelled"


def test_task_size_is_small():
    assert v3.Task.__basicsize__ <= 80   # 96 bytes with the GC header
    assert sys.getsizeof(v3.Task) > 0


@pytest.mark.parametrize("wake", ["call_soon", "call_later_ms", "cancel"])
def test_v2_park_and_wake_by_coroutine_in_a_v3_task(aio, wake):
    """2.0's own way to park a task (yield False) and wake it (call_soon(),
    call_later_ms() or cancel() of loop.cur_task) reaches a v3 Task's record."""
    parked = []

    async def sleeper():
        loop = aio.get_event_loop()
        parked.append(loop.cur_task)
        try:
            await uasyncio.coroutine(lambda: (yield False))()
        except uasyncio.CancelledError:
            return "cancelled"
        return "woken"

    async def main():
        loop = aio.get_event_loop()
        t = aio.create_task(sleeper())
        await aio.sleep_ms(1)
        assert not t.done()
        if wake == "call_soon":
            loop.call_soon(parked[0])
        elif wake == "call_later_ms":
            loop.call_later_ms(5, parked[0])
        else:
            uasyncio.cancel(parked[0])
        return await t
    assert run_virtual(aio, main) == ("cancelled" if wake == "cancel" else "woken")


def test_v2_websocket_sends_queued_behind_each_other_in_v3_tasks(aio):
    """A 2.0 WebSocket send waiting behind another task's blocked write is
    woken (its Task's record) when that write ends."""
    import socket
    import threading
    from uasyncio.websocket.server import WSConn
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    received = []

    def drain():   # reads everything, once both sends are under way
        b.settimeout(30)
        started.wait(30)
        while chunk := b.recv(65536):
            received.append(chunk)

    started = threading.Event()
    reader = threading.Thread(target=drain)
    reader.start()
    ws = WSConn(uasyncio.StreamReader(a), uasyncio.StreamWriter(a, {}))

    async def main():
        sends = [aio.create_task(ws.send(b"x" * (1 << 20))), aio.create_task(ws.send(b"small"))]
        await aio.sleep_ms(20)   # the first write is blocked, the second waits behind it
        started.set()
        await aio.wait_for(aio.gather(*sends), 20)
        return "sent"
    try:
        assert aio.run(main()) == "sent"
    finally:
        started.set()
        a.close()
        reader.join(30)
        b.close()
    data = b"".join(received)
    assert len(data) > (1 << 20) and data.endswith(b"small")


# ---- the virtual clock -------------------------------------------------------------

def test_virtual_clock_jumps_to_the_next_timer(aio):
    import time
    loop = aio.new_event_loop(virtual_clock=True)
    out = []

    async def sleeper(secs):
        await aio.sleep(secs)
        out.append((secs, loop.time()))

    async def main():
        await aio.gather(sleeper(3600), sleeper(60), sleeper(0.5), aio.wait_for(sleeper(7200), 3700))
        return loop.time()
    t0 = time.monotonic()
    with pytest.raises(aio.TimeoutError):
        loop.run_until_complete(main())
    assert time.monotonic() - t0 < 5
    assert out == [(0.5, 500), (60, 60000), (3600, 3600000)]
    assert loop.time() == 3700000


def test_virtual_clock_runs_ready_tasks_first(aio):
    loop = aio.Loop(virtual_clock=True)
    out = []

    async def spinner():
        for i in range(3):
            out.append(("spin", loop.time()))
            await aio.sleep(0)

    async def main():
        loop.create_task(spinner())
        await aio.sleep(10)
        out.append(("slept", loop.time()))
    loop.run_until_complete(main())
    loop.close()
    assert out == [("spin", 0), ("spin", 0), ("spin", 0), ("slept", 10000)]


# ---- bad input ---------------------------------------------------------------------

def test_create_task_on_a_closed_loop_raises(aio):
    loop = aio.new_event_loop()
    loop.close()

    async def f():
        pass
    c = f()
    with pytest.raises(RuntimeError):
        loop.create_task(c)
    c.close()


@pytest.mark.uasyncio
async def test_a_wait_cannot_be_awaited_twice():
    t = v3.create_task(v3.sleep(0))
    w = t.__await__()
    await w
    with pytest.raises(RuntimeError):
        await w


@pytest.mark.uasyncio
async def test_generator_coroutines_await_v3_primitives():
    def gen(ev, q):
        yield from ev.wait()
        item = yield from q.get()
        return item

    ev, q = v3.Event(), v3.Queue()
    t = v3.create_task(gen(ev, q))
    await v3.sleep(0)
    ev.set()
    q.put_nowait("item")
    assert await t == "item"


@pytest.mark.parametrize("make", [lambda: v3.Event().wait(), lambda: v3.Lock().acquire(), lambda: v3.gather(),
                                  lambda: v3.wait_for(v3.sleep(1), 1), lambda: uasyncio.sleep_ms(1)],
                         ids=["Event.wait", "Lock.acquire", "gather", "wait_for", "2.0 sleep_ms"])
def test_throw_of_what_is_no_exception_raises_type_error(make):
    """As a generator's throw(): TypeError, not SystemError."""
    aw = make()
    for args in [(1,), ("text",)]:
        with pytest.raises(TypeError, match="deriving from BaseException"):
            aw.throw(*args)


def test_v3_waits_outside_a_v3_task_raise(loop):
    """A v3 wait awaited in a 2.0 task is a clear error, not a hang."""
    async def main():
        with pytest.raises(RuntimeError):
            await v3.Event().wait()
        return 1
    assert loop.run_until_complete(main()) == 1


@pytest.mark.uasyncio
async def test_task_repr():
    async def f():
        return 1

    t = v3.create_task(f())
    assert repr(t).startswith("<Task pending")
    await t
    assert repr(t).startswith("<Task done")


@pytest.mark.uasyncio
async def test_one_wait_awaited_by_two_tasks_raises():
    ev = v3.Event()
    w = ev.wait()

    async def waiter():
        return await w
    a = v3.create_task(waiter())
    b = v3.create_task(waiter())
    await v3.sleep(0)
    with pytest.raises(RuntimeError):
        await b
    ev.set()
    assert await a is True


def test_stop_twice_stops_once(both):
    """stop() called again before the loop stopped does nothing: the next
    run_forever() runs (MicroPython's and asyncio's behaviour)."""
    out = []
    loop = both.new_event_loop()
    if both.__name__ == "asyncio":
        both.set_event_loop(loop)

    async def task():
        out.append("task")

    async def main():
        loop.stop()
        loop.stop()
        await both.sleep(0)
        loop.stop()
        loop.create_task(task())
        await both.sleep(0)
        out.append("end")
        loop.stop()
    loop.create_task(main())
    for i in range(3):
        out.append(i)
        loop.run_forever()
    loop.close()
    if both.__name__ == "asyncio":
        both.set_event_loop(None)
    assert out == [0, 1, 2, "task", "end"]
