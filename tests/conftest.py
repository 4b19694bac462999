"""Shared test set-up: import the package under test, a fresh loop per
test, and checks that a test leaves no task, timer or fd behind."""
import gc
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# make asan / make refleak point UA_PKG_DIR at their own build of the package.
sys.path.insert(0, os.path.join(ROOT, os.environ.get("UA_PKG_DIR", "")))

import uasyncio  # noqa: E402


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@pytest.fixture
def loop():
    """A new PollEventLoop, closed afterwards; the test must not leak fds."""
    before = open_fds()
    lp = uasyncio.PollEventLoop()
    yield lp
    lp.close()
    del lp
    gc.collect()
    leaked = open_fds() - before
    # Allow descriptors that were already closed again (listdir's own fd).
    leaked = {fd for fd in leaked if os.path.exists("/proc/self/fd/" + fd)}
    assert not leaked, "file descriptors leaked: %s" % sorted(leaked)


class FakeClockLoop(uasyncio.EventLoop):
    """A loop on a virtual clock: wait(delay) advances time instead of
    sleeping, so timer tests are exact and instant."""

    def __init__(self, start=0):
        super().__init__()
        self.t = start
        self.waits = []

    def time(self):
        return self.t % uasyncio.TICKS_PERIOD

    def wait(self, delay):
        self.waits.append(delay)
        if delay < 0:
            raise RuntimeError("fake clock: the loop would block forever")
        self.t += delay


@pytest.fixture
def fake_loop():
    lp = FakeClockLoop()
    yield lp
    lp.close()


# ---- helpers for tests on real sockets ---------------------------------------


def run(loop, coro, secs=30):
    """Run coro to completion on loop, failing with TimeoutError after secs."""

    async def bounded():
        return await uasyncio.wait_for(coro, secs)

    return loop.run_until_complete(bounded())


async def until(cond, secs=20):
    """Let the loop run until cond() is true (bounded)."""
    for _ in range(int(secs * 1000 / 5)):
        if cond():
            return
        await uasyncio.sleep_ms(5)
    raise AssertionError("condition not reached in %s s" % secs)
