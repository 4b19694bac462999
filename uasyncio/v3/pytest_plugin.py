"""pytest plugin: `async def` tests and fixtures on a fresh uasyncio.v3 loop.

    @pytest.mark.uasyncio
    async def test_echo(): ...

    @pytest.mark.uasyncio(virtual_clock=True)
    async def test_a_day_of_schedule(): ...     # sleep(3600) returns at once

Installed, the package registers this module as a pytest plugin (entry point
`pytest11`); from a source tree, `pytest -p uasyncio.v3.pytest_plugin`. It
does nothing for a test that does not ask for it (the marker, or the
`uasyncio_loop` fixture), so other suites and pytest-asyncio (strict mode)
run alongside unchanged.

A marked test gets a new loop (`uasyncio.v3.new_event_loop()`, so it is also
the default one), which the `async def` fixtures it uses (plain ones and
async generators, declared with `@pytest.fixture`) run on too, each as a
task of its own. The test fails if it does not end within `timeout` seconds
on its clock, if it leaves tasks pending, or if an exception reached the
loop's exception handler (a task's exception nobody retrieved, a failing
callback). See docs/v3.md, "Testing with pytest".
"""
import functools
import gc
import inspect
import os
import threading
import traceback

import pytest

__all__ = ["uasyncio_loop"]

MARK = "uasyncio"
OPTIONS = ("virtual_clock", "timeout")
DEFAULT_TIMEOUT = 60.0   # seconds (the ini option uasyncio_timeout)
_RUN = pytest.StashKey()


def pytest_addoption(parser):
    """The ini option uasyncio_timeout."""
    parser.addini("uasyncio_timeout", "seconds a uasyncio test may run when its marker gives no "
                  "timeout; on a virtual clock, the real-time limit (default %g)" % DEFAULT_TIMEOUT,
                  default=str(DEFAULT_TIMEOUT))


def pytest_configure(config):
    """Register the marker (so --strict-markers accepts it)."""
    config.addinivalue_line(
        "markers", "uasyncio(virtual_clock=False, timeout=None): run this async def test on a new "
        "uasyncio.v3 loop (virtual_clock: time jumps to the next timer when every task waits; "
        "timeout: seconds on the test's clock, default %g real)" % DEFAULT_TIMEOUT)


def _options(node):
    """The marker's keyword arguments, the closest marker winning for each."""
    opts = {}
    for mark in node.iter_markers(MARK):
        if mark.args or set(mark.kwargs) - set(OPTIONS):
            pytest.fail("%s: @pytest.mark.uasyncio takes only the keyword arguments %s"
                        % (node.nodeid, ", ".join(OPTIONS)), pytrace=False)
        for k, v in mark.kwargs.items():
            opts.setdefault(k, v)
    return opts


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """A marked test's loop is its first fixture: every other one, async
    fixtures included, is set up on it and torn down before it closes."""
    if item.get_closest_marker(MARK) is None:
        return
    if item.get_closest_marker("asyncio") is not None:
        pytest.fail("%s is marked both uasyncio and asyncio: choose one loop (with pytest-asyncio in "
                    "auto mode every async def test is marked asyncio: use its strict mode)"
                    % item.nodeid, pytrace=False)
    names = getattr(item, "fixturenames", None)
    if names is not None:
        if "uasyncio_loop" in names:
            names.remove("uasyncio_loop")
        names.insert(0, "uasyncio_loop")


@pytest.fixture
def uasyncio_loop(request):
    """The test's uasyncio.v3 loop (also the default loop while it runs),
    with the marker's options; closed after the test's other fixtures, and
    checked then for tasks still pending and exceptions nobody retrieved."""
    run = _Run(request.node)
    request.node.stash[_RUN] = run
    yield run.loop
    run.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """An `async def` fixture a marked test uses runs on the test's loop:
    its function is swapped for a synchronous one for the setup call."""
    func = fixturedef.func
    agen = inspect.isasyncgenfunction(func)
    item = getattr(request, "_pyfuncitem", None) or request.node   # the test it is set up for
    if (not (agen or inspect.iscoroutinefunction(func))
            or not isinstance(item, pytest.Function) or item.get_closest_marker(MARK) is None):
        yield
        return
    if fixturedef.scope != "function":
        pytest.fail("async fixture %r has scope %r: fixtures on the uasyncio loop are function-scoped "
                    "(each test has a loop of its own)" % (fixturedef.argname, fixturedef.scope),
                    pytrace=False)
    request.getfixturevalue("uasyncio_loop")
    run = item.stash[_RUN]
    fixturedef.func = (_agen_fixture if agen else _coro_fixture)(func, fixturedef.argname, run, request)
    try:
        yield
    finally:
        fixturedef.func = func


