"""What close(), the garbage collector and interpreter exit do with tasks a
loop still holds: every one is reached, and finalized (its finally blocks
run) or freed; none is left behind."""
import gc
import weakref

import pytest

import uasyncio
from uasyncio.queues import Queue
from uasyncio.synchro import Lock
from conftest import run_program


def make_main(kind, log, loop):
    """run_until_complete()'s coroutine: it stops the loop, then parks."""
    q = Queue()
    lock = Lock()

    async def main():
        if kind == "lock":
            await lock.acquire()
        # The stop comes after the coroutine parks (acquire yields once first).
        loop.call_soon(loop.stop)
        try:
            if kind == "queue":
                await q.get()
            elif kind == "lock":
                await lock.acquire()
            else:
                await uasyncio.coroutine(lambda: (yield False))()
        finally:
            log.append("finally")
        return "done"

    return main(), q, lock


@pytest.mark.parametrize("kind", ["queue", "lock", "yield False"])
def test_main_coroutine_parked_when_the_loop_stops_is_finalized_by_close(kind):
    loop = uasyncio.PollEventLoop()
    log = []
    main, q, lock = make_main(kind, log, loop)
    ref = weakref.ref(main)
    assert loop.run_until_complete(main) is None   # stopped before it ended
    del main, q, lock
    assert log == []
    loop.close()
    assert log == ["finally"]
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("kind", ["queue", "lock", "yield False"])
def test_main_coroutine_parked_is_collected_with_its_loop(kind):
    loop = uasyncio.PollEventLoop()
    log = []
    main, q, lock = make_main(kind, log, loop)
    refs = [weakref.ref(main), weakref.ref(loop)]
    loop.run_until_complete(main)
    del main, q, lock, loop
    gc.collect()
    assert [r() for r in refs] == [None, None]
    assert log == ["finally"]


def test_many_stopped_rounds_leave_nothing_alive():
    log = []
    for _ in range(200):
        loop = uasyncio.PollEventLoop()
        main, q, lock = make_main("queue", log, loop)
        loop.run_until_complete(main)
        loop.close()
    del main, q, lock, loop
    gc.collect()
    assert len(log) == 200
    # Only this test's coroutines: another test's may still await collection.
    assert not [o for o in gc.get_objects()
                if type(o).__name__ == "coroutine" and o.__qualname__ == "make_main.<locals>.main"]


def test_main_coroutine_parked_can_be_resumed_by_a_later_run():
    loop = uasyncio.PollEventLoop()
    log = []
    main, q, lock = make_main("queue", log, loop)
    assert loop.run_until_complete(main) is None

    async def feed():
        q.put_nowait(1)
        await uasyncio.sleep_ms(5)

    loop.run_until_complete(feed())
    assert log == ["finally"]
    loop.close()


def test_cancel_reaches_a_main_coroutine_parked_after_the_loop_stopped():
    loop = uasyncio.PollEventLoop()
    log = []
    main, q, lock = make_main("queue", log, loop)
    loop.run_until_complete(main)
    uasyncio.cancel(main)

    async def settle():
        await uasyncio.sleep_ms(1)

    loop.run_until_complete(settle())
    assert log == ["finally"]
    loop.close()


def test_close_finalizes_pending_tasks_that_something_else_holds(loop):
    log = []
    held = []

    async def sleeper(name):
        try:
            await uasyncio.sleep(60)
        finally:
            log.append(name)

    async def main():
        for name in "abc":
            held.append(sleeper(name))
            loop.create_task(held[-1])
        await uasyncio.sleep_ms(1)

    loop.run_until_complete(main())
    loop.close()
    assert sorted(log) == ["a", "b", "c"]


