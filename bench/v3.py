"""The v3 API side by side: workloads written once against the asyncio API
(asyncio.run, create_task, await asyncio.sleep(0), gather) and run on
uasyncio.v3, CPython's asyncio and uvloop.

    python3 bench/v3.py [--quick] [--only switch,spawn,task_bytes] [--loops v3,asyncio,uvloop]
                        [--json out.json] [--cpu 0] [--repeat N]

Each workload x loop runs in its own fresh child process pinned to one CPU
(`python3 bench/v3.py --child WORKLOAD LOOP --params JSON` prints one JSON
line), as bench/run.py does for the 2.0 API.
"""
import argparse
import gc
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from common import (ROOT, PYTHON, available, child_env, combine, csv_list,  # noqa: E402
                    fmt_num, fmt_ratio, probe_python, ratio, render, write_json)

LOOPS = ("v3", "asyncio", "uvloop")


def asyncio_api(loop):
    """The module a program imports as `asyncio`, for each loop."""
    if loop == "v3":
        import uasyncio.v3 as aio
        if getattr(aio, "__file__", None) is None:
            raise ImportError("uasyncio is not built")
        return aio
    import asyncio
    if loop == "uvloop":
        import uvloop
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return asyncio


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---- the workloads: plain asyncio programs, the same text for every loop ------

def switch(asyncio, tasks, switches):
    """tasks x switches `await asyncio.sleep(0)`, tasks made by create_task:
    task switches per second."""
    async def worker():
        for _ in range(switches):
            await asyncio.sleep(0)

    async def main():
        await asyncio.gather(*[asyncio.create_task(worker()) for _ in range(tasks)])

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    return {"value": tasks * switches / wall, "wall_s": wall}


def spawn(asyncio, tasks):
    """create_task of `tasks` trivial coroutines, all run to the end: tasks/s."""
    async def trivial():
        pass

    async def main():
        ts = [asyncio.create_task(trivial()) for _ in range(tasks)]
        for t in ts:
            await t

    t0 = time.perf_counter()
    asyncio.run(main())
    wall = time.perf_counter() - t0
    return {"value": tasks / wall, "wall_s": wall}


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

    t0 = time.perf_counter()
    asyncio.run(main())
    out["wall_s"] = time.perf_counter() - t0
    return out


WORKLOADS = {
    "switch": dict(func=switch, metric="task switches/s", unit="/s", higher_is_better=True,
                   full=dict(tasks=1000, switches=1000), quick=dict(tasks=50, switches=50)),
    "spawn": dict(func=spawn, metric="tasks created+run/s", unit="/s", higher_is_better=True,
                  full=dict(tasks=100000), quick=dict(tasks=2000)),
    "task_bytes": dict(func=task_bytes, metric="RSS bytes per parked Task", unit="B",
                       higher_is_better=False, full=dict(tasks=100000), quick=dict(tasks=2000)),
}


def child(workload, loop, params, cpu):
    os.sched_setaffinity(0, {cpu})
    sys.path.insert(0, ROOT)
    aio = asyncio_api(loop)
    gc.collect()
    c0 = time.process_time()
    rec = WORKLOADS[workload]["func"](aio, **params)
    rec.update(cpu_s=time.process_time() - c0, workload=workload, loop=loop, params=params,
               python=sys.version.split()[0])
    sys.stdout.write(json.dumps(rec) + "\n")
    sys.stdout.flush()
    os._exit(0)


# ---- the runner ------------------------------------------------------------------

def probe(loop):
    code = ("import sys; sys.path[:0] = [%r, %r]; import v3\n"
            "m = v3.asyncio_api(%r); print(getattr(m, '__file__', '') or '-')" % (ROOT, HERE, loop))
    return probe_python(code)


def run_child(workload, loop, params, cpu, timeout):
    cmd = [PYTHON, os.path.abspath(__file__), "--child", workload, loop, "--params", json.dumps(params),
           "--cpu", str(cpu)]
    try:
        p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"workload": workload, "loop": loop, "params": params, "error": "timed out"}
    lines = p.stdout.strip().splitlines()
    if p.returncode or not lines:
        return {"workload": workload, "loop": loop, "params": params,
                "error": "exit status %d" % p.returncode, "stderr": p.stderr[-2000:]}
    return json.loads(lines[-1])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke run")
    ap.add_argument("--only", type=lambda s: csv_list(s, list(WORKLOADS), "workload"),
                    default=list(WORKLOADS))
    ap.add_argument("--loops", type=lambda s: csv_list(s, LOOPS, "loop"), default=list(LOOPS))
    ap.add_argument("--json", metavar="FILE")
    ap.add_argument("--cpu", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--timeout", type=float, default=300.0)
    ap.add_argument("--child", nargs=2, metavar=("WORKLOAD", "LOOP"), help=argparse.SUPPRESS)
    ap.add_argument("--params", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args.child[0], args.child[1], json.loads(args.params), args.cpu)

    loops, skipped = available(args.loops, probe, "skipping %s: cannot set it up: %s%s")
    results = []
    for name in args.only:
        params = WORKLOADS[name]["quick" if args.quick else "full"]
        for loop in loops:
            rec = combine([run_child(name, loop, params, args.cpu, args.timeout)
                           for _ in range(max(1, args.repeat))])
            results.append(rec)
    rows = []
    for name in args.only:
        spec = WORKLOADS[name]
        by = {r["loop"]: r for r in results if r["workload"] == name}
        ref = {k: by[k]["value"] for k in ("asyncio", "uvloop") if k in by and "error" not in by[k]}
        for loop in loops:
            r = by[loop]
            if "error" in r:
                rows.append((name, loop, "ERROR", r["error"], "", ""))
                continue
            vs = [fmt_ratio(ratio(r["value"], ref[k], spec["higher_is_better"])) if k in ref and k != loop
                  else "" for k in ("asyncio", "uvloop")]
            rows.append((name, loop, fmt_num(r["value"]), spec["unit"], vs[0], vs[1]))
    print(render(("workload", "loop", "value", "unit", "vs asyncio", "vs uvloop"), rows, {0, 1, 3}))
    for name in args.only:
        print("  %-10s %s (%s is better)" % (name, WORKLOADS[name]["metric"],
                                            "higher" if WORKLOADS[name]["higher_is_better"] else "lower"))
    if args.json:
        write_json(args.json, {"python": PYTHON, "quick": args.quick, "loops": loops, "skipped": skipped},
                   results)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
