"""Shared test set-up: import the package under test (and its pytest
plugin), a fresh loop per test, checks that a test leaves no task, timer or fd behind, programs run
in a fresh interpreter on the package under test, and SIGINT caught."""
import contextlib
import ctypes
import functools
import gc
import os
import signal
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# make asan / make refleak / make pythons point UA_PKG_DIR at their own build
# of the package: the folder it is imported from, here and in child programs.
PKG_DIR = os.path.join(ROOT, os.environ.get("UA_PKG_DIR", ""))
sys.path.insert(0, PKG_DIR)

import uasyncio  # noqa: E402

# The package's own pytest plugin (@pytest.mark.uasyncio), from the package
# under test: the v3 tests use it.
pytest_plugins = ["uasyncio.v3.pytest_plugin"]


def pytest_collection_modifyitems(config, items):
    """UA_TEST_SHUFFLE=SEED runs the tests in an order shuffled by SEED
    (make soak-tests), so a test that leans on another's leftovers shows."""
    seed = os.environ.get("UA_TEST_SHUFFLE")
    if seed:
        import random
        random.Random(seed).shuffle(items)


def open_fds():
    return set(os.listdir("/proc/self/fd"))


@contextlib.contextmanager
def no_fd_leaked():
    """Fails if the block leaves a file descriptor open."""
    before = open_fds()
    yield
    # Allow descriptors that were already closed again (listdir's own fd).
    leaked = {fd for fd in open_fds() - before if os.path.exists("/proc/self/fd/" + fd)}
    assert not leaked, "file descriptors leaked: %s" % sorted(leaked)


@pytest.fixture
def loop():
    """A new PollEventLoop, closed afterwards; the test must not leak fds."""
    with no_fd_leaked():
        lp = uasyncio.PollEventLoop()
        yield lp
        lp.close()
        del lp
        gc.collect()


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


# ---- programs of their own -----------------------------------------------------


def run_program(tmp_path, source, *args, runner=(), timeout=60):
    """Write source (dedented) to tmp_path/prog.py and run it, with args, in
    a fresh interpreter (`runner`: e.g. ("-m", "uasyncio.v3")) that imports
    the package under test; returns the CompletedProcess (text)."""
    prog = tmp_path / "prog.py"
    prog.write_text(textwrap.dedent(source))
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    return subprocess.run([sys.executable, *runner, str(prog), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=str(tmp_path))


# ---- signals -------------------------------------------------------------------

# kill() through ctypes: the signal arrives while C code runs, with no
# bytecode after it that would act on it (os.kill checks for signals itself).
libc_kill = ctypes.CDLL(None, use_errno=True).kill


@contextlib.contextmanager
def sigint_raises(exc_type):
    """Within the block SIGINT raises exc_type (as Ctrl-C raises
    KeyboardInterrupt); yields a callable that sends SIGINT to this process."""
    def handler(signum, frame):
        raise exc_type()

    old = signal.signal(signal.SIGINT, handler)
    try:
        # partial: no bytecode runs between the kill and the loop.
        yield functools.partial(libc_kill, os.getpid(), signal.SIGINT)
    finally:
        signal.signal(signal.SIGINT, old)