def _bound(func, request):
    """A fixture defined in a test class, bound to the test's instance."""
    inst = request.instance
    if inst is not None and hasattr(func, "__self__") and isinstance(inst, type(func.__self__)):
        return func.__func__.__get__(inst)
    return func


def _coro_fixture(func, name, run, request):
    def setup(**kwargs):
        __tracebackhide__ = True
        return run.drive(_bound(func, request)(**kwargs), "fixture %r" % name)
    return setup


async def _passes(v3, n):
    # Rounds of the loop, the poller asked between them: sleep(0) puts the
    # task behind everything ready now.
    for _ in range(n):
        await v3.sleep(0)


async def _anext(agen):
    return await agen.__anext__()


def _agen_fixture(func, name, run, request):
    # A generator function: pytest runs the part after the yield at teardown.
    def setup(**kwargs):
        __tracebackhide__ = True
        agen = _bound(func, request)(**kwargs)
        value = run.drive(_anext(agen), "fixture %r" % name, agen)
        run.owners += 1   # it may own tasks the test leaves running
        try:
            yield value
            run.drive(_anext(agen), "teardown of fixture %r" % name, agen)
        except StopAsyncIteration:
            return
        finally:
            run.owners -= 1
        raise ValueError("async fixture %r yields more than once" % name)
    return setup


