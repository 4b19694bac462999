"""Loops in several threads, and calls into a loop from other threads."""
import gc
import sys
import threading

import pytest

import uasyncio
from conftest import run_program
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


# ---- call_soon_threadsafe --------------------------------------------------------


def run_with_fallback(loop, secs=20):
    """run_forever(), stopped after secs at the latest; True if that fallback
    fired (the loop was not woken when it should have been)."""
    fired = []
    loop.call_later(secs, lambda: (fired.append(1), loop.stop()))
    loop.run_forever()
    return bool(fired)


def test_call_soon_threadsafe_wakes_an_idle_loop(loop):
    # Nothing to do but a far timer: the loop blocks in epoll until the
    # other thread's call wakes it.
    ran_in = []

    def later():
        loop.call_soon_threadsafe(lambda: (ran_in.append(threading.get_ident()), loop.stop()))

    t = threading.Timer(0.05, later)
    t.start()
    assert not run_with_fallback(loop)
    t.join()
    assert ran_in == [threading.get_ident()]


def test_call_soon_threadsafe_stops_a_loop_blocked_without_timers(loop):
    t = threading.Timer(0.05, loop.call_soon_threadsafe, (loop.stop,))
    t.start()
    guard = threading.Timer(20, lambda: loop.call_soon_threadsafe(lambda: 1 / 0))
    guard.start()
    try:
        assert loop.run_forever() == 0   # what stop() makes it return
    finally:
        guard.cancel()
        t.join()


def test_call_soon_threadsafe_from_many_threads(loop):
    n_threads, n_calls = 4, 300
    got = []
    done = []

    def record(tid, i):
        got.append((tid, i))
        if len(got) == n_threads * n_calls:
            loop.stop()

    def worker(tid):
        for i in range(n_calls):
            loop.call_soon_threadsafe(record, tid, i)
        done.append(tid)

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(n_threads)]
    for t in threads:
        t.start()
    assert not run_with_fallback(loop)
    for t in threads:
        t.join()
    assert len(got) == n_threads * n_calls
    for k in range(n_threads):   # each thread's calls run in its order
        assert [i for tid, i in got if tid == k] == list(range(n_calls))


def test_call_soon_threadsafe_schedules_a_coroutine(loop):
    got = []

    async def coro(x):
        await uasyncio.sleep_ms(1)
        got.append(x)
        loop.stop()

    t = threading.Timer(0.02, loop.call_soon_threadsafe, (coro(7),))
    t.start()
    assert not run_with_fallback(loop)
    t.join()
    assert got == [7]


def test_call_soon_threadsafe_before_the_loop_runs_and_after_close():
    loop = uasyncio.PollEventLoop()
    got = []
    t = threading.Thread(target=loop.call_soon_threadsafe, args=(got.append, 1))
    t.start()
    t.join()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert got == [1]
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon_threadsafe(got.append, 2)
    with pytest.raises(TypeError):
        uasyncio.PollEventLoop().call_soon_threadsafe(3)


def test_pending_threadsafe_calls_are_dropped_on_close():
    loop = uasyncio.PollEventLoop()
    marker = object()
    loop.call_soon_threadsafe(print, marker)
    before = sys.getrefcount(marker)
    loop.close()
    assert sys.getrefcount(marker) == before - 1


# ---- calls that are not thread-safe ------------------------------------------------


def test_unsafe_calls_from_another_thread_fail_clearly(loop):
    q = Queue()
    errors = {}

    async def sleeper():
        await uasyncio.sleep(30)

    async def getter():
        await q.get()

    sleeping = sleeper()
    loop.create_task(sleeping)
    loop.create_task(getter())
    import socket
    a, b = socket.socketpair()

    def other():
        calls = {
            "call_soon": lambda: loop.call_soon(print),
            "call_later": lambda: loop.call_later(1, print),
            "create_task": lambda: loop.create_task(x for x in ()),
            "stop": loop.stop,
            "add_reader": lambda: loop.add_reader(a, print),
            "cancel": lambda: uasyncio.cancel(sleeping),
            "put_nowait": lambda: q.put_nowait(1),
        }
        for name, call in calls.items():
            try:
                call()
            except RuntimeError as e:
                errors[name] = str(e)

    async def main():
        await uasyncio.sleep_ms(1)   # the getter waits now
        t = threading.Thread(target=other)
        t.start()
        while t.is_alive():
            await uasyncio.sleep_ms(1)
        t.join()
        # Nothing changed: the getter still waits for the first item.
        q.put_nowait("first")
        await uasyncio.sleep_ms(1)
        assert q.qsize() == 0
        uasyncio.cancel(sleeping)

    try:
        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert sorted(errors) == ["add_reader", "call_later", "call_soon", "cancel", "create_task",
                              "put_nowait", "stop"]
    for msg in errors.values():
        assert "another thread" in msg and "call_soon_threadsafe" in msg


