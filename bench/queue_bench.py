#!/usr/bin/env python3
"""Queue hand-off between two tasks: uasyncio.queues.Queue vs asyncio.Queue.

    python3 bench/queue_bench.py [--quick] [-n N] [--repeat R] [--cpu C]
                                 [--latency-samples K] [--timeout S] [--json FILE]

Two measurements, each case in its own fresh child process pinned to one CPU
(os.sched_setaffinity), under $PYTHON (default /usr/bin/python3) with the
repository root first on PYTHONPATH so that `import uasyncio` finds the
in-tree build (run `make build` first):

1. Throughput. A producer task puts N integers (`await q.put(i)`), a consumer
   task gets them (`await q.get()`); the figure is N / wall time of the whole
   run, in items per second. Cases: uasyncio.queues.Queue(maxsize=0 and 1) on
   uasyncio's PollEventLoop, and asyncio.Queue(maxsize=0 and 1) on asyncio's
   default loop and on uvloop (Debian package python3-uvloop). maxsize=1 makes
   every item a hand-off between the tasks; maxsize=0 (unbounded) lets the
   producer run ahead. (With uasyncio's Queue(1), a get() that makes room moves
   the blocked putter's item in at once, so the consumer may take two items
   per task switch; asyncio's putter adds its item only when it runs.) The table shows the median of --repeat runs and the
   ratio to asyncio and to uvloop at the same maxsize (>1x: faster).

2. Wake-up latency of a getter blocked in get() after another task calls
   put_nowait(): in loop passes, and in microseconds (median and max of K
   samples). uasyncio passes are counted by a PollEventLoop subclass whose
   wait() (called once per pass) counts calls; 1 means the getter runs in the
   pass right after the put (expected: no polling). asyncio passes are counted
   by a loop subclass wrapping its per-iteration method (private API; left
   blank if that is missing); uvloop's cannot be counted.

Options:
  --quick              small sizes (N=50,000, 1 run, 200 latency samples); about 2 s
  -n N                 items per throughput run (default 1,000,000; about 30 s in all)
  --repeat R           runs per throughput case; the median is shown (default 3)
  --cpu C              CPU the children are pinned to (default 0)
  --latency-samples K  wake-ups measured per loop (default 2000)
  --timeout S          kill a child after S seconds (default 300)
  --json FILE          also write every record as JSON

A case whose loop cannot be set up (uvloop missing, package not built) is
reported as an error row; the others still run. Exit status 1 if any failed.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # leave no __pycache__ in the tree

from common import PYTHON, child_env, fmt_ratio, ratio, render  # noqa: E402

THROUGHPUT_CASES = [
    ("uasyncio", 0), ("uasyncio", 1),
    ("asyncio", 0), ("asyncio", 1),
    ("uvloop", 0), ("uvloop", 1),
]
LATENCY_LOOPS = ["uasyncio", "asyncio", "uvloop"]


# ------------------------------------------------------------------ children

def make_asyncio_loop(kind, count_passes=False):
    import asyncio
    if kind == "uvloop":
        import uvloop
        return uvloop.new_event_loop(), None
    if not count_passes:
        return asyncio.new_event_loop(), None
    counter = [0]
    base = asyncio.SelectorEventLoop
    if not hasattr(base, "_run_once"):
        return asyncio.new_event_loop(), None

    class CountingLoop(base):
        def _run_once(self):
            counter[0] += 1
            return super()._run_once()

    return CountingLoop(), counter


def child_throughput(kind, maxsize, n):
    if kind == "uasyncio":
        import uasyncio
        from uasyncio.queues import Queue
        loop = uasyncio.PollEventLoop()
        q = Queue(maxsize)
    else:
        import asyncio
        loop, _ = make_asyncio_loop(kind)
        asyncio.set_event_loop(loop)
        q = asyncio.Queue(maxsize)

    async def producer():
        for i in range(n):
            await q.put(i)

    async def consumer():
        total = 0
        for _ in range(n):
            total += await q.get()
        return total

    if kind == "uasyncio":
        loop.create_task(producer())
        t0 = time.perf_counter()
        c0 = time.process_time()
        total = loop.run_until_complete(consumer())
    else:
        async def main():
            p = asyncio.ensure_future(producer())
            total = await consumer()
            await p
            return total
        t0 = time.perf_counter()
        c0 = time.process_time()
        total = loop.run_until_complete(main())
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    loop.close()
    if total != n * (n - 1) // 2:
        raise AssertionError("items lost or corrupted: sum %d" % total)
    return {"kind": "throughput", "loop": kind, "maxsize": maxsize, "n": n,
            "wall_s": wall, "cpu_s": cpu, "value": n / wall}


def child_latency(kind, samples):
    """The getter blocks in get(); the putter waits until it is blocked,
    notes the pass count and the time, and put_nowait()s them."""
    if kind == "uasyncio":
        import uasyncio
        from uasyncio.queues import Queue
        counter = [0]

        class CountingLoop(uasyncio.PollEventLoop):
            def wait(self, delay):
                counter[0] += 1
                return super().wait(delay)

        loop = CountingLoop()
        q = Queue()

        def yield_once():
            return uasyncio.sleep_ms(0)
    else:
        import asyncio
        loop, counter = make_asyncio_loop(kind, count_passes=True)
        asyncio.set_event_loop(loop)
        q = asyncio.Queue()

        def yield_once():
            return asyncio.sleep(0)

    passes, delays = [], []

    async def getter():
        for _ in range(samples):
            pass_at_put, t_put = await q.get()
            delays.append(time.perf_counter() - t_put)
            if counter is not None:
                passes.append(counter[0] - pass_at_put)

    async def putter():
        for _ in range(samples):
            for _ in range(3):          # let the getter block in get() again
                await yield_once()
            q.put_nowait((counter[0] if counter else 0, time.perf_counter()))

    if kind == "uasyncio":
        loop.create_task(putter())
        loop.run_until_complete(getter())
    else:
        async def main():
            p = asyncio.ensure_future(putter())
            await getter()
            await p
        loop.run_until_complete(main())
    loop.close()
    us = sorted(d * 1e6 for d in delays)
    rec = {"kind": "latency", "loop": kind, "samples": samples,
           "us_median": statistics.median(us), "us_max": us[-1]}
    if passes:
        rec.update(passes_median=statistics.median(passes), passes_min=min(passes),
                   passes_max=max(passes))
    return rec


def child_main(args):
    os.sched_setaffinity(0, {args.cpu})
    if args.child == "throughput":
        rec = child_throughput(args.loop, args.maxsize, args.n)
    else:
        rec = child_latency(args.loop, args.latency_samples)
    print(json.dumps(rec))


# -------------------------------------------------------------------- parent

def run_child(argv, timeout, what):
    cmd = [PYTHON, os.path.abspath(__file__)] + argv
    try:
        p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return dict(what, error="timed out after %g s" % timeout)
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        tail = (p.stderr.strip().splitlines() or ["exit status %d" % p.returncode])[-1]
        return dict(what, error=tail)
    try:
        return json.loads(lines[-1])
    except ValueError:
        return dict(what, error="unparsable output: %r" % lines[-1][:200])


def fmt_rate(x):
    return "%.3f M" % (x / 1e6) if x >= 1e6 else "%.1f k" % (x / 1e3)


def label(kind, maxsize):
    if kind == "uasyncio":
        return "uasyncio.queues.Queue(%d) on uasyncio" % maxsize
    return "asyncio.Queue(%d) on %s" % (maxsize, kind)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("-n", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--latency-samples", type=int, default=None)
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--child", choices=["throughput", "latency"], help=argparse.SUPPRESS)
    ap.add_argument("--loop", help=argparse.SUPPRESS)
    ap.add_argument("--maxsize", type=int, default=0, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.n is None:
        args.n = 50_000 if args.quick else 1_000_000
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.latency_samples is None:
        args.latency_samples = 200 if args.quick else 2000
    if args.child:
        return child_main(args)

    common = ["--cpu", str(args.cpu), "-n", str(args.n),
              "--latency-samples", str(args.latency_samples)]
    print("queue hand-off: N=%d items, median of %d run(s), CPU %d, %s" % (
        args.n, args.repeat, args.cpu, PYTHON))
    records, failed = [], False

    results = {}
    for kind, maxsize in THROUGHPUT_CASES:
        runs = []
        for _ in range(args.repeat):
            rec = run_child(["--child", "throughput", "--loop", kind, "--maxsize", str(maxsize)] + common,
                            args.timeout, {"kind": "throughput", "loop": kind, "maxsize": maxsize})
            runs.append(rec)
            records.append(rec)
            if "error" in rec:
                break
        bad = [r for r in runs if "error" in r]
        results[kind, maxsize] = bad[0] if bad else dict(
            runs[0], value=statistics.median(r["value"] for r in runs))
        failed |= bool(bad)

    rows = []
    for kind, maxsize in THROUGHPUT_CASES:
        r = results[kind, maxsize]
        if "error" in r:
            rows.append((label(kind, maxsize), "ERROR", r["error"][:60], ""))
            continue
        vs = []
        for ref in ("asyncio", "uvloop"):
            o = results.get((ref, maxsize))
            vs.append("" if ref == kind or not o or "error" in o
                      else fmt_ratio(ratio(r["value"], o["value"])))
        rows.append((label(kind, maxsize), fmt_rate(r["value"]), vs[0], vs[1]))
    print()
    print(render(("case", "items/s", "vs asyncio", "vs uvloop"), rows, group_gap=False))

    rows = []
    for kind in LATENCY_LOOPS:
        rec = run_child(["--child", "latency", "--loop", kind] + common, args.timeout,
                        {"kind": "latency", "loop": kind})
        records.append(rec)
        if "error" in rec:
            failed = True
            rows.append((kind, "ERROR", rec["error"][:60], "", ""))
            continue
        if "passes_median" in rec:
            p = "%g" % rec["passes_median"]
            prange = "%d..%d" % (rec["passes_min"], rec["passes_max"])
        else:
            p, prange = "n/a", ""
        rows.append((kind, p, prange, "%.1f" % rec["us_median"], "%.1f" % rec["us_max"]))
    print()
    print("wake-up of a getter blocked in get() after put_nowait(), %d samples" % args.latency_samples)
    print(render(("loop", "passes (median)", "min..max", "us median", "us max"), rows, group_gap=False))

    if args.json:
        with open(args.json, "w") as f:
            json.dump(records, f, indent=1)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
