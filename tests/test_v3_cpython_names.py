"""CPython asyncio's names in uasyncio.v3: each test runs the same program
on uasyncio.v3 and on CPython's asyncio (of the interpreter running the
tests) and asserts the same outcome. A name CPython's asyncio lacks on this
version (timeout() and TaskGroup before 3.11) is tested on uasyncio.v3
alone there."""
import asyncio as cpython_asyncio
import concurrent.futures
import contextvars
import os
import re
import sys
import threading
import time

import pytest

from v3util import v3_on_a_new_loop

PY311 = sys.version_info >= (3, 11)


@pytest.fixture
def aio(request):
    if request.param == "asyncio":
        yield cpython_asyncio
    else:
        yield from v3_on_a_new_loop()


def on_both(*needs, since=(3, 10)):
    """Parametrize a test over uasyncio.v3 and CPython's asyncio, the latter
    only if it has every name in needs (and is at least version since:
    what the test checks is what CPython does from that version on)."""
    cpython = all(hasattr(cpython_asyncio, n) for n in needs) and sys.version_info >= since
    return pytest.mark.parametrize("aio", ["uasyncio.v3"] + (["asyncio"] if cpython else []), indirect=True)


def caught_timeout(aio):
    """What `except TimeoutError` catches: on 3.11+ the builtin (asyncio's
    TimeoutError is the builtin there); uasyncio.v3's timeout() raises a
    class that is both."""
    return TimeoutError if PY311 else aio.TimeoutError


# ---- 1. the loop and threads -----------------------------------------------------


@on_both()
def test_get_running_loop_is_the_loop_running_the_task(aio):
    async def main():
        loop = aio.get_running_loop()
        return loop is aio.get_event_loop(), loop is aio.get_running_loop()
    assert aio.run(main()) == (True, True)


@on_both()
def test_get_running_loop_outside_a_loop_raises_runtimeerror(aio):
    with pytest.raises(RuntimeError, match="no running event loop"):
        aio.get_running_loop()


@on_both()
def test_run_in_executor_runs_the_function_in_a_worker_thread(aio):
    def work(a, b):
        time.sleep(0.01)
        return a + b, threading.current_thread() is threading.main_thread()

    async def main():
        loop = aio.get_running_loop()
        one = await loop.run_in_executor(None, work, 1, 2)
        many = await aio.gather(*[loop.run_in_executor(None, work, i, i) for i in range(5)])
        return one, many
    assert aio.run(main()) == ((3, False), [(2 * i, False) for i in range(5)])


@on_both()
def test_run_in_executor_gives_the_functions_exception(aio):
    def fail():
        raise ValueError("in the thread")

    async def main():
        try:
            await aio.get_running_loop().run_in_executor(None, fail)
        except ValueError as e:
            return str(e)
    assert aio.run(main()) == "in the thread"


@on_both()
def test_run_in_executor_with_an_executor_of_ones_own(aio):
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mine") as ex:
        async def main():
            fut = aio.get_running_loop().run_in_executor(ex, lambda: threading.current_thread().name)
            return (await fut)[:4], fut.done(), fut.result()[:4]
        assert aio.run(main()) == ("mine", True, "mine")


@on_both()
def test_cancelling_the_awaiting_task_cancels_a_job_not_started(aio):
    gate, ran = threading.Event(), []

    def blocker():
        gate.wait(10)

    def job():
        ran.append("job")

    with concurrent.futures.ThreadPoolExecutor(1) as ex:
        async def waiter(loop):
            await loop.run_in_executor(ex, job)

        async def main():
            loop = aio.get_running_loop()
            first = loop.run_in_executor(ex, blocker)
            t = aio.create_task(waiter(loop))
            await aio.sleep(0.01)
            t.cancel()
            try:
                await t
            except aio.CancelledError:
                pass
            gate.set()
            await first
            return t.cancelled()
        assert aio.run(main()) is True
    assert ran == []