def test_a_loop_not_running_may_move_between_threads():
    loop = uasyncio.PollEventLoop()

    async def main(x):
        await uasyncio.sleep_ms(1)
        return x

    assert loop.run_until_complete(main(1)) == 1
    out = []
    t = threading.Thread(target=lambda: out.append(loop.run_until_complete(main(2))))
    t.start()
    t.join(30)
    assert out == [2]
    assert loop.run_until_complete(main(3)) == 3
    loop.close()


def test_more_unsafe_calls_from_another_thread_fail_clearly(loop):
    from uasyncio.synchro import Lock as Lock2
    import socket
    lock = Lock2()
    full = Queue(1)
    a, b = socket.socketpair()
    errors = {}
    coro_later = []

    async def holder():
        await lock.acquire()
        await uasyncio.sleep(30)

    async def waiter(aw):
        await aw

    async def never():
        pass

    async def serve(reader, writer):
        await writer.aclose()

    holding = holder()
    loop.create_task(holding)
    loop.create_task(waiter(lock.acquire()))
    full.put_nowait(0)
    loop.create_task(waiter(full.put(1)))
    srv = uasyncio.start_server(serve, "127.0.0.1", 0)
    loop.create_task(srv)

    def other():
        calls = {
            "call_later_ms": lambda: loop.call_later_ms(1, print),
            "call_at_": lambda: loop.call_at_(loop.time(), print),
            "remove_reader": lambda: loop.remove_reader(a),
            "add_writer": lambda: loop.add_writer(a, print),
            "wait": lambda: loop.wait(0),
            "run_forever": loop.run_forever,
            "run_until_complete": lambda: loop.run_until_complete(x for x in ()),
            "Lock.release": lock.release,          # would wake the waiter
            "Queue.get_nowait": full.get_nowait,   # would wake the putter
            "Server.close": srv.close,
        }
        for name, call in calls.items():
            try:
                call()
            except RuntimeError as e:
                errors[name] = str(e)

    async def main():
        await uasyncio.sleep_ms(1)   # the lock and a slot are waited for now
        t = threading.Thread(target=other)
        t.start()
        while t.is_alive():
            await uasyncio.sleep_ms(1)
        t.join()
        assert lock.locked and full.qsize() == 1 and srv.socket.fileno() >= 0
        uasyncio.cancel(holding)
        srv.close()
        await uasyncio.sleep_ms(1)

    try:
        loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert sorted(errors) == ["Lock.release", "Queue.get_nowait", "Server.close", "add_writer", "call_at_",
                              "call_later_ms", "remove_reader", "run_forever", "run_until_complete",
                              "wait"]
    for msg in errors.values():
        assert "another thread" in msg and "call_soon_threadsafe" in msg


