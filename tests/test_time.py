"""Wrap-around ticks, timers across the wrap, and sleeping when idle."""
import time

import pytest
from hypothesis import given, strategies as st

import uasyncio
from conftest import FakeClockLoop

PERIOD = uasyncio.TICKS_PERIOD
HALF = PERIOD // 2
ticks = st.integers(min_value=0, max_value=PERIOD - 1)
deltas = st.integers(min_value=-HALF + 1, max_value=HALF - 1)


def test_period_is_two_to_the_thirty():
    assert PERIOD == 2 ** 30
    assert uasyncio.TICKS_MAX_DELAY == HALF - 1


@given(ticks, deltas)
def test_ticks_diff_inverts_ticks_add(t, d):
    assert uasyncio.ticks_diff(uasyncio.ticks_add(t, d), t) == d
    assert uasyncio.ticks_diff(t, uasyncio.ticks_add(t, d)) == -d


@given(ticks, deltas)
def test_ticks_add_stays_in_the_period(t, d):
    assert 0 <= uasyncio.ticks_add(t, d) < PERIOD


@given(ticks, ticks)
def test_ticks_diff_is_in_the_half_open_window(a, b):
    assert -HALF <= uasyncio.ticks_diff(a, b) < HALF


def test_ticks_across_the_wrap():
    assert uasyncio.ticks_add(PERIOD - 1, 1) == 0
    assert uasyncio.ticks_diff(0, PERIOD - 1) == 1
    assert uasyncio.ticks_diff(PERIOD - 1, 0) == -1
    assert uasyncio.ticks_diff(5, PERIOD - 5) == 10


@pytest.mark.parametrize("d", [HALF, -HALF, 2 ** 40])
def test_ticks_add_refuses_an_interval_too_long(d):
    with pytest.raises(OverflowError, match="ticks interval overflow"):
        uasyncio.ticks_add(0, d)


def test_ticks_ms_is_in_the_period_and_moves_forward():
    a = uasyncio.ticks_ms()
    time.sleep(0.01)
    b = uasyncio.ticks_ms()
    assert 0 <= a < PERIOD and 0 <= b < PERIOD
    assert 5 <= uasyncio.ticks_diff(b, a) < 5000
    assert uasyncio.get_event_loop().time() >= 0


@given(st.lists(st.integers(min_value=0, max_value=500), min_size=1, max_size=40),
       st.integers(min_value=0, max_value=400))
def test_timers_fire_in_order_across_the_wrap(delays, below):
    """A clock that starts just below 2**30 wraps while the timers are
    pending: they still fire in deadline order, FIFO among equals, each at
    its own time."""
    lp = FakeClockLoop(start=PERIOD - below)
    fired = []
    for i, d in enumerate(delays):
        lp.call_later_ms(d, lambda i=i, d=d: fired.append((d, i, lp.t)))
    lp.call_later_ms(600, lp.stop)
    lp.run_forever()
    lp.close()
    assert [(d, i) for d, i, _ in fired] == sorted((d, i) for i, d in enumerate(delays))
    for d, _, t in fired:
        assert t == PERIOD - below + d


def test_sleeping_tasks_wake_on_time_across_the_wrap():
    lp = FakeClockLoop(start=PERIOD - 25)
    woke = []

    async def sleeper(ms):
        await uasyncio.sleep_ms(ms)
        woke.append((ms, lp.time()))

    for ms in (50, 10, 30, 20, 40):
        lp.create_task(sleeper(ms))
    lp.run_until_complete(uasyncio.sleep_ms(60))
    lp.close()
    assert woke == [(ms, (PERIOD - 25 + ms) % PERIOD) for ms in (10, 20, 30, 40, 50)]


def test_timer_is_due_exactly_at_its_deadline_not_before():
    lp = FakeClockLoop()
    seen = []
    lp.call_later_ms(100, lambda: seen.append(lp.t))
    lp.call_later_ms(200, lp.stop)
    lp.run_forever()
    lp.close()
    assert seen == [100]
    assert lp.waits[0] == 100


def test_io_completion_does_not_run_timers_early():
    """2.0's own test_full_wait: a callback queued from wait() runs at once,
    the timer still fires at its time."""
    class MockLoop(uasyncio.EventLoop):
        def __init__(self):
            super().__init__()
            self.t = 0
            self.msgs = []

        def time(self):
            return self.t

        def wait(self, delay):
            self.t += 100
            if self.t == 100:
                self.call_soon(lambda: self.msgs.append("first %d" % self.time()))
            if self.t == 1000:
                raise StopIteration

    lp = MockLoop()
    lp.call_later_ms(500, lambda: lp.msgs.append("second %d" % lp.time()))
    with pytest.raises(StopIteration):
        lp.run_forever()
    lp.close()
    assert lp.msgs == ["first 100", "second 500"]


def test_idle_loop_blocks_in_the_poller_instead_of_spinning():
    """A task sleeping 300 ms: the loop calls wait() a handful of times (it
    blocks until the deadline), not once per millisecond."""
    class Counting(uasyncio.PollEventLoop):
        def __init__(self):
            super().__init__()
            self.calls = []

        def wait(self, delay):
            self.calls.append(delay)
            super().wait(delay)

    lp = Counting()
    t0 = time.monotonic()
    cpu0 = time.process_time()
    lp.run_until_complete(uasyncio.sleep(0.3))
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    lp.close()
    assert wall >= 0.29
    assert len(lp.calls) <= 5, lp.calls
    assert lp.calls[0] >= 290
    assert cpu < wall   # it slept; a spinning loop uses the whole wall time


def test_python_clock_override_is_used_only_when_defined():
    class Base(uasyncio.EventLoop):
        pass

    class Fake(uasyncio.EventLoop):
        def time(self):
            return 123

    b, f = Base(), Fake()
    assert abs(uasyncio.ticks_diff(b.time(), uasyncio.ticks_ms())) < 1000
    assert f.time() == 123
    b.close()
    f.close()
