"""Benchmark workloads, one per function, run against one event loop.

Used two ways:
  * imported by run.py, which only reads WORKLOADS (names, units, sizes);
  * run as a script in a fresh child process, which runs one workload on one
    loop and prints one JSON line (child(), which v3_workloads.py, the v3
    API's workloads, runs too):

        python workloads.py WORKLOAD LOOP [--cpu N] [--params JSON] [--no-gc]

The loop differences (how to make a loop, sleep, create a task) live in the
Loop adapter below, so every workload is written once for all loops.
"""

import gc
import json
import os
import resource
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

LOOPS = ("uasyncio", "asyncio", "uvloop")


# ---------------------------------------------------------------- loop adapter

class Loop:
    """What a workload needs from an event loop, for one loop kind.

    sleep(secs)   awaitable: sleep(0) is the plain task switch.
    msleep(arg)   awaitable: the loop's cheapest way to sleep some ms;
                  ms(n) converts n milliseconds to its argument, so hot loops
                  can precompute arguments and pay no conversion per call.
    spawn(coro)   schedule a coroutine as a task. asyncio keeps only weak
                  references to tasks, so the adapter holds them in a list;
                  uasyncio's create_task returns None and nothing is held.
    run(coro)     run the loop until coro finishes; returns its result.
    """

    def __init__(self, kind):
        self.kind = kind
        self.tasks = []
        if kind == "uasyncio":
            import uasyncio
            if getattr(uasyncio, "__file__", None) is None:
                # The bare source directory imports as a namespace package.
                raise ImportError("uasyncio is not built (no uasyncio/__init__.py in %s)" % ROOT)
            self.module = uasyncio
            self.loop = uasyncio.get_event_loop()
            self.sleep = uasyncio.sleep
            self.msleep = uasyncio.sleep_ms
            self.ms = int
            self.spawn = self.loop.create_task
        elif kind in ("asyncio", "uvloop"):
            import asyncio
            if kind == "uvloop":
                import uvloop
                self.module = uvloop
                self.loop = uvloop.new_event_loop()
            else:
                self.module = asyncio
                self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self.sleep = asyncio.sleep
            self.msleep = asyncio.sleep
            self.ms = lambda n: n / 1000
            create_task = self.loop.create_task
            keep = self.tasks.append
            self.spawn = lambda coro: keep(create_task(coro))
        else:
            raise ValueError("unknown loop %r (expected one of %s)" % (kind, ", ".join(LOOPS)))

    def run(self, coro):
        return self.loop.run_until_complete(coro)

    def version(self):
        if self.kind == "asyncio":
            return sys.version.split()[0]   # asyncio ships with Python
        return getattr(self.module, "__version__", None)


class Counter:
    """A shared counter: tasks bump it, main() polls it.

    uasyncio has no gather, so every loop waits for its tasks the same way:
    each task updates the counter and main() sleeps until it hits a target.
    """

    __slots__ = ("n",)

    def __init__(self, n=0):
        self.n = n


async def wait_until(counter, target, pause):
    """Poll until counter.n == target, awaiting pause() between checks."""
    while counter.n != target:
        await pause()


def rss_bytes():
    """Resident set size now, from /proc/self/statm (field 2, in pages)."""
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def gc_collections():
    """Cyclic GC passes so far, all generations (a run with many live
    objects can spend much of its time in them)."""
    return sum(g["collections"] for g in gc.get_stats())


class Clock:
    """Wall and process CPU time (user + sys) around a measured section."""

    def __enter__(self):
        self.wall0 = time.perf_counter()
        self.cpu0 = time.process_time()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.wall0
        self.cpu = time.process_time() - self.cpu0


# ------------------------------------------------------------------ workloads
#
# Each takes (Loop, **params) and returns a dict with at least "value" (the
# headline figure, in the unit given in WORKLOADS) plus "wall_s" and "cpu_s"
# of the measured section.

def switch(lp, tasks, switches):
    """tasks x switches `await sleep(0)`: task switches per second."""
    sleep = lp.sleep
    done = Counter()

    async def worker():
        for _ in range(switches):
            await sleep(0)
        done.n += 1

    async def main():
        for _ in range(tasks):
            lp.spawn(worker())
        # sleep(0) polling costs one extra switch per round of all tasks
        # (0.1% at 1000 tasks) and adds no timer latency at the end.
        await wait_until(done, tasks, lambda: sleep(0))

    with Clock() as c:
        lp.run(main())
    total = tasks * switches
    return {"value": total / c.wall, "switches": total, "wall_s": c.wall, "cpu_s": c.cpu}


def timers(lp, tasks, steps, max_ms):
    """Each task sleeps `steps` times, ((i + k) % max_ms) + 1 ms at step k:
    process CPU seconds per 1000 timer operations."""
    msleep = lp.msleep
    args = [lp.ms(ms) for ms in range(1, max_ms + 1)]
    done = Counter()

    async def worker(i):
        for k in range(steps):
            await msleep(args[(i + k) % max_ms])
        done.n += 1

    async def main():
        for i in range(tasks):
            lp.spawn(worker(i))
        # A coarse poll: the figure is CPU, not wall, and a 10 ms poll adds
        # only wall/10ms extra timers (a few dozen against 200,000).
        poll = lp.ms(10)
        await wait_until(done, tasks, lambda: msleep(poll))

    with Clock() as c:
        lp.run(main())
    ops = tasks * steps
    return {"value": c.cpu / ops * 1000, "timer_ops": ops, "wall_s": c.wall, "cpu_s": c.cpu}