def test_v3_calls_that_change_a_running_loop_fail_from_another_thread():
    # Every v3 call that would schedule, wake or cancel a task of a loop
    # running in another thread raises RuntimeError before it changes
    # anything: the loop stays as it was, and the same calls work from the
    # loop's own thread afterwards.
    import uasyncio.v3 as v3
    loop = v3.new_event_loop()   # the default loop: v3.create_task() reaches it too
    errors = {}

    async def wait_on(aw):
        return await aw

    async def serve(r, w):
        w.close()

    def gen():   # refused calls leave it unstarted: a generator does not warn
        yield

    async def main():
        ev, lock, sem = v3.Event(), v3.Lock(), v3.Semaphore(0)
        full, empty, unfinished = v3.Queue(1), v3.Queue(), v3.Queue()
        await lock.acquire()
        full.put_nowait(0)
        unfinished.put_nowait(0)
        unfinished.get_nowait()
        sleeper = loop.create_task(v3.sleep(30))
        waiters = [loop.create_task(wait_on(aw)) for aw in
                   (ev.wait(), lock.acquire(), sem.acquire(), full.put(1), empty.get(),
                    unfinished.join())]
        srv = await v3.start_server(serve, "127.0.0.1", 0)
        await v3.sleep_ms(1)   # every waiter waits now

        def other():
            calls = {
                "Loop.create_task": lambda: loop.create_task(gen()),
                "create_task": lambda: v3.create_task(gen()),
                "run": lambda: v3.run(gen()),
                "Loop.run_until_complete": lambda: loop.run_until_complete(sleeper),
                "Loop.call_soon": lambda: loop.call_soon(print),
                "Loop.stop": loop.stop,
                "Task.cancel": sleeper.cancel,
                "Task.add_done_callback": lambda: sleeper.add_done_callback(print),
                "Event.set": ev.set,
                "Lock.release": lock.release,
                "Semaphore.release": sem.release,
                "Queue.get_nowait": full.get_nowait,
                "Queue.put_nowait": lambda: empty.put_nowait(1),
                "Queue.task_done": unfinished.task_done,
                "Server.close": srv.close,
            }
            for name, call in calls.items():
                try:
                    call()
                except RuntimeError as e:
                    errors[name] = str(e)

        t = threading.Thread(target=other)
        t.start()
        while t.is_alive():
            await v3.sleep_ms(1)
        t.join()
        await v3.sleep_ms(1)
        # Nothing changed.
        assert not sleeper.done() and not any(w.done() for w in waiters)
        assert not ev.is_set() and lock.locked() and full.qsize() == 1 and empty.qsize() == 0
        assert srv.sockets[0].fileno() >= 0
        # From this thread, the same calls do what they say.
        ev.set()
        lock.release()
        sem.release()
        assert full.get_nowait() == 0
        empty.put_nowait(1)
        unfinished.task_done()
        sleeper.cancel()
        srv.close()
        await srv.wait_closed()
        assert [await w for w in waiters] == [True, True, True, None, 1, None]
        return "ok"

    try:
        assert loop.run_until_complete(main()) == "ok"
    finally:
        loop.close()
    assert sorted(errors) == sorted(["Loop.create_task", "create_task", "run", "Loop.run_until_complete",
                                     "Loop.call_soon", "Loop.stop", "Task.cancel",
                                     "Task.add_done_callback", "Event.set", "Lock.release",
                                     "Semaphore.release", "Queue.get_nowait", "Queue.put_nowait",
                                     "Queue.task_done", "Server.close"])
    for msg in errors.values():
        assert "another thread" in msg and "call_soon_threadsafe" in msg, msg


@pytest.mark.timeout(150)
def test_v3_task_of_a_loop_in_another_thread_cannot_be_awaited():
    # Its end would wake the awaiting task from the other loop's thread.
    import uasyncio.v3 as v3
    loop = v3.Loop()
    errors = []

    def other(task):
        loop2 = v3.Loop()

        async def awaiting(aw):
            return await aw()

        async def main():
            for aw in (lambda: task, lambda: v3.wait_for(task, 5), lambda: v3.wait_for(task, None),
                       lambda: v3.gather(task), lambda: v3.shield(task), lambda: v3.wait([task]),
                       lambda: next(v3.as_completed([task]))):
                try:   # bounded: without the check, the await would never end
                    await v3.wait_for(awaiting(aw), 20)
                except (RuntimeError, v3.TimeoutError) as e:
                    errors.append(str(e) or repr(e))

        try:
            loop2.run_until_complete(main())
        finally:
            loop2.close()

    async def main():
        task = loop.create_task(v3.sleep(30))
        t = threading.Thread(target=other, args=(task,))
        t.start()
        while t.is_alive():
            await v3.sleep_ms(1)
        t.join()
        assert not task.done()
        task.cancel()
        return "ok"

    try:
        assert loop.run_until_complete(main()) == "ok"
    finally:
        loop.close()
    assert errors == ["a task of another event loop cannot be awaited here"] * 7


