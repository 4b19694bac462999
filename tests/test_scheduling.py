"""Scheduling: call_soon / call_later / call_at_, create_task, run_forever,
run_until_complete, stop, close, ordering and round-robin fairness."""
import gc
import weakref

import pytest

import uasyncio


def test_call_soon_runs_callbacks_in_order_with_args(fake_loop):
    log = []
    fake_loop.call_soon(log.append, 1)
    fake_loop.call_soon(lambda a, b: log.append(a + b), 2, 3)
    fake_loop.call_soon(log.append, 6)
    fake_loop.stop()
    assert fake_loop.run_forever() == 0
    assert log == [1, 5, 6]


def test_call_soon_with_a_coroutine_ignores_args(fake_loop):
    log = []

    def task(*args):
        log.append(args)
        yield

    fake_loop.call_soon(task(), "ignored")
    fake_loop.run_until_complete(task("main"))
    assert log == [(), ("main",)]


def test_round_robin_each_pass_runs_what_was_queued_at_its_start(fake_loop):
    log = []

    def task(name, n):
        for i in range(n):
            log.append(name)
            yield

    for name in "abc":
        fake_loop.create_task(task(name, 3))
    fake_loop.run_until_complete(task("m", 3))
    assert "".join(log) == "abcmabcmabcm"


def test_new_entries_wait_for_the_next_pass(fake_loop):
    passes = []

    def spawner():
        # A callback scheduled now runs in the next pass, after the wait(0).
        fake_loop.call_soon(lambda: passes.append(len(fake_loop.waits)))
        passes.append(len(fake_loop.waits))
        yield
        yield

    fake_loop.run_until_complete(spawner())
    assert passes == [0, 1]


def test_timers_fire_earliest_first_and_fifo_among_equals(fake_loop):
    log = []
    fake_loop.call_later_ms(30, log.append, "c")
    fake_loop.call_later_ms(10, log.append, "a1")
    fake_loop.call_later_ms(20, log.append, "b")
    fake_loop.call_later_ms(10, log.append, "a2")
    fake_loop.call_later(0.01, log.append, "a3")
    fake_loop.call_at_(10, log.append, ("a4",))
    fake_loop.call_later_ms(40, fake_loop.stop)
    fake_loop.run_forever()
    assert log == ["a1", "a2", "a3", "a4", "b", "c"]


def test_expired_timers_all_move_before_the_pass_runs(fake_loop):
    passes = []

    def task():
        yield 10
        passes.append(("task", len(fake_loop.waits)))

    fake_loop.create_task(task())
    fake_loop.call_later_ms(10, lambda: passes.append(("cb", len(fake_loop.waits))))
    fake_loop.call_later_ms(20, fake_loop.stop)
    fake_loop.run_forever()
    # Both came due in the same wait and ran in the same pass, in push order.
    assert passes == [("cb", 1), ("task", 1)]


def test_call_later_ms_zero_is_call_soon(fake_loop):
    log = []
    fake_loop.call_later_ms(0, log.append, "now")
    fake_loop.stop()
    fake_loop.run_forever()
    assert log == ["now"]
    assert fake_loop.waits == []


def test_wait_gets_the_delay_to_the_earliest_timer(fake_loop):
    fake_loop.call_later_ms(70, lambda: None)
    fake_loop.call_later_ms(25, fake_loop.stop)
    fake_loop.run_forever()
    assert fake_loop.waits[0] == 25


def test_wait_gets_zero_while_tasks_are_runnable(fake_loop):
    def task():
        yield
        yield

    fake_loop.run_until_complete(task())
    assert fake_loop.waits == [0, 0]


def test_wait_gets_minus_one_with_nothing_scheduled():
    from conftest import FakeClockLoop
    lp = FakeClockLoop()

    def parks():
        yield False

    lp.create_task(parks())
    with pytest.raises(RuntimeError, match="block forever"):
        lp.run_forever()
    assert lp.waits == [-1]
    lp.close()


def test_run_until_complete_returns_the_result_and_can_be_called_again(fake_loop):
    async def value(v):
        await uasyncio.sleep_ms(1)
        return v

    assert fake_loop.run_until_complete(value(1)) == 1
    assert fake_loop.run_until_complete(value("two")) == "two"
    assert fake_loop.run_until_complete(value(None)) is None


def test_run_until_complete_of_a_sleep(fake_loop):
    fake_loop.run_until_complete(uasyncio.sleep(1))
    assert fake_loop.time() == 1000


def test_stop_then_run_until_complete_returns_none_and_keeps_the_task(fake_loop):
    log = []

    def main():
        fake_loop.stop()
        yield
        log.append("after stop")
        return "done"

    coro = main()
    assert fake_loop.run_until_complete(coro) is None
    assert log == []
    assert fake_loop.run_until_complete(coro) == "done"
    assert log == ["after stop"]