def spawn(lp, tasks):
    """Create `tasks` trivial tasks and run them all to completion: tasks/s."""
    done = Counter()

    async def trivial():
        done.n += 1     # the only work: lets main() see that all have run

    async def main():
        for _ in range(tasks):
            lp.spawn(trivial())
        # Tasks run in FIFO order, so by the time main() is back from one
        # sleep(0) all of them have run: normally one poll, exact timing.
        await wait_until(done, tasks, lambda: lp.sleep(0))

    with Clock() as c:
        lp.run(main())
    return {"value": tasks / c.wall, "tasks": tasks, "wall_s": c.wall, "cpu_s": c.cpu}


def memory(lp, tasks):
    """RSS growth per task with `tasks` tasks parked in sleep(1000): bytes."""
    sleep = lp.sleep
    started = Counter()

    async def parked():
        started.n += 1
        await sleep(1000)

    async def main():
        for _ in range(tasks):
            lp.spawn(parked())
        pause = lp.ms(1)
        await wait_until(started, tasks, lambda: lp.msleep(pause))

    before = rss_bytes()   # after main()'s gc.collect(): a settled heap
    with Clock() as c:
        lp.run(main())
    after = rss_bytes()
    return {"value": (after - before) / tasks, "tasks": tasks,
            "rss_before": before, "rss_after": after,
            "wall_s": c.wall, "cpu_s": c.cpu}


def idle(lp, seconds):
    """One task sleeping `seconds`: CPU seconds the process used meanwhile."""
    async def main():
        await lp.sleep(seconds)

    with Clock() as c:
        lp.run(main())
    return {"value": c.cpu, "slept_s": seconds, "wall_s": c.wall, "cpu_s": c.cpu}


# name -> function, headline metric, unit, whether higher is better, and the
# parameters for a full run and for a --quick smoke run.
WORKLOADS = {
    "switch": dict(func=switch, metric="task switches/s", unit="/s", higher_is_better=True,
                   full=dict(tasks=1000, switches=1000),
                   quick=dict(tasks=300, switches=300)),
    "timers": dict(func=timers, metric="CPU s per 1000 timer ops", unit="s", higher_is_better=False,
                   full=dict(tasks=10000, steps=20, max_ms=20),
                   quick=dict(tasks=2000, steps=20, max_ms=20)),
    "spawn": dict(func=spawn, metric="tasks spawned+run/s", unit="/s", higher_is_better=True,
                  full=dict(tasks=100000),
                  quick=dict(tasks=20000)),
    "memory": dict(func=memory, metric="RSS bytes per parked task", unit="B", higher_is_better=False,
                   full=dict(tasks=100000),
                   quick=dict(tasks=20000)),
    "idle": dict(func=idle, metric="CPU s while sleeping", unit="s", higher_is_better=False,
                 full=dict(seconds=3.0),
                 quick=dict(seconds=0.5)),
}


def setup(kind):
    """(what the workloads above take: the Loop adapter, the loop's version)."""
    lp = Loop(kind)
    return lp, lp.version()


# ---------------------------------------------------------------- child entry

def child(argv, workloads, loops, setup):
    """A child of bench/run.py: run one workload of `workloads` on one of
    `loops`, made by setup(kind) -> (what the workload takes, version); print
    its record as one JSON line. Shared by this file and v3_workloads.py."""
    import argparse
    ap = argparse.ArgumentParser(description="Run one workload on one loop; print one JSON line.")
    ap.add_argument("workload", choices=sorted(workloads))
    ap.add_argument("loop", choices=loops)
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin this process to")
    ap.add_argument("--params", default=None, help="workload parameters as JSON (default: full sizes)")
    ap.add_argument("--no-gc", action="store_true", help="disable the cyclic garbage collector")
    args = ap.parse_args(argv)

    # Pin before importing or building anything, so the whole run is on one CPU.
    os.sched_setaffinity(0, {args.cpu})
    # The in-tree build must win over anything installed.
    sys.path.insert(0, ROOT)

    spec = workloads[args.workload]
    params = json.loads(args.params) if args.params else spec["full"]
    if args.no_gc:
        gc.disable()
    api, version = setup(args.loop)
    gc.collect()           # start every workload from a settled heap
    gc0 = gc_collections()
    result = spec["func"](api, **params)
    result.update(
        gc_collections=gc_collections() - gc0, gc_enabled=gc.isenabled(),
        workload=args.workload, loop=args.loop, params=params, cpu=args.cpu,
        loop_version=version, python=sys.version.split()[0],
        maxrss_kb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    )
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
    # Skip interpreter teardown: the memory workload leaves 100k tasks
    # pending, and destroying them (with asyncio's warnings) measures nothing.
    os._exit(0)


if __name__ == "__main__":
    child(sys.argv[1:], WORKLOADS, LOOPS, setup)
