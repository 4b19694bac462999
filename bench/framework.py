#!/usr/bin/env python3
"""The real-framework benchmark: one HTTP/1.1 application of the kind small
web frameworks run (bench/servers/framework_app.py: request line and headers
parsed in Python, a router, an `async def` handler and a plain `def` handler
run through `run_in_executor`), on uasyncio.v3, CPython's asyncio and
uvloop, under ApacheBench, keep-alive off and on.

    python3 bench/framework.py [--quick] [--loops v3,asyncio,uvloop] [--concurrency 10]
                               [--json out.json] [--server-cpu 0] [--client-cpu 1] [--repeat N]

The figure is requests per server CPU-second (the server process's user +
system time, all its threads: the executor's too), as in net.py, whose
server, ab and table helpers this uses. A loop without `get_running_loop()`
and `Loop.run_in_executor` skips the `def` handler's rows, saying so.
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # leave no __pycache__ in the tree

from common import (PYTHON, available, combine, csv_list, fmt_num, fmt_ratio,  # noqa: E402
                    probe_python, ratio, render, take_turns, write_json)
from net import Server, ServerError, ab_run, ensure_ab, server_info  # noqa: E402

APP = os.path.join(HERE, "servers", "framework_app.py")
LOOPS = ("v3", "asyncio", "uvloop")
# (handler, URL path): the same answer, "Hello, bench!", from each.
HANDLERS = (("async def", "/hello/bench"), ("def", "/sync/hello/bench"))
SIZES = {"full": 20000, "quick": 2000}


def probe(loop):
    """(True, description) if the app can run on `loop`; for v3 the
    description says whether it has what the def handler needs."""
    code = {
        "v3": "import uasyncio.v3 as m\n"
              "ok = hasattr(m, 'get_running_loop') and hasattr(m.Loop, 'run_in_executor')\n"
              "m.__version__ = 'v3' + ('' if ok else ' (no run_in_executor)')",
        "asyncio": "import asyncio as m, sys; m.__version__ = sys.version.split()[0]",
        "uvloop": "import uvloop as m",
    }[loop] + "\nprint(getattr(m, '__version__', '-'), getattr(m, '__file__', '') or '')"
    return probe_python(code)


def framework_test(loop, handler, path, keepalive, n, args):
    config = "%s%s" % (handler, ", keep-alive" if keepalive else "")
    rec = {"test": "framework", "config": config, "server": loop, "handler": handler,
           "keepalive": keepalive, "concurrency": args.concurrency, "requests": n}
    try:
        server = Server(loop, "http", args.server_cpu, args.timeout, program=APP)
    except ServerError as e:
        return dict(rec, error=str(e))
    try:
        return ab_run(server, rec, n, args.concurrency, path, args, keepalive)
    finally:
        server_info(server, server.stop(), rec)


def table(results, loops):
    head = ("handler", "loop", "rate", "unit", "per srv CPU-s", "vs asyncio", "vs uvloop",
            "srv CPU", "others", "failed", "srv maxrss MB")
    rows = []
    for config in dict.fromkeys(r["config"] for r in results):
        group = {r["server"]: r for r in results if r["config"] == config}
        ref = {k: group[k]["per_cpu_s"] for k in ("asyncio", "uvloop")
               if k in group and group[k].get("per_cpu_s")}
        for loop in loops:
            r = group.get(loop)
            if r is None:
                continue
            if "value" not in r:
                rows.append((config, loop, "ERROR", "(below)", "", "", "", "", "", "", ""))
                continue
            busy = r["server_cpu_s"] / r["seconds"] if r.get("seconds") else None
            rows.append((
                config, loop + (" (!)" if "error" in r else ""), fmt_num(r["value"]), r["unit"],
                fmt_num(r["per_cpu_s"]),
                *(fmt_ratio(ratio(r["per_cpu_s"], ref.get(k))) if k != loop else "" for k in ("asyncio", "uvloop")),
                "-" if busy is None else "%.0f%%" % (100 * busy),
                "-" if r.get("others_cpu") is None else "%.0f%%" % (100 * r["others_cpu"]),
                r.get("failed", "-"),
                "%.1f" % (r["server_maxrss_kb"] / 1024) if "server_maxrss_kb" in r else "-"))
    return render(head, rows, {0, 1, 3})


LEGEND = """\
handler: the route ab asks for, answered by an `async def` handler, or by a
  plain `def` one through loop.run_in_executor(None, ...); keep-alive: ab -k
  (every request on a kept connection), else one request per connection.
rate: requests/s (ab's). per srv CPU-s: requests per CPU-second the server
  process used (user + system, all threads): efficiency, whether or not the
  server was saturated. vs X: this loop's figure / X's (>1x: better).
srv CPU: server CPU time / wall time (100% = one CPU). others: CPU used by
  the rest of the machine meanwhile, in % of one CPU (above a few %, that run
  was disturbed). failed: ab's failed requests + non-2xx answers."""


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="ab -n %d instead of %d" % (SIZES["quick"], SIZES["full"]))
    ap.add_argument("--loops", type=lambda s: csv_list(s, LOOPS, "loop"), default=list(LOOPS),
                    metavar="L[,L]", help="loops to compare (default: %s)" % ",".join(LOOPS))
    ap.add_argument("--concurrency", type=int, default=10, help="ab -c (default 10)")
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU for the servers (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1, help="CPU for ab and this script (default 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per test x loop; the median is reported")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds before ab is given up on")
    args = ap.parse_args(argv)

    allowed = os.sched_getaffinity(0)
    for what in ("server_cpu", "client_cpu"):
        if getattr(args, what) not in allowed:
            ap.error("CPU %d is not available (allowed: %s)" % (getattr(args, what), sorted(allowed)))
    os.sched_setaffinity(0, {args.client_cpu})
    n = SIZES["quick" if args.quick else "full"]
    print("python: %s   server CPU %d, client CPU %d   ab -n %d -c %d"
          % (PYTHON, args.server_cpu, args.client_cpu, n, args.concurrency))
    loops, skipped = available(args.loops, probe, "skipping %s: %s%s")
    why = ensure_ab()
    if why or not loops:
        print(why or "nothing to run")
        return 1

    no_executor = [lp for lp in loops if lp == "v3" and "no run_in_executor" in probe(lp)[1]]
    for lp in no_executor:
        print("note: %s has no get_running_loop().run_in_executor yet: its def-handler rows are left out" % lp)
        skipped["%s def" % lp] = "no run_in_executor"

    t_start = time.time()
    results = []
    for handler, path in HANDLERS:
        for keepalive in (False, True):
            name = "%s%s" % (handler, ", keep-alive" if keepalive else "")
            runners = {lp: (lambda lp=lp, h=handler, p=path, k=keepalive:
                            framework_test(lp, h, p, k, n, args))
                       for lp in loops if not (handler == "def" and lp in no_executor)}
            runs = take_turns(name, runners, max(1, args.repeat))
            results.extend(combine(runs[lp], median_value=False) for lp in runners)

    print()
    print(table(results, loops))
    print()
    print(LEGEND)
    errors = [r for r in results if "error" in r]
    for r in errors:
        print("\n%s on %s failed: %s" % (r["config"], r["server"], r["error"]))
        if r.get("server_output"):
            print("  server output:\n    %s" % r["server_output"].replace("\n", "\n    "))
    print("\ntotal %.1f s" % (time.time() - t_start))
    if args.json:
        write_json(args.json, {
            "python": PYTHON, "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "quick": args.quick, "repeat": args.repeat, "requests": n, "concurrency": args.concurrency,
            "loops": loops, "skipped": skipped,
        }, results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
