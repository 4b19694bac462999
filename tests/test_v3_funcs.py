"""uasyncio.v3: wait_for, wait_for_ms and gather, with every cancellation path.
Tests of ours alone run as marked async tests (the pytest plugin) or with
`aio`; `both` runs one on CPython's asyncio too."""
import pytest

import uasyncio.v3 as v3
from v3util import aio, both, run_both  # noqa: F401 - fixtures


async def value_after(aio, delay, value):
    await aio.sleep(delay)
    return value


async def fail_after(aio, delay, exc):
    await aio.sleep(delay)
    raise exc


# ---- wait_for ----------------------------------------------------------------

def test_wait_for_in_time_returns_the_value(both):
    async def main():
        return await both.wait_for(value_after(both, 0.001, "v"), 5)
    assert both.run(main()) == "v"


def test_wait_for_times_out_and_cancels(both):
    out = []

    async def slow():
        try:
            await both.sleep(10)
        except both.CancelledError:
            out.append("inner cancelled")
            raise

    async def main():
        try:
            await both.wait_for(slow(), 0.01)
        except both.TimeoutError:
            out.append("timeout")
        return out
    assert both.run(main()) == ["inner cancelled", "timeout"]


def test_wait_for_propagates_the_exception(both):
    async def main():
        with pytest.raises(KeyError):
            await both.wait_for(fail_after(both, 0, KeyError("k")), 1)
        return 1
    assert both.run(main()) == 1


def test_wait_for_none_is_no_timeout(both):
    async def main():
        return await both.wait_for(value_after(both, 0.01, 3), None)
    assert both.run(main()) == 3


def test_wait_for_a_task(both):
    async def main():
        t = both.create_task(value_after(both, 0, "t"))
        return await both.wait_for(t, 1)
    assert both.run(main()) == "t"


def test_a_task_whose_exception_wait_for_raised_raises_it_again(both):
    """Awaited or gathered again after wait_for gave its exception, a task
    raises it again, as in CPython (MicroPython v1.28 forgets it)."""
    async def main():
        t = both.create_task(fail_after(both, 0, ValueError(3)))
        seen = []
        for wait in (lambda: both.wait_for(t, 1), lambda: t, lambda: both.gather(t)):
            try:
                await wait()
            except ValueError as e:
                seen.append(e)
            await both.sleep(0)
        return seen
    first, *again = both.run(main())
    assert again == [first, first] and first.args == (3,)


@pytest.mark.parametrize("then, cancelled_again", [
    ("sleep", "CancelledError(CancelledError(), None)"),   # it waits on nothing
    ("sleep0", None),        # it runs before the runner ends
    ("wait_for", "CancelledError()"),   # it sleeps in another wait_for, which raises the status
    ("task", None),          # it waits on a task
])
def test_a_wait_for_cancelled_from_elsewhere_still_reports_to_its_waiter(aio, then, cancelled_again):
    """As MicroPython's: the runner of a wait_for cancelled from elsewhere
    still ends when the awaitable does, and cancels the waiter (with its
    outcome) if the waiter then waits on nothing, wherever it is."""
    seen = []

    async def inner():
        await aio.sleep_ms(500)

    async def other():
        await aio.sleep_ms(1000)

    nexts = {"sleep": lambda: aio.sleep_ms(100), "sleep0": lambda: aio.sleep(0),
             "wait_for": lambda: aio.wait_for_ms(aio.Event().wait(), 100),
             "task": lambda: aio.create_task(other())}

    async def waiter():
        try:
            await aio.wait_for(inner(), 1)
        except aio.CancelledError:
            pass
        try:
            await nexts[then]()
        except aio.CancelledError as e:
            seen.append(repr(e))
        return 5

    async def main():
        t = aio.create_task(waiter())
        await aio.sleep_ms(10)
        t.cancel()
        await aio.sleep_ms(300)
        return await t

    loop = aio.new_event_loop(virtual_clock=True)
    try:
        assert loop.run_until_complete(main()) == 5
    finally:
        loop.close()
    assert seen == ([cancelled_again] if cancelled_again else [])


def test_wait_for_times_out_even_if_the_task_returns(aio):
    """The inner task catches the cancellation and returns a value: as on
    MicroPython, wait_for still raises TimeoutError (CPython gives the value)."""
    async def stubborn():
        try:
            await aio.sleep(10)
        except aio.CancelledError:
            return "kept"

    async def main():
        with pytest.raises(aio.TimeoutError):
            await aio.wait_for(stubborn(), 0.01)
        return 1
    assert aio.run(main()) == 1


