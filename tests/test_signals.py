"""Signals (Ctrl-C) reach a running loop at once, whatever it is doing, and
leave it usable."""
import functools
import itertools
import os
import signal
import socket
import threading
import time

import pytest

import uasyncio
from conftest import libc_kill, run_program, sigint_raises


class Interrupted(Exception):
    pass


@pytest.fixture
def sigint():
    """SIGINT raises Interrupted (as Ctrl-C raises KeyboardInterrupt) while
    the test runs; the sender is returned."""
    with sigint_raises(Interrupted) as send:
        yield send


def fallback(loop, secs=20):
    """Stop the loop after secs at the latest; the list says if it did."""
    fired = []
    # C callables only: Python code would act on the signal itself.
    loop.call_later(secs, fired.append, 1)
    loop.call_later(secs, loop.stop)
    return fired


def test_signal_during_a_c_callback_interrupts_before_the_loop_blocks(loop, sigint):
    # The callback is C code: the signal is caught but not acted on until
    # something checks; the loop must check before it blocks for 20 s.
    fired = fallback(loop)
    loop.call_soon(sigint)
    with pytest.raises(Interrupted):
        loop.run_forever()
    assert not fired


def test_signal_reaches_a_loop_that_never_blocks(loop, sigint):
    # A task written in C (an iterator yielding None) keeps the loop busy
    # without ever running bytecode or blocking.
    fired = fallback(loop)
    loop.create_task(itertools.repeat(None))
    loop.call_soon(sigint)
    with pytest.raises(Interrupted):
        loop.run_forever()
    assert not fired


def test_signal_from_another_thread_wakes_an_idle_loop(loop, sigint):
    fired = fallback(loop)
    t = threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT))
    t.start()
    with pytest.raises(Interrupted):
        loop.run_forever()
    t.join()
    assert not fired


def test_signal_handled_by_another_thread_wakes_the_loop(loop, sigint):
    # The main thread blocks SIGINT, so the kernel hands it to the other
    # thread and the loop's epoll_wait is not interrupted: only the wake-up
    # fd written by the handler can end the wait.
    fired = fallback(loop)
    go = threading.Event()

    def sender():
        go.wait(30)
        time.sleep(0.05)   # most likely blocked in epoll by then
        os.kill(os.getpid(), signal.SIGINT)

    t = threading.Thread(target=sender)
    t.start()   # before the mask changes: threads inherit it
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
    try:
        loop.call_soon(go.set)
        with pytest.raises(Interrupted):
            loop.run_forever()
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        t.join()
    assert not fired


def test_loop_is_usable_after_an_interrupt(loop, sigint):
    log = []

    async def sleeper():
        try:
            await uasyncio.sleep(30)
        finally:
            log.append("finally")

    async def main():
        loop.call_soon(sigint)
        await uasyncio.sleep(30)

    loop.create_task(sleeper())
    with pytest.raises(Interrupted):
        loop.run_until_complete(main())

    async def answer():
        await uasyncio.sleep_ms(1)
        return 42

    assert loop.run_until_complete(answer()) == 42
    assert log == []
    loop.close()
    assert log == ["finally"]


def test_the_wakeup_fd_in_place_before_is_restored(loop):
    a, b = socket.socketpair()
    a.setblocking(False)
    old = signal.set_wakeup_fd(a.fileno())
    try:
        loop.call_soon(loop.stop)
        loop.run_forever()
        assert signal.set_wakeup_fd(a.fileno()) == a.fileno()
    finally:
        signal.set_wakeup_fd(old)
        a.close()
        b.close()


def test_ctrl_c_in_a_program(tmp_path):
    # The real thing, in a program of its own: the default SIGINT handler,
    # KeyboardInterrupt out of run_until_complete(), the loop used again,
    # and close() running the finally blocks of what is left.
    out = run_program(tmp_path, """
        import ctypes, os, signal
        import uasyncio
        kill = ctypes.CDLL(None).kill
        # Python's handler even if started with SIGINT ignored (as a
        # background job is): the one an interactive program has.
        signal.signal(signal.SIGINT, signal.default_int_handler)
        loop = uasyncio.get_event_loop()

        async def worker(name):
            try:
                await uasyncio.sleep(60)
            finally:
                print("finally", name)

        async def main():
            loop.create_task(worker("a"))
            loop.call_soon(kill, os.getpid(), signal.SIGINT)
            await worker("main")

        try:
            loop.run_until_complete(main())
        except KeyboardInterrupt:
            print("KeyboardInterrupt")

        async def again():
            await uasyncio.sleep_ms(1)
            return "again"

        print(loop.run_until_complete(again()))
        loop.close()
        print("closed")
    """, timeout=30)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    # Interrupted while both slept: they are still pending, and close()
    # finalizes them.
    assert lines[:2] == ["KeyboardInterrupt", "again"], out.stdout
    assert sorted(lines[2:4]) == ["finally a", "finally main"], out.stdout
    assert lines[4:] == ["closed"], out.stdout


# ---- handlers that schedule work just before the loop blocks ----------------------


@pytest.fixture
def sigusr1():
    """Within the test, SIGUSR1 runs the handler the test puts in
    handler[0]; yields (handler, sender): the sender is C code, so the
    handler runs only when something checks for signals."""
    handler = [None]
    old = signal.signal(signal.SIGUSR1, lambda signum, frame: handler[0]())
    try:
        yield handler, functools.partial(libc_kill, os.getpid(), signal.SIGUSR1)
    finally:
        signal.signal(signal.SIGUSR1, old)


def run_with_thread_fallback(loop, run, secs=20):
    """run(); if the loop is still asleep after secs, another thread notes
    it and wakes it. True if that happened."""
    fired = []
    t = threading.Timer(secs, lambda: (fired.append(1), loop.call_soon_threadsafe(int)))
    t.start()
    try:
        result = run()
    finally:
        t.cancel()
        t.join()
    return result, bool(fired)


@pytest.mark.parametrize("what", ["stop", "call_soon", "call_later", "call_soon_threadsafe"])
def test_a_handler_that_schedules_work_before_the_first_wait_is_not_left_waiting(loop, sigusr1, what):
    # The signal comes while a C callback runs; the loop then has nothing
    # to do but wait (forever), and runs the handler first: what the
    # handler scheduled must end that wait at once.
    handler, send = sigusr1
    handler[0] = {
        "stop": loop.stop,
        "call_soon": lambda: loop.call_soon(loop.stop),
        "call_later": lambda: loop.call_later_ms(1, loop.stop),
        "call_soon_threadsafe": lambda: loop.call_soon_threadsafe(loop.stop),
    }[what]
    loop.call_soon(send)
    _, fired = run_with_thread_fallback(loop, loop.run_forever)
    assert not fired


def test_a_handler_that_sets_a_threadsafe_flag_wakes_its_waiter_at_once(sigusr1):
    import uasyncio.v3 as v3
    handler, send = sigusr1
    loop = v3.Loop()
    flag = v3.ThreadSafeFlag()
    handler[0] = flag.set

    async def main():
        loop.call_soon(send)
        await flag.wait()
        return "woken"

    try:
        result, fired = run_with_thread_fallback(loop, lambda: loop.run_until_complete(main()))
    finally:
        loop.close()
    assert result == "woken" and not fired


def test_a_handler_that_stops_a_loop_with_a_far_timer(loop, sigusr1):
    handler, send = sigusr1
    handler[0] = loop.stop
    loop.call_later(30, int)
    loop.call_soon(send)
    _, fired = run_with_thread_fallback(loop, loop.run_forever)
    assert not fired