def test_pending_tasks_of_the_default_loop_are_finalized_at_exit(tmp_path):
    out = run_program(tmp_path, """
        import uasyncio

        async def worker(name):
            try:
                await uasyncio.sleep(60)
            finally:
                print("finally", name)

        async def main():
            loop.create_task(worker("sleeping"))
            await uasyncio.sleep_ms(1)

        loop = uasyncio.get_event_loop()
        loop.run_until_complete(main())
        print("end")
    """, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["end", "finally sleeping"]


@pytest.mark.parametrize("kind", ["queue", "lock"])
def test_close_finalizes_tasks_waiting_in_a_queue_or_lock_that_lives_on(loop, kind):
    """The loop does not hold a task parked in a Queue or Lock, but close()
    still reaches it: it leaves the wait list and its finally runs."""
    q, lock = Queue(), Lock()
    log = []

    async def waiter(name):
        try:
            if kind == "queue":
                await q.get()
            else:
                await lock.acquire()
        finally:
            log.append(name)

    async def main():
        if kind == "lock":
            await lock.acquire()
        for name in "ab":
            loop.create_task(waiter(name))
        await uasyncio.sleep_ms(2)

    loop.run_until_complete(main())
    assert log == []
    loop.close()
    assert log == ["a", "b"]
    # Nobody waits any more: the queue keeps what is put, the lock frees.
    if kind == "queue":
        q.put_nowait(1)
        assert q.qsize() == 1
    else:
        lock.release()
        assert not lock.locked


# ---- what close() meets: wait_for timers, servers -----------------------------------

def test_close_frees_the_timer_of_a_task_in_wait_for_once(tmp_path):
    """A task inside wait_for_ms() holds a timer record besides its own:
    close() finalizes the task (its WaitFor is closed) and releases the
    timer, each once, whether the task is queued or sleeping when the loop
    stops, and at interpreter exit. Run apart: a record freed twice crashes."""
    out = run_program(tmp_path, """
        import sys
        import uasyncio

        async def busy():
            while True:
                await uasyncio.sleep_ms(0)

        async def sleepy():
            await uasyncio.sleep(5)   # wakes before the timeout would fire

        async def waiter(inner):
            try:
                await uasyncio.wait_for_ms(inner(), 10000)
            finally:
                print("finally", inner.__name__)

        def stopped_loop(loop, *tasks):
            async def main():
                for t in tasks:
                    loop.create_task(t)
                await uasyncio.sleep_ms(0)
                loop.stop()
                await uasyncio.sleep_ms(0)
            loop.run_until_complete(main())

        held = [waiter(busy), waiter(sleepy)]
        loop = uasyncio.PollEventLoop()
        stopped_loop(loop, *held)
        loop.close()
        # Each record held one reference to its coroutine: none was dropped
        # twice (the third, never scheduled, counts what the list holds).
        held.append(waiter(busy))
        print([sys.getrefcount(held[i]) - sys.getrefcount(held[2]) for i in range(3)])
        held[2].close()
        stopped_loop(uasyncio.get_event_loop(), waiter(busy), waiter(sleepy))
        print("end")
    """, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["finally busy", "finally sleepy", "[0, 0, 0]", "end",
                                       "finally busy", "finally sleepy"]
    assert out.stderr == ""


@pytest.mark.parametrize("api", ["2.0", "v3"])
def test_close_finalizes_a_start_server_task_and_frees_its_port(loop, api):
    """What start_server() returns is a task of its own, not a coroutine:
    close() closes it too, so its listening socket is closed and the port
    can be bound again."""
    import socket
    import uasyncio.v3 as v3

    async def serve(reader, writer):
        pass

    srv = uasyncio.start_server(serve, "127.0.0.1", 0)
    if api == "v3":
        loop = v3.new_event_loop()

    async def main():
        if api == "v3":
            v3.create_task(srv)
        else:
            loop.create_task(srv)
        await uasyncio.sleep_ms(5)

    loop.run_until_complete(main())
    port = srv.socket.getsockname()[1]
    loop.close()
    assert srv.socket.fileno() == -1
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen()


def test_close_finalizes_a_task_waiting_behind_another_websocket_send(loop):
    """A WebSocket send waiting for another task's blocked write to end is
    parked off the loop's queues, as a Queue waiter is: close() still
    reaches it, and its finally runs."""
    import socket
    from uasyncio.websocket.server import WSConn
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws = WSConn(uasyncio.StreamReader(a), uasyncio.StreamWriter(a, {}))
    log = []

    async def sender(name, size):
        try:
            await ws.send(b"x" * size)
        finally:
            log.append(name)

    async def main():
        loop.create_task(sender("blocked", 1 << 20))   # the peer reads nothing
        loop.create_task(sender("behind", 10))
        await uasyncio.sleep_ms(20)

    loop.run_until_complete(main())
    assert log == []
    loop.close()
    assert sorted(log) == ["behind", "blocked"]
    a.close()
    b.close()


@pytest.mark.parametrize("kind", ["queue", "lock"])
def test_a_waiter_woken_by_a_finally_block_run_by_close_is_still_finalized(loop, kind):
    """close() finalizes a sleeping task whose finally releases the Lock (or
    puts in the Queue) that another task waits for: that task will never run
    again, but it is finalized too (its finally runs), not just let go of."""
    q, lock = Queue(), Lock()
    log = []

    async def holder():
        try:
            await uasyncio.sleep(60)
        finally:
            if kind == "queue":
                q.put_nowait(1)
            else:
                lock.release()
            log.append("holder")

    async def waiter():
        try:
            if kind == "queue":
                await q.get()
            else:
                await lock.acquire()
        finally:
            log.append("waiter")

    async def main():
        await lock.acquire()
        loop.create_task(holder())
        loop.create_task(waiter())
        await uasyncio.sleep_ms(5)

    loop.run_until_complete(main())
    loop.close()
    assert log == ["holder", "waiter"]


@pytest.mark.parametrize("api", ["2.0", "v3"])
def test_a_cancel_whose_wait_ending_closes_the_loop_queues_nothing(api):
    # A task waits on an object without an fd (the loop holds the object).
    # Cancelling it takes it out of that wait, which releases the object,
    # whose finalizer closes the loop; the task must not then be queued on
    # the closed loop (a v3 Task freed later would leave a dangling record).
    import uasyncio.v3 as v3
    loop = v3.Loop() if api == "v3" else uasyncio.PollEventLoop()

    class Device:
        def ioctl(self, req, arg):
            return -1 if req == 10 else 0   # no fd; never ready

        def __del__(self):
            loop.close()

    def waiter():
        yield uasyncio.IORead(Device())   # only the loop holds it

    async def main():
        await uasyncio.sleep_ms(1)

    w = waiter()
    task = loop.create_task(w)
    loop.run_until_complete(main())   # the task waits on the device now
    if api == "v3":
        assert task.cancel()
    else:
        uasyncio.cancel(w)
    assert repr(loop).endswith("closed=True queued=0 timers=0>")
    del task, w
    gc.collect()
    del loop
    gc.collect()