@pytest.mark.uasyncio
async def test_wait_for_ms():
    with pytest.raises(v3.TimeoutError):
        await v3.wait_for_ms(v3.sleep(10), 5)
    assert await v3.wait_for_ms(value_after(v3, 0, 7), 100) == 7


@pytest.mark.uasyncio
async def test_wait_for_zero_timeout():
    with pytest.raises(v3.TimeoutError):
        await v3.wait_for(v3.sleep(1), 0)


@pytest.mark.uasyncio
async def test_cancelling_the_waiter_cancels_the_inner_task():
    out = []

    async def inner():
        try:
            await v3.sleep(10)
        except v3.CancelledError:
            out.append("inner")
            raise

    async def waiter():
        try:
            await v3.wait_for(inner(), 5)
        except v3.CancelledError:
            out.append("waiter")
            raise

    t = v3.create_task(waiter())
    await v3.sleep(0)
    await v3.sleep(0)
    t.cancel()
    with pytest.raises(v3.CancelledError):
        await t
    await v3.sleep(0)
    assert sorted(out) == ["inner", "waiter"]


def test_cancel_in_wait_for_same_as_asyncio():
    def program(aio, out):
        async def inner():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                out.append("inner cancelled")
                raise

        async def waiter():
            try:
                await aio.wait_for(inner(), 5)
            except aio.CancelledError:
                out.append("waiter cancelled")
                raise

        async def main():
            t = aio.create_task(waiter())
            await aio.sleep(0.01)
            t.cancel()
            try:
                await t
            except aio.CancelledError:
                out.append("main saw it")
            await aio.sleep(0.01)
            return len(out)
        return main()
    a, b = run_both(program)
    assert sorted(map(str, a)) == sorted(map(str, b))


def test_wait_for_rejects_bad_arguments(aio):
    async def main():
        w = aio.wait_for(5, 1)   # as MicroPython: raised when awaited
        with pytest.raises(TypeError, match="coroutine expected"):
            await w
        return 1
    assert aio.run(main()) == 1
    c = value_after(aio, 0, 1)
    with pytest.raises(TypeError):
        aio.wait_for(c, "x")
    c.close()


def test_wait_for_outside_a_task(aio):
    w = aio.wait_for(aio.sleep(0), 1)
    with pytest.raises(RuntimeError):
        w.send(None)


# ---- gather ------------------------------------------------------------------

def test_gather_results_in_order(both):
    async def main():
        return await both.gather(value_after(both, 0.02, "a"), value_after(both, 0.01, "b"),
                                 both.create_task(value_after(both, 0, "c")))
    assert both.run(main()) == ["a", "b", "c"]


def test_gather_nothing(both):
    async def main():
        return await both.gather()
    assert both.run(main()) == []


def test_gather_first_exception_wins(both):
    async def main():
        try:
            await both.gather(value_after(both, 0.01, 1), fail_after(both, 0, ValueError("first")),
                              fail_after(both, 0.005, KeyError("second")))
        except Exception as e:   # noqa: B902
            return type(e).__name__, str(e)
    assert both.run(main()) == ("ValueError", "first")


def test_gather_return_exceptions(both):
    async def main():
        res = await both.gather(value_after(both, 0, 1), fail_after(both, 0, ValueError("v")),
                                return_exceptions=True)
        return res[0], type(res[1]).__name__
    assert both.run(main()) == (1, "ValueError")


def test_gather_of_done_tasks(both):
    async def main():
        t1 = both.create_task(value_after(both, 0, 1))
        t2 = both.create_task(value_after(both, 0, 2))
        await both.sleep(0.01)
        return await both.gather(t1, t2)
    assert both.run(main()) == [1, 2]


def test_cancelling_the_gather_cancels_the_rest(both):
    out = []

    async def child(n):
        try:
            await both.sleep(10)
        except both.CancelledError:
            out.append(n)
            raise

    async def gatherer():
        await both.gather(child(1), child(2))

    async def main():
        t = both.create_task(gatherer())
        await both.sleep(0.01)
        t.cancel()
        try:
            await t
        except both.CancelledError:
            out.append("gather cancelled")
        await both.sleep(0.01)
        return sorted(map(str, out))
    assert both.run(main()) == ["1", "2", "gather cancelled"]


def test_gather_with_a_child_cancelled(both):
    async def main():
        t = both.create_task(value_after(both, 10, 1))
        other = both.create_task(value_after(both, 0.01, 2))

        async def cancel_soon():
            await both.sleep(0.001)
            t.cancel()
        both.create_task(cancel_soon())
        try:
            await both.gather(t, other)
        except both.CancelledError:
            return "cancelled", await other
    assert both.run(main()) == ("cancelled", 2)


