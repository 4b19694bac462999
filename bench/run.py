#!/usr/bin/env python3
"""Compare uasyncio, asyncio and uvloop on the same workloads: the 2.0 API's
(workloads.py), or with --v3 the v3 API's (v3_workloads.py: uasyncio.v3,
asyncio and uvloop running one asyncio program).

Every workload x loop runs in its own fresh child process (so RSS and CPU
figures are its own), pinned to one CPU, and reports one JSON line. This
script collects them, prints a table and optionally writes JSON.

    python3 bench/run.py [--v3] [--quick] [--only switch,spawn] [--loops uasyncio,asyncio]
                         [--json out.json] [--cpu 0] [--repeat N] [--timeout 120]

The children run under $PYTHON (default /usr/bin/python3) with the
repository root first on PYTHONPATH, so `import uasyncio` finds the in-tree
build.
"""

import argparse
import importlib
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # leave no __pycache__ in the tree

from common import (ROOT, PYTHON, available, child_env, combine, csv_list,  # noqa: E402
                    fmt_num, fmt_ratio, probe_python, ratio, render, take_turns, write_json)

# The two sets of workloads (modules beside this file): each has LOOPS,
# WORKLOADS, setup(loop) and runs as the child script.
SUITES = {"2.0": "workloads", "v3": "v3_workloads"}


def probe(suite, loop):
    """(True, description) if the child interpreter can set up `loop`,
    else (False, why not)."""
    code = ("import sys; sys.path[:0] = [%r, %r]; import %s\n"
            "api, version = %s.setup(%r)\n"
            "print(version or '-', getattr(getattr(api, 'module', api), '__file__', ''))"
            % (ROOT, HERE, suite, suite, loop))
    return probe_python(code)


def run_child(suite, workload, loop, params, cpu, timeout, no_gc=False):
    """Run one workload on one loop in a fresh process; return its record."""
    cmd = [PYTHON, os.path.join(HERE, suite + ".py"), workload, loop, "--cpu", str(cpu),
           "--params", json.dumps(params)] + (["--no-gc"] if no_gc else [])
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, env=child_env(), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        stderr = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        return {"workload": workload, "loop": loop, "params": params,
                "error": "timed out after %g s" % timeout, "stderr": stderr[-2000:]}
    elapsed = time.perf_counter() - t0
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return {"workload": workload, "loop": loop, "params": params,
                "error": "exit status %d" % p.returncode,
                "stdout": p.stdout[-2000:], "stderr": p.stderr[-2000:]}
    try:
        rec = json.loads(lines[-1])
    except ValueError:
        return {"workload": workload, "loop": loop, "params": params,
                "error": "unparsable output", "stdout": p.stdout[-2000:], "stderr": p.stderr[-2000:]}
    rec["process_s"] = elapsed
    if p.stderr.strip():
        rec["stderr"] = p.stderr[-2000:]
    return rec


def table(results, loops, workloads):
    """The results as an aligned text table, one row per workload x loop."""
    head = ("workload", "loop", "value", "unit", "vs asyncio", "vs uvloop",
            "wall s", "cpu s", "maxrss MB", "gc runs")
    rows = []
    for name in dict.fromkeys(r["workload"] for r in results):
        spec = workloads[name]
        by_loop = {r["loop"]: r for r in results if r["workload"] == name}
        ref = {k: by_loop[k].get("value") for k in ("asyncio", "uvloop")
               if k in by_loop and "error" not in by_loop[k]}
        for loop in loops:
            r = by_loop.get(loop)
            if r is None:
                continue
            if "error" in r:
                rows.append((name, loop, "ERROR", r["error"], "", "", "", "", "", ""))
                continue
            v = r["value"]
            vs = [fmt_ratio(ratio(v, ref.get(k), spec["higher_is_better"]))
                  if k in ref and k != loop else "" for k in ("asyncio", "uvloop")]
            rows.append((name, loop, fmt_num(v), spec["unit"], vs[0], vs[1],
                         "%.3f" % r["wall_s"], "%.3f" % r["cpu_s"],
                         "%.1f" % (r["maxrss_kb"] / 1024), r.get("gc_collections", "-")))
    return render(head, rows, {0, 1, 3})   # text columns left, numbers right-aligned