def test_threadsafe_flag_set_while_its_loop_is_closed_and_freed(tmp_path):
    # set() from another thread finds the waiter's loop, then makes the
    # callable that wakes it: an allocation, which may run a GC, whose
    # callbacks may let the loop's thread run. Here a GC callback does:
    # the loop's thread stops, closes and drops the loop meanwhile. set()
    # must neither use the freed loop nor fail. (CPython 3.11 collects
    # inside the allocation; later versions at the next bytecode, so the
    # window is not reached there.) In a program of its own: the GC
    # thresholds change, and a failure may be a crash.
    r = run_program(tmp_path, """
        import gc, sys, threading
        import uasyncio.v3 as v3

        class Obj:
            pass

        def attempt():
            flag = v3.ThreadSafeFlag()
            ready, closing, closed = threading.Event(), threading.Event(), threading.Event()
            state = {"armed": False, "hit": False}
            setter = threading.get_ident()

            def on_gc(phase, info):
                if phase == "start" and state["armed"] and threading.get_ident() == setter:
                    state["armed"] = False
                    state["hit"] = True
                    closing.set()
                    closed.wait(20)   # the loop's thread runs now

            def loop_thread():
                loop = v3.Loop()

                async def waiter():
                    await flag.wait()

                async def main():
                    loop.create_task(waiter())
                    await v3.sleep_ms(0)   # the waiter waits on the flag now
                    ready.set()
                    while not closing.is_set():
                        await v3.sleep_ms(1)

                loop.run_until_complete(main())
                loop.close()
                del loop
                closed.set()

            t = threading.Thread(target=loop_thread)
            t.start()
            ready.wait(20)
            old = gc.get_threshold()
            try:
                # GC counts past the threshold while disabled: the first
                # allocation after enable() collects, which is set()'s.
                gc.disable()
                keep = [Obj() for _ in range(10)]
                gc.set_threshold(1)
                gc.callbacks.append(on_gc)
                gc.enable()
                state["armed"] = True
                flag.set()
            finally:
                state["armed"] = False
                gc.set_threshold(*old)
                gc.callbacks.remove(on_gc)
                closing.set()
                t.join(20)
            return state["hit"]

        print("hits", sum(attempt() for _ in range(5)))
    """)
    assert r.returncode == 0, r.stderr
    hits = int(r.stdout.split()[-1])
    if sys.version_info < (3, 12):
        assert hits == 5


# ---- closing a stream a task of another thread's loop waits on ----------------------


def closes_from_another_thread(close):
    """Run close() in another thread; what it raised (RuntimeError), or None."""
    out = []

    def other():
        try:
            close()
            out.append(None)
        except RuntimeError as e:
            out.append(str(e))

    t = threading.Thread(target=other)
    t.start()
    return t, out


async def closes_elsewhere_then_delivers(closes, deliver, got):
    """While a task waits on a socket: each of closes run in another thread
    in turn (what each raised, or None), then deliver() sends what the task
    waits for, and the task gets up to 2 s to have it in got."""
    results = []
    for close in closes:
        t, out = closes_from_another_thread(close)
        while t.is_alive():
            await uasyncio.sleep_ms(1)
        t.join()
        results += out
    deliver()
    for _ in range(2000):
        if got:
            break
        await uasyncio.sleep_ms(1)
    return results


def test_closing_a_stream_a_task_of_a_loop_in_another_thread_reads_is_refused(loop):
    # Closing wakes the tasks waiting on the socket (their next call raises)
    # and makes the poller forget its fd: that would change a loop running
    # in another thread. It raises, and the socket stays open.
    import socket
    a, b = socket.socketpair()
    a.setblocking(False)
    r = uasyncio.StreamReader(a)
    w = uasyncio.StreamWriter(a, {})
    got = []

    async def reader():
        got.append(await r.readline())

    async def main():
        loop.create_task(reader())
        await uasyncio.sleep_ms(1)   # the reader waits on the socket now
        closes = (lambda: list(r.aclose()), lambda: list(w.aclose()), lambda: uasyncio._close_now(a))
        results = await closes_elsewhere_then_delivers(closes, lambda: b.send(b"line\n"), got)
        assert a.fileno() >= 0
        await r.aclose()   # from the loop's own thread
        return results

    try:
        results = loop.run_until_complete(main())
    finally:
        a.close()
        b.close()
    assert got == [b"line\n"]
    assert len(results) == 3
    for msg in results:
        assert msg and "another thread" in msg and "call_soon_threadsafe" in msg


def test_closing_a_udp_socket_a_task_of_a_loop_in_another_thread_receives_on_is_refused(loop):
    import socket
    from uasyncio import udp
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.setblocking(False)
    got = []

    async def receiver():
        got.append(await udp.recv(s, 100))

    async def main():
        loop.create_task(receiver())
        await uasyncio.sleep_ms(1)   # it waits on the socket now
        def send():
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as c:
                c.sendto(b"datagram", s.getsockname())
        return await closes_elsewhere_then_delivers([lambda: list(udp.close(s))], send, got)

    try:
        out = loop.run_until_complete(main())
    finally:
        s.close()
    assert got == [b"datagram"]
    assert len(out) == 1 and out[0] and "another thread" in out[0]


