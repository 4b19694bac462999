"""uasyncio.v3.Queue: CPython's asyncio.Queue API, run on both; what is ours
alone as marked async tests (the pytest plugin)."""
import pytest

import uasyncio.v3 as v3
from v3util import both  # noqa: F401 - a fixture


def test_fifo_and_sizes(both):
    async def main():
        q = both.Queue()
        assert q.empty() and not q.full() and q.qsize() == 0 and q.maxsize == 0
        for i in range(3):
            await q.put(i)
        q.put_nowait(3)
        assert q.qsize() == 4
        return [await q.get() for _ in range(2)] + [q.get_nowait(), q.get_nowait()]
    assert both.run(main()) == [0, 1, 2, 3]


def test_nowait_errors(both):
    async def main():
        q = both.Queue(1)
        with pytest.raises(both.QueueEmpty):
            q.get_nowait()
        q.put_nowait(1)
        assert q.full()
        with pytest.raises(both.QueueFull):
            q.put_nowait(2)
        return 1
    assert both.run(main()) == 1


def test_getter_waits_for_a_put(both):
    async def producer(q):
        for i in range(3):
            await both.sleep(0.001)
            await q.put(i)

    async def main():
        q = both.Queue()
        both.create_task(producer(q))
        return [await q.get() for _ in range(3)]
    assert both.run(main()) == [0, 1, 2]


def test_putter_waits_for_a_slot(both):
    async def producer(q, out):
        for i in range(4):
            await q.put(i)
            out.append(("put", i))

    async def main():
        q = both.Queue(2)
        out = []
        t = both.create_task(producer(q, out))
        await both.sleep(0.01)
        assert q.full() and len(out) == 2
        got = [await q.get() for _ in range(4)]
        await t
        return got, len(out)
    assert both.run(main()) == ([0, 1, 2, 3], 4)


def test_getters_are_served_in_order(both):
    async def getter(q, out, n):
        out.append((n, await q.get()))

    async def main():
        q = both.Queue()
        out = []
        ts = [both.create_task(getter(q, out, i)) for i in range(3)]
        await both.sleep(0)
        for v in "abc":
            q.put_nowait(v)
        for t in ts:
            await t
        return out
    assert both.run(main()) == [(0, "a"), (1, "b"), (2, "c")]


def test_task_done_and_join(both):
    async def worker(q, out):
        while True:
            item = await q.get()
            await both.sleep(0.001)
            out.append(item)
            q.task_done()

    async def main():
        q = both.Queue()
        out = []
        w = both.create_task(worker(q, out))
        for i in range(5):
            q.put_nowait(i)
        await q.join()
        w.cancel()
        with pytest.raises(ValueError):
            q.task_done()
        return out
    assert both.run(main()) == [0, 1, 2, 3, 4]


def test_join_with_nothing_put_returns_at_once(both):
    async def main():
        await both.Queue().join()
        return 1
    assert both.run(main()) == 1


def test_cancel_while_waiting_in_get(both):
    async def main():
        q = both.Queue()
        t = both.create_task(q.get())
        await both.sleep(0)
        t.cancel()
        with pytest.raises(both.CancelledError):
            await t
        q.put_nowait("kept")
        return q.qsize(), q.get_nowait()
    assert both.run(main()) == (1, "kept")


def test_cancel_while_waiting_in_put(both):
    async def main():
        q = both.Queue(1)
        q.put_nowait("a")
        t = both.create_task(q.put("lost"))
        await both.sleep(0)
        t.cancel()
        with pytest.raises(both.CancelledError):
            await t
        return q.get_nowait(), q.empty()
    assert both.run(main()) == ("a", True)


@pytest.mark.uasyncio
async def test_getter_cancelled_after_being_handed_an_item_loses_nothing():
    q = v3.Queue()
    a = v3.create_task(q.get())
    b = v3.create_task(q.get())
    await v3.sleep(0)
    q.put_nowait("x")      # handed to a, which has not run yet
    a.cancel()
    await v3.sleep(0)
    assert await b == "x"


@pytest.mark.uasyncio
async def test_cancel_while_waiting_in_join():
    q = v3.Queue()
    q.put_nowait(1)
    t = v3.create_task(q.join())
    await v3.sleep(0)
    t.cancel()
    with pytest.raises(v3.CancelledError):
        await t
    q.get_nowait()
    q.task_done()
