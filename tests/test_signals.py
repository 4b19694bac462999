"""Signals (Ctrl-C) reach a running loop at once, whatever it is doing, and
leave it usable."""
import itertools
import os
import signal
import socket
import threading
import time

import pytest

import uasyncio
from conftest import run_program, sigint_raises


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
