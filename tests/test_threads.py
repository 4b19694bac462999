"""Loops in several threads, and calls into a loop from other threads."""
import gc
import threading

import pytest

import uasyncio
from uasyncio.queues import Queue
from uasyncio.synchro import Lock


def run_in_threads(target, n=2, secs=60):
    """Run target(i) in n threads at once; re-raise the first failure."""
    errors = []

    def body(i):
        try:
            target(i)
        except BaseException as e:   # reported below, in the test's thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(secs)
        assert not t.is_alive(), "a thread did not finish in %s s" % secs
    if errors:
        raise errors[0]


def test_two_threads_each_run_their_own_loop():
    # Each loop blocks in epoll with the GIL released, so the two threads'
    # passes interleave: every wait_for, queue and lock must find its own
    # thread's loop, never the other one.
    def worker(i):
        loop = uasyncio.PollEventLoop()
        q = Queue(1)
        lock = Lock()
        got = []

        async def producer():
            for n in range(50):
                await q.put(n)
                await uasyncio.sleep_ms(1)

        async def main():
            loop.create_task(producer())
            for _ in range(50):
                got.append(await uasyncio.wait_for_ms(q.get(), 10000))
                async with lock:
                    await uasyncio.wait_for_ms(uasyncio.sleep_ms(1), 10000)
            return i

        try:
            assert loop.run_until_complete(main()) == i
            assert got == list(range(50))
        finally:
            loop.close()

    run_in_threads(worker, n=3)


def test_streams_closed_in_one_thread_leave_the_other_loop_alone():
    # Closing a stream unregisters it from the loop running in this thread;
    # with a process-wide "running loop" it reached another thread's loop.
    import socket

    def worker(i):
        loop = uasyncio.PollEventLoop()

        async def main():
            for _ in range(30):
                a, b = socket.socketpair()
                a.setblocking(False)
                r = uasyncio.StreamReader(a)
                w = uasyncio.StreamWriter(b, {})
                await w.awrite(b"x\n")
                assert await r.readline() == b"x\n"
                await r.aclose()
                await w.aclose()
                await uasyncio.sleep_ms(1)

        try:
            loop.run_until_complete(main())
        finally:
            loop.close()

    run_in_threads(worker, n=2)
    gc.collect()


def test_running_loop_is_per_thread():
    # While a loop runs in the main thread, another thread's wait_for() is
    # not inside a task of any loop of its own: it must say so, not find the
    # main thread's loop.
    loop = uasyncio.PollEventLoop()
    seen = []

    def other():
        gen = uasyncio.wait_for_ms(uasyncio.sleep_ms(1), 100).__await__()
        try:
            next(gen)
        except RuntimeError as e:
            seen.append(str(e))

    async def main():
        t = threading.Thread(target=other)
        t.start()
        while t.is_alive():
            await uasyncio.sleep_ms(1)
        t.join()

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert seen and "running event loop" in seen[0]