@on_both()
def test_set_default_executor_is_used_by_run_in_executor_none(aio):
    ex = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="dflt")

    async def main():
        loop = aio.get_running_loop()
        loop.set_default_executor(ex)
        return (await loop.run_in_executor(None, lambda: threading.current_thread().name))[:4]
    try:
        assert aio.run(main()) == "dflt"
    finally:
        ex.shutdown()


@on_both()
def test_set_default_executor_refuses_other_executors(aio):
    if aio is cpython_asyncio and not PY311:
        return   # 3.10's asyncio only warns
    loop = aio.new_event_loop()
    try:
        with pytest.raises(TypeError):
            loop.set_default_executor(concurrent.futures.ProcessPoolExecutor(1))
    finally:
        loop.close()


def test_close_shuts_the_default_executor_down():
    import uasyncio.v3 as v3
    loop = v3.new_event_loop()
    names = []

    async def main():
        names.append(await loop.run_in_executor(None, lambda: threading.current_thread().name))
    loop.run_until_complete(main())
    loop.close()
    assert names[0].startswith("asyncio")
    # The workers end: the executor was shut down.
    deadline = time.monotonic() + 10
    while any(t.name.startswith("asyncio") for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not any(t.name.startswith("asyncio") for t in threading.enumerate())
    v3.new_event_loop()


def test_run_until_complete_with_no_task_waits_for_a_thread():
    import uasyncio.v3 as v3
    loop = v3.new_event_loop()
    try:
        t = v3.create_task(v3.to_thread(time.sleep, 0.05))
        v3.run_until_complete()   # returns once no task can be woken: not while the thread runs
        assert t.done() and t.result() is None
    finally:
        loop.close()
        v3.new_event_loop()


@on_both("to_thread")
def test_to_thread_passes_args_and_kwargs_and_the_context(aio):
    var = contextvars.ContextVar("var", default="unset")

    def work(a, b=0):
        return a + b, var.get(), threading.current_thread() is threading.main_thread()

    async def main():
        var.set("set in the task")
        one = await aio.to_thread(work, 1, b=2)
        t = aio.create_task(aio.to_thread(work, 3))
        two = await aio.gather(t, aio.to_thread(work, 4, b=4))
        return one, two
    assert aio.run(main()) == ((3, "set in the task", False),
                               [(3, "set in the task", False), (8, "set in the task", False)])


@on_both()
def test_wrap_future_awaits_a_concurrent_future(aio):
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        async def main():
            ok = await aio.wrap_future(ex.submit(lambda: "value"))
            try:
                await aio.wrap_future(ex.submit(lambda: 1 / 0))
            except ZeroDivisionError:
                err = "ZeroDivisionError"
            cf = concurrent.futures.Future()
            cf.cancel()
            try:
                await aio.wrap_future(cf)
            except aio.CancelledError:
                cancelled = True
            cf2 = concurrent.futures.Future()
            w = aio.wrap_future(cf2)
            threading.Timer(0.01, cf2.set_result, ("later",)).start()
            return ok, err, cancelled, await w, aio.wrap_future(w) is w
        assert aio.run(main()) == ("value", "ZeroDivisionError", True, "later", True)


@on_both(since=(99,))   # CPython asserts (AssertionError)
def test_wrap_future_refuses_other_objects(aio):
    async def main():
        with pytest.raises(TypeError):
            aio.wrap_future(42)
        return "ok"
    assert aio.run(main()) == "ok"


@on_both()
def test_cancelling_a_wrapped_future_cancels_it(aio):
    async def main():
        cf = concurrent.futures.Future()
        w = aio.wrap_future(cf)
        await aio.sleep(0)
        w.cancel()
        try:
            await w
        except aio.CancelledError:
            pass
        await aio.sleep(0)   # CPython passes the cancel on in a callback
        return cf.cancelled(), w.cancelled()
    assert aio.run(main()) == (True, True)


# ---- 2. tasks -------------------------------------------------------------------------


@on_both()
def test_ensure_future_makes_a_task_of_a_coroutine_and_keeps_a_task(aio):
    class Awaitable:
        def __await__(self):
            yield from aio.sleep(0).__await__()
            return "awaited"

    async def value():
        return "coro"

    async def main():
        t = aio.ensure_future(value())
        same = aio.ensure_future(t) is t
        a = aio.ensure_future(Awaitable())
        return isinstance(t, aio.Task), same, isinstance(a, aio.Task), await t, await a
    assert aio.run(main()) == (True, True, True, "coro", "awaited")


@on_both()
def test_ensure_future_refuses_what_is_not_awaitable(aio):
    async def main():
        with pytest.raises(TypeError):
            aio.ensure_future(42)
        return "ok"
    assert aio.run(main()) == "ok"


@on_both()
def test_iscoroutine_and_iscoroutinefunction(aio):
    async def coro_fn():
        pass

    def plain():
        pass
    c = coro_fn()
    try:
        assert [aio.iscoroutine(c), aio.iscoroutine(coro_fn), aio.iscoroutine(42)] == [True, False, False]
        assert [aio.iscoroutinefunction(coro_fn), aio.iscoroutinefunction(plain),
                aio.iscoroutinefunction(c)] == [True, False, False]
    finally:
        c.close()


def test_iscoroutine_counts_generators_the_loop_runs_as_coroutines():
    import uasyncio.v3 as v3

    def gen():
        yield
    assert v3.iscoroutine(gen())


@on_both()
def test_all_tasks_gives_the_tasks_not_done(aio):
    async def child():
        await aio.sleep(0.01)

    async def quick():
        pass

    async def main():
        t1 = aio.create_task(child())
        t2 = aio.create_task(quick())
        await aio.sleep(0)
        tasks = aio.all_tasks()
        await t1
        return tasks == {aio.current_task(), t1}, aio.all_tasks() == {aio.current_task()}, t2.done()
    assert aio.run(main()) == (True, True, True)


@on_both()
def test_all_tasks_outside_a_loop_raises_runtimeerror(aio):
    with pytest.raises(RuntimeError):
        aio.all_tasks()


@on_both()
def test_task_names(aio):
    async def child():
        pass

    async def main():
        t1 = aio.create_task(child(), name="worker")
        t2 = aio.get_running_loop().create_task(child(), name=7)
        t3 = aio.create_task(child())
        default = t3.get_name()
        t3.set_name(("a", 1))
        out = t1.get_name(), t2.get_name(), t3.get_name(), bool(re.fullmatch(r"Task-\d+", default))
        await aio.gather(t1, t2, t3)
        return out
    assert aio.run(main()) == ("worker", "7", "('a', 1)", True)


def test_default_task_names_are_distinct():
    import uasyncio.v3 as v3

    async def child():
        pass

    async def main():
        ts = [v3.create_task(child()) for _ in range(3)]
        names = [t.get_name() for t in ts] + [ts[0].get_name()]
        await v3.gather(*ts)
        return names
    names = v3.run(main())
    assert len(set(names[:3])) == 3 and names[3] == names[0]


def test_create_task_refuses_unknown_keywords():
    import uasyncio.v3 as v3

    async def child():
        pass
    c = child()
    with pytest.raises(TypeError):
        v3.create_task(c, colour="blue")
    c.close()


# ---- 4. structured concurrency -----------------------------------------------------------


@on_both("timeout")
def test_timeout_cancels_the_block_and_raises_timeouterror(aio):
    async def main():
        out = []
        try:
            async with aio.timeout(0.02) as cm:
                out.append(cm.expired())
                await aio.sleep(10)
        except caught_timeout(aio) as e:
            out.append((type(e.__context__).__name__, cm.expired()))
        async with aio.timeout(10) as cm2:
            await aio.sleep(0)
        out.append(cm2.expired())
        return out
    assert aio.run(main()) == [False, ("CancelledError", True), False]


@on_both("timeout")
def test_timeout_none_reschedule_and_when(aio):
    async def main():
        out = []
        async with aio.timeout(None) as cm:
            out.append(cm.when())
            loop = aio.get_running_loop()
            unit = 1 if aio is cpython_asyncio else 1000   # ours: loop.time() counts ms
            cm.reschedule(loop.time() + 10 * unit)
            out.append(cm.when() > loop.time())
            cm.reschedule(None)
            await aio.sleep(0.01)
        out.append(cm.expired())
        try:
            async with aio.timeout(10) as cm:
                cm.reschedule(aio.get_running_loop().time())
                await aio.sleep(10)
        except caught_timeout(aio):
            out.append("expired at once")
        return out
    assert aio.run(main()) == [None, True, False, "expired at once"]


@on_both("timeout_at")
def test_timeout_at_a_deadline_in_loop_time(aio):
    async def main():
        loop = aio.get_running_loop()
        unit = 1 if aio is cpython_asyncio else 1000
        try:
            async with aio.timeout_at(loop.time() + 0.02 * unit):
                await aio.sleep(10)
        except caught_timeout(aio):
            return "timed out"
    assert aio.run(main()) == "timed out"


@on_both("timeout", since=(3, 12))   # 3.11 asserts, and lets one enter twice
def test_timeout_misuse_raises_runtimeerror(aio):
    async def main():
        out = []
        cm = aio.timeout(1)
        try:
            cm.reschedule(None)
        except RuntimeError:
            out.append("not entered")
        async with cm:
            pass
        try:
            async with cm:
                pass
        except RuntimeError:
            out.append("entered twice")
        try:
            cm.reschedule(None)
        except RuntimeError:
            out.append("finished")
        return out
    assert aio.run(main()) == ["not entered", "entered twice", "finished"]


@on_both("timeout")
def test_timeout_caught_inside_the_block_is_no_error(aio):
    async def main():
        async with aio.timeout(0.01) as cm:
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                pass
        return cm.expired()
    assert aio.run(main()) is True


@on_both("timeout")
def test_a_cancel_from_outside_goes_through_a_timeout(aio):
    async def inner(started):
        async with aio.timeout(10):
            started.set()
            await aio.sleep(10)

    async def main():
        started = aio.Event()
        t = aio.create_task(inner(started))
        await started.wait()
        t.cancel()
        try:
            await t
        except aio.CancelledError:
            return "cancelled", t.cancelled()
    assert aio.run(main()) == ("cancelled", True)


@on_both("timeout")
def test_nested_timeouts_the_inner_one_expires(aio):
    async def main():
        async with aio.timeout(10) as outer:
            try:
                async with aio.timeout(0.01) as inner:
                    await aio.sleep(10)
            except caught_timeout(aio):
                pass
        return outer.expired(), inner.expired()
    assert aio.run(main()) == (False, True)


@on_both("timeout", since=(3, 11))
def test_a_cancel_already_on_its_way_when_the_time_is_up_goes_on(aio):
    async def canceller(task):
        await aio.sleep(0.02)
        task.cancel()

    async def block(out):
        helper = aio.create_task(canceller(aio.current_task()))
        await aio.sleep(0)   # the helper sleeps first: its deadline comes first
        try:
            async with aio.timeout(0.02) as cm:
                await aio.sleep(10)
        except aio.CancelledError:
            out.append(("cancelled", cm.expired()))
            raise
        finally:
            await helper

    async def main():
        out = []
        t = aio.create_task(block(out))
        try:
            await t
        except aio.CancelledError:
            out.append(t.cancelled())
        return out
    assert aio.run(main()) == [("cancelled", True), True]


@on_both("timeout", "TaskGroup")
def test_timeout_around_a_taskgroup_waiting_for_its_tasks(aio):
    async def slow(out):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            out.append("child cancelled")
            raise

    async def main():
        out = []
        try:
            async with aio.timeout(0.02):
                async with aio.TaskGroup() as tg:
                    tg.create_task(slow(out))
                    tg.create_task(slow(out))
        except caught_timeout(aio):
            out.append("timed out")
        return out
    assert aio.run(main()) == ["child cancelled", "child cancelled", "timed out"]


def test_timeout_on_the_virtual_clock_takes_no_time():
    import uasyncio.v3 as v3
    loop = v3.new_event_loop(virtual_clock=True)

    async def main():
        try:
            async with v3.timeout(3600):
                await v3.sleep(7200)
        except TimeoutError:
            return loop.time()
    try:
        t0 = time.monotonic()
        assert loop.run_until_complete(main()) == 3600 * 1000
        assert time.monotonic() - t0 < 60   # an hour of virtual time, not of real time
    finally:
        loop.close()
        v3.new_event_loop()


def test_an_exited_timeout_leaves_no_timer_behind():
    import uasyncio.v3 as v3
    loop = v3.new_event_loop(virtual_clock=True)

    async def main():
        for _ in range(3):
            async with v3.timeout(3600) as cm:
                await v3.sleep(1)
            cm2 = v3.timeout(7200)
            async with cm2:
                cm2.reschedule(None)
    try:
        loop.run_until_complete(main())
        # An armed timer would hold the virtual clock: none is left.
        assert loop.time() == 3000
        assert "timers=0" in repr(loop)
    finally:
        loop.close()
        v3.new_event_loop()


@on_both("TaskGroup")
def test_taskgroup_waits_for_every_task(aio):
    async def child(n, out):
        await aio.sleep(n / 1000)
        out.append(n)
        return n

    async def main():
        out = []
        async with aio.TaskGroup() as tg:
            ts = [tg.create_task(child(n, out)) for n in (3, 1, 2)]
            named = tg.create_task(child(0, out), name="zero")
        return out, [t.result() for t in ts], named.get_name()
    assert aio.run(main()) == ([0, 1, 2, 3], [3, 1, 2], "zero")


@on_both("TaskGroup")
def test_taskgroup_first_failure_cancels_the_rest_and_the_block(aio):
    async def fail(n):
        await aio.sleep(0.01)
        raise ValueError(n)

    async def slow(out):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            out.append("slow cancelled")
            raise

    async def main():
        out = []
        try:
            async with aio.TaskGroup() as tg:
                tg.create_task(fail(1))
                s = tg.create_task(slow(out))
                try:
                    await aio.sleep(10)
                except aio.CancelledError:
                    out.append("block cancelled")
                    raise
        except BaseException as eg:   # noqa: B902 - ExceptionGroup, not a builtin name on 3.10
            out.append((type(eg).__name__, [repr(e) for e in eg.exceptions]))
        out.append(s.cancelled())
        return out
    assert sorted(aio.run(main())[:2]) == ["block cancelled", "slow cancelled"]
    assert aio.run(main())[2:] == [("ExceptionGroup", ["ValueError(1)"]), True]


@on_both("TaskGroup")
def test_taskgroup_error_in_the_block_cancels_the_tasks(aio):
    async def slow():
        await aio.sleep(10)

    async def main():
        try:
            async with aio.TaskGroup() as tg:
                t = tg.create_task(slow())
                await aio.sleep(0)
                raise KeyError("body")
        except BaseException as eg:   # noqa: B902
            return type(eg).__name__, [repr(e) for e in eg.exceptions], t.cancelled()
    assert aio.run(main()) == ("ExceptionGroup", ["KeyError('body')"], True)


@on_both("TaskGroup")
def test_taskgroup_several_failures_are_all_raised(aio):
    async def fail(n):
        await aio.sleep(0)
        raise ValueError(n)

    async def main():
        try:
            async with aio.TaskGroup() as tg:
                for n in range(3):
                    tg.create_task(fail(n))
        except BaseException as eg:   # noqa: B902
            return sorted(e.args[0] for e in eg.exceptions)
    assert aio.run(main()) == [0, 1, 2]


@on_both("TaskGroup")
def test_taskgroup_parent_cancelled_from_outside_propagates_cancellederror(aio):
    async def child(out):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            out.append("child cancelled")
            raise

    async def parent(out, started):
        async with aio.TaskGroup() as tg:
            tg.create_task(child(out))
            started.set()
            await aio.sleep(10)

    async def main():
        out, started = [], aio.Event()
        t = aio.create_task(parent(out, started))
        await started.wait()
        t.cancel()
        try:
            await t
        except aio.CancelledError:
            out.append("parent cancelled")
        return out, t.cancelled()
    assert aio.run(main()) == (["child cancelled", "parent cancelled"], True)


@on_both("TaskGroup")
def test_taskgroup_parent_cancelled_while_exiting(aio):
    async def child(out):
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            out.append("child cancelled")
            raise

    async def parent(out):
        async with aio.TaskGroup() as tg:
            tg.create_task(child(out))

    async def main():
        out = []
        t = aio.create_task(parent(out))
        await aio.sleep(0.01)
        t.cancel()
        try:
            await t
        except aio.CancelledError:
            out.append("parent cancelled")
        return out
    assert aio.run(main()) == ["child cancelled", "parent cancelled"]


@on_both("TaskGroup")
def test_taskgroup_misuse_raises_runtimeerror(aio):
    async def child():
        pass

    async def main():
        out = []
        tg = aio.TaskGroup()
        c = child()
        try:
            tg.create_task(c)
        except RuntimeError:
            out.append("not entered")
        c.close()
        async with tg:
            pass
        c = child()
        try:
            tg.create_task(c)
        except RuntimeError:
            out.append("finished")
        c.close()
        try:
            async with tg:
                pass
        except RuntimeError:
            out.append("entered twice")
        return out
    assert aio.run(main()) == ["not entered", "finished", "entered twice"]


@on_both()
def test_shield_keeps_the_inner_task_running(aio):
    async def inner(out):
        await aio.sleep(0.02)
        out.append("inner done")
        return "value"

    async def outer(t):
        return await aio.shield(t)

    async def main():
        out = []
        t = aio.create_task(inner(out))
        o = aio.create_task(outer(t))
        await aio.sleep(0.005)
        o.cancel()
        try:
            await o
        except aio.CancelledError:
            out.append("outer cancelled")
        out.append(await t)
        done = aio.create_task(inner(out))
        await done
        out.append(aio.shield(done) is done)
        return out
    assert aio.run(main()) == ["outer cancelled", "inner done", "value", "inner done", True]


@on_both()
def test_wait_for_a_shielded_task_times_out_and_the_task_goes_on(aio):
    async def inner():
        await aio.sleep(0.03)
        return "value"

    async def main():
        t = aio.create_task(inner())
        try:
            await aio.wait_for(aio.shield(t), 0.005)
        except aio.TimeoutError:
            timed_out = True
        return timed_out, t.done(), await t
    assert aio.run(main()) == (True, False, "value")


@on_both()
def test_wait_return_when(aio):
    async def val(ms, fail=False):
        await aio.sleep(ms / 1000)
        if fail:
            raise ValueError(ms)
        return ms

    async def main():
        ts = [aio.create_task(val(ms)) for ms in (30, 10, 20)]
        done, pending = await aio.wait(ts, return_when=aio.FIRST_COMPLETED)
        first = sorted(t.result() for t in done), len(pending)
        fs = [aio.create_task(val(5, fail=True)), aio.create_task(val(50))]
        done2, pending2 = await aio.wait(fs, return_when=aio.FIRST_EXCEPTION)
        second = [type(t.exception()).__name__ for t in done2], len(pending2)
        done3, pending3 = await aio.wait(ts + fs)
        third = len(done3), len(pending3), isinstance(done3, set)
        return first, second, third
    assert aio.run(main()) == (([10], 2), (["ValueError"], 1), (5, 0, True))


@on_both()
def test_wait_with_a_timeout_gives_the_pending_ones(aio):
    async def val(ms):
        await aio.sleep(ms / 1000)
        return ms

    async def main():
        ts = [aio.create_task(val(ms)) for ms in (5, 200)]
        done, pending = await aio.wait(ts, timeout=0.05)
        out = [t.result() for t in done], len(pending)
        for t in pending:
            t.cancel()
        await aio.wait(pending)
        return out, all(t.done() for t in ts)
    assert aio.run(main()) == (([5], 1), True)


@on_both()
def test_wait_refuses_bad_arguments(aio):
    async def coro():
        pass

    async def main():
        out = []
        t = aio.create_task(coro())
        for args, kw in (((set(),), {}), (([t],), {"return_when": "SOMETIME"})):
            try:
                await aio.wait(*args, **kw)
            except ValueError:
                out.append("ValueError")
        if PY311 or aio is not cpython_asyncio:   # 3.10's asyncio only warns
            c = coro()
            try:
                await aio.wait([c])
            except TypeError:
                out.append("TypeError")
            c.close()
        else:
            out.append("TypeError")
        await t
        return out
    assert aio.run(main()) == ["ValueError", "ValueError", "TypeError"]


@on_both()
def test_as_completed_gives_results_in_the_order_they_end(aio):
    async def val(ms, fail=False):
        await aio.sleep(ms / 1000)
        if fail:
            raise ValueError(ms)
        return ms

    async def main():
        out = []
        for aw in aio.as_completed([val(30), val(10), val(20, fail=True)]):
            try:
                out.append(await aw)
            except ValueError as e:
                out.append(("ValueError", e.args[0]))
        t = aio.create_task(val(5))
        out.append([await aw for aw in aio.as_completed([t])])
        return out
    assert aio.run(main()) == [10, ("ValueError", 20), 30, [5]]


@on_both()
def test_as_completed_timeout(aio):
    async def val(ms):
        await aio.sleep(ms / 1000)
        return ms

    async def main():
        out = []
        slow = aio.create_task(val(500))
        try:
            for aw in aio.as_completed([val(5), slow], timeout=0.05):
                out.append(await aw)
        except caught_timeout(aio) if PY311 else aio.TimeoutError:
            out.append("timed out")
        slow.cancel()
        await aio.wait([slow])
        return out
    assert aio.run(main()) == [5, "timed out"]


def test_as_completed_as_an_async_iterator_gives_the_tasks():
    import uasyncio.v3 as v3

    async def val(ms):
        await v3.sleep(ms / 1000)
        return ms

    async def main():
        return [t.result() async for t in v3.as_completed([val(20), val(10)])]
    assert v3.run(main()) == [10, 20]


# ---- 3. servers and connections ----------------------------------------------------------


def echo_line(aio):
    async def handle(reader, writer):
        line = await reader.readline()
        writer.write(line.upper())
        await writer.drain()
        writer.close()
        await writer.wait_closed()
    return handle


async def ask(aio, port, line=b"hi\n", **kw):
    reader, writer = await aio.open_connection("127.0.0.1", port, **kw)
    writer.write(line)
    await writer.drain()
    answer = await reader.read(-1)
    writer.close()
    await writer.wait_closed()
    return answer


@on_both()
def test_start_server_not_serving_until_start_serving(aio):
    async def main():
        out = []
        server = await aio.start_server(echo_line(aio), "127.0.0.1", 0, start_serving=False)
        port = server.sockets[0].getsockname()[1]
        out.append(server.is_serving())
        try:
            await ask(aio, port)
        except OSError:
            out.append("refused")
        await server.start_serving()
        out.append(server.is_serving())
        out.append(await ask(aio, port))
        server.close()
        await server.wait_closed()
        out.append((server.is_serving(), server.sockets))
        return out
    assert aio.run(main()) == [False, "refused", True, b"HI\n", (False, ())]


@on_both()
def test_serve_forever_ends_with_close_from_another_task(aio):
    async def main():
        server = await aio.start_server(echo_line(aio), "127.0.0.1", 0, start_serving=False,
                                        backlog=10, reuse_address=True, limit=1024)
        port = server.sockets[0].getsockname()[1]
        t = aio.create_task(server.serve_forever())
        await aio.sleep(0)
        answer = await ask(aio, port)
        serving = server.is_serving()
        server.close()
        try:
            await t
        except aio.CancelledError:
            pass
        return answer, serving, t.cancelled(), server.is_serving()
    assert aio.run(main()) == (b"HI\n", True, True, False)


@on_both()
def test_cancelling_serve_forever_closes_the_server(aio):
    async def main():
        server = await aio.start_server(echo_line(aio), "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        t = aio.create_task(server.serve_forever())
        await aio.sleep(0)
        t.cancel()
        try:
            await t
        except aio.CancelledError:
            pass
        try:
            await ask(aio, port)
        except OSError:
            return "refused", server.is_serving()
    assert aio.run(main()) == ("refused", False)


@on_both()
def test_async_with_server_closes_it(aio):
    async def main():
        async with await aio.start_server(echo_line(aio), "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            answer = await ask(aio, port, b"x\n")
        return answer, server.is_serving()
    assert aio.run(main()) == (b"X\n", False)


@on_both()
def test_start_server_on_all_interfaces_and_with_reuse_port(aio):
    async def main():
        s1 = await aio.start_server(echo_line(aio), None, 0, reuse_port=True)
        port = s1.sockets[0].getsockname()[1]
        s2 = await aio.start_server(echo_line(aio), "127.0.0.1", port, reuse_port=True)
        answer = await ask(aio, port)
        n = len(s1.sockets) >= 1
        for s in (s1, s2):
            s.close()
            await s.wait_closed()
        return answer, n
    assert aio.run(main()) == (b"HI\n", True)


@on_both()
def test_start_server_with_a_socket_of_ones_own(aio):
    import socket
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    port = lsock.getsockname()[1]

    async def main():
        server = await aio.start_server(echo_line(aio), sock=lsock)
        answer = await ask(aio, port)
        server.close()
        await server.wait_closed()
        return answer
    assert aio.run(main()) == b"HI\n"


@on_both()
def test_open_connection_limit_refuses_a_longer_line(aio):
    async def handle(reader, writer):
        writer.write(b"x" * 100 + b"\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    async def main():
        server = await aio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await aio.open_connection("127.0.0.1", port, limit=10)
        try:
            await reader.readline()
        except ValueError:
            out = "ValueError"
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
        return out
    assert aio.run(main()) == "ValueError"


def test_exceptiongroup_of_python_3_10_without_the_backport(tmp_path):
    # The small classes uasyncio.v3._exceptiongroup defines when neither the
    # builtin nor the backport is there (imported with the backport hidden).
    code = """
import sys
sys.modules["exceptiongroup"] = None
import uasyncio.v3._exceptiongroup as m
eg = m.BaseExceptionGroup("msg", [ValueError(1), KeyError(2)])
base = m.BaseExceptionGroup("msg", [ValueError(1), KeyboardInterrupt()])
match, rest = eg.split(ValueError)
print(type(eg).__name__, isinstance(eg, Exception), type(base).__name__, isinstance(base, Exception),
      eg.message, [type(e).__name__ for e in match.exceptions], [type(e).__name__ for e in rest.exceptions],
      eg.subgroup(Exception) is eg, eg.subgroup(OSError), str(eg))
"""
    import subprocess
    from conftest import PKG_DIR
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=PKG_DIR), cwd=str(tmp_path))   # not the tree's own package
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["ExceptionGroup", "True", "BaseExceptionGroup", "False", "msg", "['ValueError']",
                                "['KeyError']", "True", "None", "msg", "(2", "sub-exceptions)"]