def legend(names, workloads):
    out = ["value: the headline figure of each workload:"]
    for name in names:
        spec = workloads[name]
        out.append("  %-10s %s (%s is better)" % (
            name, spec["metric"], "higher" if spec["higher_is_better"] else "lower"))
    out.append("vs X: how many times better than loop X on that figure (>1x better, <1x worse).")
    out.append("wall s / cpu s: wall and process CPU time of the measured section;"
               " maxrss: peak RSS of the child process;\n"
               "gc runs: cyclic garbage collector passes during the measured run.")
    return "\n".join(out)


# ---------------------------------------------------------------------- main

def main(argv=None):
    # --v3 first: the other options' choices are those of its workloads.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--v3", action="store_true")
    suite = SUITES["v3" if pre.parse_known_args(argv)[0].v3 else "2.0"]
    mod = importlib.import_module(suite)
    workloads, all_loops = mod.WORKLOADS, mod.LOOPS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--v3", action="store_true",
                    help="the v3 API's workloads (v3_workloads.py) on uasyncio.v3, asyncio and uvloop")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke run (< 30 s)")
    ap.add_argument("--only", type=lambda s: csv_list(s, list(workloads), "workload"),
                    default=list(workloads), metavar="NAME[,NAME]",
                    help="workloads to run (default: %s)" % ",".join(workloads))
    ap.add_argument("--loops", type=lambda s: csv_list(s, all_loops, "loop"),
                    default=list(all_loops), metavar="LOOP[,LOOP]",
                    help="loops to compare (default: %s)" % ",".join(all_loops))
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--cpu", type=int, default=0, help="CPU to pin the children to (default 0)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per workload x loop; the median value is reported (default 1)")
    ap.add_argument("--no-gc", action="store_true",
                    help="disable Python's cyclic GC in the children (isolates loop overhead)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds before a child is killed (default 120)")
    args = ap.parse_args(argv)

    if args.cpu not in os.sched_getaffinity(0):
        ap.error("CPU %d is not available to this process (allowed: %s)"
                 % (args.cpu, sorted(os.sched_getaffinity(0))))

    print("python: %s   workloads: %s   pinned to CPU %d   sizes: %s   cyclic GC: %s"
          % (PYTHON, suite + ".py", args.cpu, "quick" if args.quick else "full", "off" if args.no_gc else "on"))
    loops, skipped = available(args.loops, lambda loop: probe(suite, loop),
                               "skipping %s: cannot set it up: %s%s")
    if not loops:
        print("no loop to run")
        return 1

    t_start = time.time()
    results = []
    for name in args.only:
        params = workloads[name]["quick" if args.quick else "full"]
        runs = take_turns(name, {loop: (lambda loop=loop: run_child(suite, name, loop, params, args.cpu,
                                                                    args.timeout, args.no_gc))
                                 for loop in loops}, max(1, args.repeat))
        results.extend(combine(runs[loop]) for loop in loops)

    print()
    print(table(results, loops, workloads))
    print()
    print(legend(args.only, workloads))

    errors = [r for r in results if "error" in r]
    for r in errors:
        print("\n%s on %s failed: %s" % (r["workload"], r["loop"], r["error"]))
        for stream in ("stdout", "stderr"):
            if r.get(stream, "").strip():
                print("  %s:\n    %s" % (stream, r[stream].strip().replace("\n", "\n    ")))
    warned = [r for r in results if "error" not in r and r.get("stderr")]
    for r in warned:
        print("\n%s on %s wrote to stderr:\n    %s"
              % (r["workload"], r["loop"], r["stderr"].strip().replace("\n", "\n    ")))

    print("\ntotal %.1f s" % (time.time() - t_start))

    if args.json:
        write_json(args.json, {
            "python": PYTHON, "suite": suite, "cpu": args.cpu, "quick": args.quick, "repeat": args.repeat,
            "gc": not args.no_gc,
            "loops": loops, "skipped": skipped, "workloads": args.only,
        }, results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