def test_cur_task_is_the_top_level_coroutine(fake_loop):
    seen = []

    async def inner():
        seen.append(fake_loop.cur_task)

    async def outer():
        await inner()
        seen.append(fake_loop.cur_task)

    coro = outer()
    fake_loop.run_until_complete(coro)
    assert seen == [coro, coro]


def test_create_task_returns_none(fake_loop):
    async def t():
        pass

    assert fake_loop.create_task(t()) is None
    fake_loop.stop()
    fake_loop.run_forever()


def test_a_coroutine_is_queued_once_even_if_scheduled_twice(fake_loop):
    log = []

    def task():
        log.append("run")
        yield

    coro = task()
    fake_loop.create_task(coro)
    fake_loop.call_soon(coro)
    fake_loop.create_task(coro)
    fake_loop.stop()
    fake_loop.run_forever()
    assert log == ["run"]


def test_call_soon_wakes_a_sleeping_task_early(fake_loop):
    woke = []

    def sleeper():
        yield 1000
        woke.append(fake_loop.time())

    coro = sleeper()
    fake_loop.create_task(coro)

    def waker():
        yield 10
        fake_loop.call_soon(coro)
        yield 10

    fake_loop.run_until_complete(waker())
    assert woke == [10]


def test_call_soon_on_the_running_task_requeues_it_after_yield_false(fake_loop):
    log = []

    def task():
        fake_loop.call_soon(fake_loop.cur_task)
        yield False
        log.append("resumed")

    fake_loop.run_until_complete(task())
    assert log == ["resumed"]


def test_call_later_on_the_running_task_then_yield_false(fake_loop):
    def task():
        fake_loop.call_later_ms(300, fake_loop.cur_task)
        yield False
        return fake_loop.time()

    assert fake_loop.run_until_complete(task()) == 300


def test_ensure_future_and_task_schedule_on_the_given_loop(fake_loop):
    log = []

    async def t(name):
        log.append(name)

    c = t("ef")
    assert uasyncio.ensure_future(c, fake_loop) is c
    assert uasyncio.Task(t("task"), loop=fake_loop) is None
    fake_loop.stop()
    fake_loop.run_forever()
    assert log == ["ef", "task"]


def test_get_event_loop_is_one_process_wide_poll_loop():
    a = uasyncio.get_event_loop()
    b = uasyncio.get_event_loop(32, 32)
    assert a is b
    assert isinstance(a, uasyncio.PollEventLoop)
    assert isinstance(a, uasyncio.EventLoop)


def test_get_event_loop_after_close_gives_a_new_loop():
    a = uasyncio.get_event_loop()
    a.close()
    b = uasyncio.get_event_loop()
    assert b is not a
    assert b.run_until_complete(uasyncio.sleep_ms(1)) is None


def test_close_drops_pending_tasks_and_refuses_new_work():
    lp = uasyncio.PollEventLoop()

    async def forever():
        await uasyncio.sleep(1000)

    coro = forever()
    ref = weakref.ref(coro)
    lp.create_task(coro)
    del coro
    lp.run_until_complete(uasyncio.sleep_ms(1))   # it is now asleep
    lp.call_later(5, print)
    lp.close()
    gc.collect()
    assert ref() is None
    with pytest.raises(RuntimeError, match="closed"):
        lp.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        lp.run_forever()
    lp.close()   # twice is harmless


def test_finished_tasks_are_released(fake_loop):
    refs = []

    async def t():
        await uasyncio.sleep_ms(1)

    for _ in range(100):
        c = t()
        refs.append(weakref.ref(c))
        fake_loop.create_task(c)
    del c
    fake_loop.run_until_complete(uasyncio.sleep_ms(5))
    gc.collect()
    assert all(r() is None for r in refs)
    assert "timers=0" in repr(fake_loop)


def test_many_tasks_grow_the_queues(fake_loop):
    done = []

    async def t(i):
        await uasyncio.sleep_ms(i % 7)
        done.append(i)

    lp = uasyncio.EventLoop(runq_len=2, waitq_len=2)
    for i in range(20000):
        lp.create_task(t(i))
    lp.run_until_complete(uasyncio.sleep_ms(20))
    assert sorted(done) == list(range(20000))
    lp.close()


def test_generator_coroutine_decorated_is_awaitable(fake_loop):
    @uasyncio.coroutine
    def gen():
        yield from uasyncio.sleep_ms(3)
        return "gen"

    async def native():
        return await gen()

    assert fake_loop.run_until_complete(native()) == "gen"
    assert fake_loop.time() == 3


def test_coroutine_leaves_async_functions_unchanged():
    async def f():
        pass

    assert uasyncio.coroutine(f) is f


def test_loop_subclass_keeps_attributes_and_its_own_methods():
    class MyLoop(uasyncio.PollEventLoop):
        def __init__(self):
            super().__init__()
            self.extra = 1

    lp = MyLoop()
    assert lp.extra == 1
    assert lp.run_until_complete(uasyncio.sleep_ms(1)) is None
    lp.close()
