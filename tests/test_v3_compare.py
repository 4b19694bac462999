"""Whole programs run on uasyncio.v3 and on CPython's asyncio: where the
behaviour is the same in both, they must print the same."""
from v3util import run_both


def check(program):
    a, b = run_both(program)
    assert a == b, (a, b)
    return a


def test_producer_consumer_with_queue_event_lock():
    def program(aio, out):
        async def producer(q, n):
            for i in range(n):
                await q.put(i)
                await aio.sleep(0)
            await q.put(None)

        async def consumer(q, lock, name):
            got = []
            while True:
                item = await q.get()
                q.task_done()
                if item is None:
                    await q.put(None)
                    return got
                async with lock:
                    out.append((name, item))
                    await aio.sleep(0)
                got.append(item)

        async def main():
            q = aio.Queue(2)
            lock = aio.Lock()
            ev = aio.Event()
            cs = [aio.create_task(consumer(q, lock, n)) for n in "ab"]
            await producer(q, 6)
            res = await aio.gather(*cs)
            ev.set()
            await ev.wait()
            return sorted(res[0] + res[1])
        return main()
    # Which consumer gets which item is scheduling (v3 hands an item to the
    # getter that waited first; asyncio lets a running getter take it): the
    # items consumed, the lock's exclusion and the end are the same.
    a, b = run_both(program)
    assert a[-1] == b[-1] == ("result", [0, 1, 2, 3, 4, 5])
    assert sorted(x[1] for x in a[:-1]) == sorted(x[1] for x in b[:-1]) == list(range(6))


def test_cancellation_chain():
    def program(aio, out):
        async def leaf():
            try:
                await aio.sleep(10)
            except aio.CancelledError:
                out.append("leaf")
                raise

        async def middle(t):
            try:
                await t
            except aio.CancelledError:
                out.append("middle")
                raise

        async def main():
            t1 = aio.create_task(leaf())
            t2 = aio.create_task(middle(t1))
            await aio.sleep(0)
            out.append(t2.cancel())
            for t in (t2, t1):
                try:
                    await t
                except aio.CancelledError:
                    out.append(("cancelled", t.cancelled()))
            return "ok"
        return main()
    check(program)


def test_done_callbacks_and_awaiters_in_order():
    def program(aio, out):
        async def child():
            await aio.sleep(0)
            return 1

        async def waiter(t, n):
            out.append(("waiter", n, await t))

        async def main():
            t = aio.create_task(child())
            t.add_done_callback(lambda task: out.append(("cb", task.result())))
            ws = [aio.create_task(waiter(t, n)) for n in range(2)]
            await aio.sleep(0)
            await aio.gather(*ws)
            return t.result()
        return main()
    check(program)


def test_wait_for_and_gather_errors():
    def program(aio, out):
        async def slow(n):
            await aio.sleep(n)
            return n

        async def bad():
            await aio.sleep(0)
            raise ValueError("bad")

        async def main():
            try:
                await aio.wait_for(slow(5), 0.01)
            except aio.TimeoutError:
                out.append("timeout")
            out.append(await aio.wait_for(slow(0), 1))
            res = await aio.gather(slow(0), bad(), return_exceptions=True)
            out.append([type(r).__name__ for r in res])
            try:
                await aio.gather(slow(0.01), bad())
            except ValueError as e:
                out.append(str(e))
            return "end"
        return main()
    check(program)


def test_semaphore_fairness():
    def program(aio, out):
        async def worker(sem, n):
            async with sem:
                out.append(("in", n))
                await aio.sleep(0)
                out.append(("out", n))

        async def main():
            sem = aio.Semaphore(2)
            await aio.gather(*[worker(sem, n) for n in range(5)])
        return main()
    check(program)
