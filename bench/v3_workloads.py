"""The v3 API's benchmark workloads: plain asyncio programs (asyncio.run,
create_task, await asyncio.sleep(0), gather), the same text for every loop,
run on uasyncio.v3, CPython's asyncio and uvloop by `bench/run.py --v3`.

Run as a script it is that runner's child, exactly as workloads.py is for
the 2.0 API: one workload on one loop, one JSON line printed.

    python3 bench/v3_workloads.py WORKLOAD LOOP [--cpu N] [--params JSON] [--no-gc]
"""
import gc
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from workloads import Clock, child, rss_bytes  # noqa: E402

LOOPS = ("v3", "asyncio", "uvloop")


def setup(kind):
    """(the module a program imports as `asyncio` on this loop, its version)."""
    if kind == "v3":
        import uasyncio.v3 as aio
        if getattr(aio, "__file__", None) is None:
            raise ImportError("uasyncio is not built")
        return aio, ".".join(map(str, aio.__version__))
    import asyncio
    if kind == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
        return asyncio, uvloop.__version__
    if kind != "asyncio":
        raise ValueError("unknown loop %r (expected one of %s)" % (kind, ", ".join(LOOPS)))
    return asyncio, sys.version.split()[0]


# ---- the workloads: each takes the asyncio module and returns "value",
# "wall_s" and "cpu_s" (as workloads.py's do) -----------------------------------

def switch(asyncio, tasks, switches):
    """tasks x switches `await asyncio.sleep(0)`, tasks made by create_task:
    task switches per second."""
    async def worker():
        for _ in range(switches):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*[asyncio.create_task(worker()) for _ in range(tasks)])

    with Clock() as c:
        asyncio.run(main())
    return {"value": tasks * switches / c.wall, "wall_s": c.wall, "cpu_s": c.cpu}


def spawn(asyncio, tasks):
    """create_task of `tasks` trivial coroutines, all run to the end: tasks/s."""
    async def trivial():
        pass

    async def main():
        ts = [asyncio.create_task(trivial()) for _ in range(tasks)]
        for t in ts:
            await t

    with Clock() as c:
        asyncio.run(main())
    return {"value": tasks / c.wall, "wall_s": c.wall, "cpu_s": c.cpu}


def task_bytes(asyncio, tasks):
    """RSS growth per Task with `tasks` Tasks parked in sleep(1000): bytes."""
    out = {}

    async def parked():
        await asyncio.sleep(1000)

    async def main():
        gc.collect()
        before = rss_bytes()
        ts = [asyncio.create_task(parked()) for _ in range(tasks)]
        await asyncio.sleep(0.01)   # every task started and parked
        out["value"] = (rss_bytes() - before) / tasks
        out["parked"] = sum(not t.done() for t in ts)
        for t in ts:
            t.cancel()
        await asyncio.sleep(0)

    with Clock() as c:
        asyncio.run(main())
    return dict(out, wall_s=c.wall, cpu_s=c.cpu)


WORKLOADS = {
    "switch": dict(func=switch, metric="task switches/s", unit="/s", higher_is_better=True,
                   full=dict(tasks=1000, switches=1000), quick=dict(tasks=50, switches=50)),
    "spawn": dict(func=spawn, metric="tasks created+run/s", unit="/s", higher_is_better=True,
                  full=dict(tasks=100000), quick=dict(tasks=2000)),
    "task_bytes": dict(func=task_bytes, metric="RSS bytes per parked Task", unit="B",
                       higher_is_better=False, full=dict(tasks=100000), quick=dict(tasks=2000)),
}


if __name__ == "__main__":
    child(sys.argv[1:], WORKLOADS, LOOPS, setup)