def test_gather_rejects_a_non_awaitable(both):
    async def main():
        with pytest.raises(TypeError):
            await both.gather(1)
        return 1
    assert both.run(main()) == 1


def test_gather_a_task_already_awaited_elsewhere_raises(aio):
    async def waiter(t):
        return await t

    async def main():
        t = aio.create_task(value_after(aio, 0.01, 1))
        w = aio.create_task(waiter(t))
        await aio.sleep(0)
        g = aio.gather(t)   # as MicroPython: refused when awaited
        with pytest.raises(RuntimeError, match="can't gather"):
            await g
        return await w
    assert aio.run(main()) == 1


def test_a_task_in_two_gathers_raises(aio):
    async def main():
        t = aio.create_task(value_after(aio, 0.01, 1))
        g = aio.create_task(aio.gather(t))   # a gather takes t when it first runs
        await aio.sleep(0)
        with pytest.raises(RuntimeError, match="can't gather"):
            await aio.gather(t)
        with pytest.raises(RuntimeError, match="can't gather"):
            await aio.gather(value_after(aio, 0, 1), t)
        with pytest.raises(RuntimeError, match="can't wait"):
            await t
        return await g
    assert aio.run(main()) == [1]


def test_a_task_twice_in_one_gather_raises(aio):
    async def main():
        t = aio.create_task(value_after(aio, 0, 1))
        with pytest.raises(RuntimeError, match="can't gather"):
            await aio.gather(t, t)
        return 1
    assert aio.run(main()) == 1


def test_gather_failure_leaves_the_others_running(aio):
    async def main():
        slow = aio.create_task(value_after(aio, 0.01, "slow"))
        with pytest.raises(ValueError):
            await aio.gather(slow, fail_after(aio, 0, ValueError()))
        assert not slow.done()
        return await slow
    assert aio.run(main()) == "slow"


def test_gather_of_gathers(both):
    async def main():
        g1 = both.gather(value_after(both, 0, 1), value_after(both, 0, 2))
        g2 = both.gather(value_after(both, 0, 3))
        return await both.gather(g1, g2)
    assert both.run(main()) == [[1, 2], [3]]


def test_wait_for_cancelled_after_the_task_ended_raises(aio):
    """The inner task ended (its runner woke the waiter with the value) and
    the waiter is cancelled before it runs: as on MicroPython, the cancel
    wins (CPython returns the value)."""
    async def quick():
        await aio.sleep(0)
        return "value"

    async def waiter():
        return await aio.wait_for(quick(), 5)

    async def main():
        t = aio.create_task(waiter())
        await aio.sleep(0)
        await aio.sleep(0)
        t.cancel()
        with pytest.raises(aio.CancelledError):
            await t
        return 1
    assert aio.run(main()) == 1


def test_a_cancelled_gather_cancels_its_tasks_when_it_runs_again(aio):
    """As MicroPython: the tasks queued ahead of the cancelled gathering task
    run first (CPython cancels them at once)."""
    out = []

    async def child(n):
        out.append(("start", n))
        await aio.sleep(0)
        out.append(("end", n))

    async def gatherer():
        try:
            await aio.gather(child(1), child(2))
        except aio.CancelledError:
            out.append("gather cancelled")
            raise

    async def main():
        t = aio.create_task(gatherer())
        await aio.sleep(0)
        await aio.sleep(0)
        t.cancel()
        await aio.sleep(0.01)
        return out
    assert aio.run(main()) == [("start", 1), ("start", 2), ("end", 1), ("end", 2), "gather cancelled"]


def test_a_gather_cancelled_by_one_of_its_own_tasks_cancels_that_one_too(aio):
    """The task running now is cancelled at its next await, as the others
    (MicroPython's order), not refused with "can't cancel self"."""
    out = []
    box = []

    async def child(n):
        await aio.sleep(0)
        if n == 1:
            out.append(("cancel", box[0].cancel()))
            try:
                await aio.sleep(0)
                out.append("child 1 not cancelled")
            except aio.CancelledError:
                out.append("child 1 cancelled")
                raise
        await aio.sleep(0.01)
        out.append(("end", n))

    async def gatherer():
        try:
            await aio.gather(child(1), child(2))
        except aio.CancelledError:
            out.append("gather cancelled")

    async def main():
        box.append(aio.create_task(gatherer()))
        await aio.sleep(0.05)
        return out
    assert aio.run(main()) == [("cancel", True), "gather cancelled", "child 1 cancelled"]