def test_closing_a_stream_from_another_thread_wakes_the_task_of_a_loop_not_running():
    # A loop that is not running may be changed from any thread: its task
    # waiting on the socket is woken, and finds it closed when the loop runs.
    import socket
    loop = uasyncio.PollEventLoop()
    a, b = socket.socketpair()
    a.setblocking(False)
    r = uasyncio.StreamReader(a)
    out = []

    async def reader():
        try:
            await r.readline()
        except (OSError, ValueError):   # what a closed socket's fileno() or recv() raises
            out.append("raised")

    async def main():
        loop.create_task(reader())
        await uasyncio.sleep_ms(1)

    try:
        loop.run_until_complete(main())   # stops while the reader waits
        t, res = closes_from_another_thread(lambda: list(r.aclose()))
        t.join(30)
        assert res == [None]
        loop.run_until_complete(uasyncio.sleep_ms(1))
    finally:
        loop.close()
        b.close()
    assert out == ["raised"]


def test_v3_closing_a_stream_a_task_of_a_loop_in_another_thread_reads_is_refused():
    import socket
    import uasyncio.v3 as v3
    a, b = socket.socketpair()
    a.setblocking(False)
    st = v3.Stream(a)
    loop = v3.Loop()
    errors = []

    def other():
        loop2 = v3.Loop()

        async def close():
            try:
                await st.wait_closed()
            except RuntimeError as e:
                errors.append(str(e))

        try:
            loop2.run_until_complete(close())
        finally:
            loop2.close()

    async def main():
        reading = loop.create_task(st.readline())
        await v3.sleep_ms(1)   # it waits on the socket now
        t = threading.Thread(target=other)
        t.start()
        while t.is_alive():
            await v3.sleep_ms(1)
        t.join()
        b.send(b"line\n")
        line = await v3.wait_for(reading, 20)
        await st.wait_closed()
        return line

    try:
        assert loop.run_until_complete(main()) == b"line\n"
    finally:
        loop.close()
        b.close()
    assert len(errors) == 1 and "another thread" in errors[0]


def test_websocket_closed_from_another_thread_while_a_task_of_the_loop_receives():
    import socket
    from uasyncio.websocket.server import WSConn
    a, b = socket.socketpair()
    a.setblocking(False)
    ws = WSConn(uasyncio.StreamReader(a), uasyncio.StreamWriter(a, {}))
    loop = uasyncio.PollEventLoop()
    got = []

    async def receiver():
        got.append(await ws.recv())

    async def main():
        loop.create_task(receiver())
        await uasyncio.sleep_ms(1)   # it waits on the socket now
        frame = b"\x81\x82abcd" + bytes(x ^ y for x, y in zip(b"hi", b"ab"))   # masked text "hi"
        return await closes_elsewhere_then_delivers([lambda: ws.aclose()], lambda: b.send(frame), got)

    try:
        out = loop.run_until_complete(main())
    finally:
        loop.close()
        a.close()
        b.close()
    assert got == ["hi"]
    assert len(out) == 1 and out[0] and "another thread" in out[0]


@pytest.mark.timeout(120)
def test_websocket_write_ending_in_one_thread_wakes_a_send_of_another_threads_loop():
    # A send of loop B (in its thread, blocked in epoll with no timer) waits
    # behind a write of loop A; when that ends, in A's thread, B is woken
    # through its thread-safe wake-up, not left asleep.
    import socket
    from uasyncio.websocket.server import WSConn
    a, b = socket.socketpair()
    a.setblocking(False)
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    ws = WSConn(uasyncio.StreamReader(a), uasyncio.StreamWriter(a, {}))
    received, out_b = [], []
    draining, b_may_send = threading.Event(), threading.Event()

    def drain():
        b.settimeout(30)
        draining.wait(30)
        while chunk := b.recv(65536):
            received.append(chunk)

    loop_b = uasyncio.PollEventLoop()

    def thread_b():
        async def small():
            b_may_send.wait(30)
            await ws.send(b"small")   # waits behind A's write
            out_b.append("sent")

        loop_b.run_until_complete(small())

    reader = threading.Thread(target=drain)
    tb = threading.Thread(target=thread_b)
    loop_a = uasyncio.PollEventLoop()

    async def big():
        await ws.send(b"x" * (1 << 20))

    async def main():
        loop_a.create_task(big())
        await uasyncio.sleep_ms(20)   # the big write is blocked now
        tb.start()
        b_may_send.set()
        await uasyncio.sleep_ms(100)   # B's send waits behind it
        draining.set()
        for _ in range(2000):
            if not tb.is_alive():
                break
            await uasyncio.sleep_ms(10)

    reader.start()
    try:
        loop_a.run_until_complete(main())
        woken = not tb.is_alive()
    finally:
        if tb.is_alive():
            loop_b.call_soon_threadsafe(loop_b.stop)
        tb.join(30)
        loop_a.close()
        loop_b.close()
        a.close()
        reader.join(30)
        b.close()
    assert woken and out_b == ["sent"]
    assert b"".join(received).endswith(b"small")