@pytest.hookimpl(hookwrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """A marked `async def` test runs as a task on its loop (a Hypothesis
    test: each example does)."""
    if pyfuncitem.get_closest_marker(MARK) is None:
        yield
        return
    run = pyfuncitem.stash[_RUN]
    holder, attr = pyfuncitem, "obj"
    hyp = getattr(pyfuncitem.obj, "hypothesis", None)
    if hyp is not None and getattr(pyfuncitem.obj, "is_hypothesis_test", False):
        holder, attr = hyp, "inner_test"
    func = getattr(holder, attr)
    if not inspect.iscoroutinefunction(func):
        yield   # a plain function marked with the rest of its module
        return

    @functools.wraps(func)
    def call(*args, **kwargs):
        __tracebackhide__ = True
        return run.test(func(*args, **kwargs))

    setattr(holder, attr, call)
    try:
        yield
    finally:
        setattr(holder, attr, func)


# ---- one test's loop ---------------------------------------------------------------


class _Run:
    """A test's loop, what reached its exception handler, and how its tasks
    are run, timed and checked."""

    def __init__(self, node):
        from uasyncio import TICKS_PERIOD
        import uasyncio.v3 as v3
        opts = _options(node)
        self.virtual = bool(opts.get("virtual_clock", False))
        self.timeout = opts.get("timeout")
        t = self.timeout
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            pytest.fail("%s: uasyncio timeout must be a number of seconds > 0, not %r"
                        % (node.nodeid, self.timeout), pytrace=False)
        try:
            self.limit = float(node.config.getini("uasyncio_timeout"))
        except ValueError:
            raise pytest.UsageError("uasyncio_timeout must be a number of seconds, not %r"
                                    % node.config.getini("uasyncio_timeout")) from None
        self.max_wait = TICKS_PERIOD // 2 - 1   # the loop's longest single timer, in ms
        self.Task = v3.Task
        self.v3 = v3
        self.loop = v3.new_event_loop(virtual_clock=self.virtual)
        self.handled = []       # contexts the exception handler got
        self.reported = 0       # ... of which already failed a test
        self.named = set()      # pending tasks already named in a failure
        self.failed = False
        self.owners = 0         # async generator fixtures set up and not yet ended
        self.loop.set_exception_handler(lambda loop, context: self.handled.append(context))

    # -- running -----------------------------------------------------------------

    def drive(self, coro, what, origin=None):
        """Run coro as a task on the loop until it ends; its value, or its
        exception. Fails if it does not end in time, saying where it (or
        origin, the async generator it steps) waits. After a failure, the
        checks at teardown are left out: what it left is its consequence."""
        __tracebackhide__ = True
        try:
            return self._drive(coro, what, origin)
        except StopAsyncIteration:
            raise   # an async generator fixture's normal end
        except BaseException:
            self.failed = True
            raise

    def _drive(self, coro, what, origin):
        __tracebackhide__ = True
        loop = self.loop
        task = loop.create_task(coro)
        expired = []

        def expire(how, left_ms=0):
            if task.done() or expired:
                return
            if left_ms > 0:   # longer than one timer can wait
                loop.call_later_ms(min(left_ms, self.max_wait), expire, how, left_ms - self.max_wait)
                return
            expired.append(how)
            loop.stop()

        if self.timeout is not None:
            ms = int(self.timeout * 1000)
            loop.call_later_ms(min(ms, self.max_wait), expire, "timeout", ms - self.max_wait)
        elif self.virtual:
            loop.call_later_ms(self.max_wait, expire, "stuck")
        else:
            loop.call_later(self.limit, expire, "timeout")
        guard = None
        if self.virtual:
            # A task that never waits keeps a virtual clock still: real time.
            def wake():
                try:
                    loop.call_soon_threadsafe(expire, "real")
                except RuntimeError:
                    pass   # the loop was closed meanwhile
            guard = threading.Timer(self.limit, wake)
            guard.daemon = True
            guard.start()
        try:
            value = loop.run_until_complete(task)
        finally:
            if guard is not None:
                guard.cancel()
                guard.join()   # its thread holds wake(), so the task, until it ends
            if expired and task.done():
                loop.run_forever()   # it ended in the pass that queued the stop: take the stop out
        if not task.done():
            pytest.fail(self._timeout_text(what, expired[0] if expired else "stopped", task, origin),
                        pytrace=False)
        return value

    def test(self, coro):
        """Run the test's coroutine; then fail if it left tasks pending or
        an exception reached the exception handler."""
        __tracebackhide__ = True
        before = set(self.pending())   # the fixtures' tasks
        value = self.drive(coro, "the test")
        # With async generator fixtures still to end, the tasks left are
        # checked after them (at teardown): they may be theirs to stop.
        self.check(before if not self.owners else None, "the test")
        return value

    def pending(self):
        # The loop holds every live task and reports them to the collector.
        return [o for o in gc.get_referents(self.loop) if type(o) is self.Task and not o.done()]

    def settle(self):
        """Two passes of the loop, with no time passing: tasks cancelled or
        woken as the test ended take their turn, and the exception of a
        task that ends then reaches the handler (one pass after its end)."""
        self.loop.run_until_complete(_passes(self.v3, 2))

    def check(self, before, when):
        """Fail if an exception reached the handler, or (unless before is
        None) if tasks not in before are left pending."""
        __tracebackhide__ = True
        self.settle()
        errors = self.handled[self.reported:]
        self.reported = len(self.handled)
        left = [] if before is None else [t for t in self.pending() if t not in before and t not in self.named]
        self.named.update(left)
        if left or errors:
            self.failed = True
            pytest.fail(_problems_text(when, left, errors), pytrace=False)

    def close(self):
        """At teardown: what fixtures left too, then close the loop."""
        __tracebackhide__ = True
        try:
            if not self.failed:
                self.check(set(), "the test and its fixtures")
        finally:
            self.loop.close()

    # -- messages ------------------------------------------------------------------

    def _timeout_text(self, what, how, task, origin):
        if how == "stuck":
            head = ("%s did not end: after %.1f days of virtual time every task still waits (for "
                    "something nothing will do?); a longer test says so with timeout="
                    % (what, self.max_wait / 86400e3))
        elif how == "real":
            head = ("%s did not end within %g s of real time (a task that never waits keeps the "
                    "virtual clock still)" % (what, self.limit))
        else:
            head = "%s did not end within %g s%s" % (what, self.timeout or self.limit,
                                                     " of virtual time" if self.virtual else "")
        others = [t for t in self.pending() if t is not task]
        lines = [head, "  it waits at " + _where(origin or task.get_coro())]
        lines += ["  pending: %s" % _describe(t) for t in others]
        return "\n".join(lines)


def _where(coro):
    """Where a coroutine is suspended: the innermost frame of its await
    chain, and what that awaits."""
    if inspect.iscoroutine(coro) and inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
        return "(not started yet)"
    frame, aw = None, coro
    while aw is not None:
        for kind, down in (("cr", "cr_await"), ("ag", "ag_await"), ("gi", "gi_yieldfrom")):
            f = getattr(aw, kind + "_frame", None)
            if f is not None:
                break
        if f is None:
            break
        frame = f
        aw = getattr(aw, down, None)
    if frame is None:
        return repr(coro)   # not a coroutine: an awaitable run as a task
    path = frame.f_code.co_filename
    rel = os.path.relpath(path) if os.path.isabs(path) else path
    text = "%s:%d in %s" % (rel if not rel.startswith("..") else path, frame.f_lineno, frame.f_code.co_name)
    return text + (" on %r" % (aw,) if aw is not None else "")


def _describe(task):
    coro = task.get_coro()
    where = _where(coro)
    return repr(task) if where == repr(coro) else "%r at %s" % (task, where)


def _problems_text(when, left, errors):
    lines = []
    if left:
        lines.append("%s left %d task%s pending:" % (when, len(left), "s" * (len(left) != 1)))
        lines += ["  " + _describe(t) for t in left]
    if errors:
        lines.append("%d exception%s reached the loop's exception handler during %s:"
                     % (len(errors), "s" * (len(errors) != 1), when))
        for ctx in errors:
            lines.append("  %s: %r" % (ctx.get("message"), ctx.get("future")))
            exc = ctx.get("exception")
            if isinstance(exc, BaseException):
                tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
                lines += ["    " + ln for ln in tb.rstrip().splitlines()]
    return "\n".join(lines)
