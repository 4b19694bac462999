"""The exception handler of the 2.0 loop: with one set, an exception that
escapes a task or a callback goes to it and the loop goes on; without one,
2.0 behaviour stays (the exception stops the loop)."""
import pytest

import uasyncio


def test_without_handler_the_exception_stops_the_loop(loop):
    async def bad():
        raise ValueError("stops")

    async def main():
        loop.create_task(bad())
        await uasyncio.sleep_ms(5)
    with pytest.raises(ValueError):
        loop.run_until_complete(main())


def test_with_handler_the_loop_goes_on(loop):
    seen = []

    async def bad():
        raise ValueError("handled")

    async def main():
        loop.create_task(bad())
        loop.call_soon(lambda: 1 / 0)
        await uasyncio.sleep_ms(5)
        return "went on"
    loop.set_exception_handler(lambda lp, ctx: seen.append((lp, ctx["message"], type(ctx["exception"]))))
    assert loop.run_until_complete(main()) == "went on"
    assert (loop, "Unhandled exception in task", ValueError) in seen
    assert (loop, "Exception in callback", ZeroDivisionError) in seen
    assert len(seen) == 2


def test_handler_gets_the_coroutine_as_future(loop):
    seen = []

    async def bad():
        raise ValueError("x")
    c = bad()
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx["future"]))

    async def main():
        loop.create_task(c)
        await uasyncio.sleep_ms(1)
    loop.run_until_complete(main())
    assert seen == [c]


def test_main_coroutine_exception_still_propagates(loop):
    loop.set_exception_handler(lambda lp, ctx: None)

    async def main():
        raise KeyError("main")
    with pytest.raises(KeyError):
        loop.run_until_complete(main())


def test_cancelled_task_does_not_reach_the_handler(loop):
    seen = []

    async def sleeper():
        await uasyncio.sleep(10)

    async def main():
        c = sleeper()
        loop.create_task(c)
        await uasyncio.sleep_ms(1)
        uasyncio.cancel(c)
        await uasyncio.sleep_ms(1)
    loop.set_exception_handler(lambda lp, ctx: seen.append(ctx))
    loop.run_until_complete(main())
    assert seen == []


def test_handler_that_raises_stops_the_loop(loop):
    def handler(lp, ctx):
        raise RuntimeError("from handler")

    async def bad():
        raise ValueError("x")

    async def main():
        loop.create_task(bad())
        await uasyncio.sleep_ms(5)
    loop.set_exception_handler(handler)
    with pytest.raises(RuntimeError, match="from handler"):
        loop.run_until_complete(main())


def test_keyboard_interrupt_is_not_handled(loop):
    async def intr():
        raise KeyboardInterrupt

    async def main():
        loop.create_task(intr())
        await uasyncio.sleep_ms(5)
    loop.set_exception_handler(lambda lp, ctx: None)
    with pytest.raises(KeyboardInterrupt):
        loop.run_until_complete(main())


def test_set_get_exception_handler(loop):
    assert loop.get_exception_handler() is None
    h = lambda lp, ctx: None  # noqa: E731
    loop.set_exception_handler(h)
    assert loop.get_exception_handler() is h
    loop.set_exception_handler(None)
    assert loop.get_exception_handler() is None
    with pytest.raises(TypeError):
        loop.set_exception_handler("not callable")


def test_default_handler_writes_to_a_stderr_that_replaces_itself(loop):
    # Writing runs the stream's code: here it replaces sys.stderr, dropping
    # the last reference to itself, and empties the context; the handler
    # must hold both, not borrow them.
    import io
    import sys
    written = []
    context = {"message": "boom", "exception": ValueError("x"), "future": None}

    class Swapping:
        def write(self, s):
            written.append(s)
            sys.stderr = io.StringIO()
            context.clear()
            return len(s)

        def flush(self):
            pass

    old = sys.stderr
    sys.stderr = Swapping()
    try:
        loop.default_exception_handler(context)
    finally:
        sys.stderr = old
    assert written == ["boom", "\n"]   # the rest of the context went with the first write
