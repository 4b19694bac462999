#!/usr/bin/env python3
"""Where a server's time goes: system calls and user-space instructions per
echo round trip (and per HTTP request), each server against the C epoll server.

    python3 bench/cost.py [--servers uasyncio,asyncio,uvloop,c] [--only echo,http]
                          [--rounds N] [--requests N] [--no-callgrind] [--no-strace]
                          [--cpu-split N [--split-rounds N] [--split-requests N]]

Each figure is a difference of two runs of the same server, one with the load
and one without (start-up and tear-down cancel out), divided by the round trips
or requests:

  syscalls   `strace -f -c` on the server: calls of each kind per round trip.
  Ir         valgrind's callgrind on the server: instructions executed in user
             space per round trip (the kernel's share is not counted).

Neither depends on how busy the machine is, so the figures are the same from
run to run (time figures are net.py's job).

  user/sys   with --cpu-split N: the server's user and system CPU time per
             round trip (request), in microseconds, from /proc/PID/stat over
             the loaded run alone, server and load on CPUs 0 and 1; N runs,
             taking turns across the servers, the median of each. This one
             is time, so it moves with the machine: it shows on which side of
             the kernel boundary the difference to the C server lies. The load generators are the C echo
client (bench/c/echo_client.c, -r rounds per connection) and ab.
"""

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from common import ROOT, child_env, csv_list, take_turns  # noqa: E402
from net import (BUILD, ECHO_CONFIGS, HTTP_CONCURRENCY, SERVERS, build_c, ensure_ab, free_port,  # noqa: E402
                 listening, pinned, server_cmd)


def wait_listening(port, proc, limit=120.0):
    deadline = time.monotonic() + limit
    while not listening(port):
        if proc.poll() is not None:
            raise RuntimeError("server exited with status %d" % proc.returncode)
        if time.monotonic() > deadline:
            raise RuntimeError("server not listening after %.0f s" % limit)
        time.sleep(0.1)


def run_once(tool, kind, mode, load):
    """Run one server under `tool` ("strace" or "callgrind") with `load`
    (a function of the port, or None); return the tool's output file."""
    port = free_port()
    out = tempfile.NamedTemporaryFile(prefix="cost-", delete=False).name
    if tool == "strace":
        wrap = ["strace", "-f", "-c", "-o", out]
    else:
        wrap = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out]
    proc = subprocess.Popen(wrap + server_cmd(kind, mode, port), env=child_env(), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_listening(port, proc)
        if load:
            load(port)
    finally:
        # strace writes its summary when the traced server ends: signal the
        # server itself (callgrind's server is the process itself).
        target = proc.pid
        if tool == "strace":
            try:
                with open("/proc/%d/task/%d/children" % (proc.pid, proc.pid)) as f:
                    target = int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                pass
        os.kill(target, signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return out


def strace_counts(path):
    counts = Counter()
    for line in open(path):
        m = re.match(r"\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:(\d+)\s+)?(\w+)$", line)
        if m and m.group(3) != "total":
            counts[m.group(3)] += int(m.group(1))
    os.unlink(path)
    return counts


def callgrind_total(path):
    total = 0
    for line in open(path):
        if line.startswith("totals:") or line.startswith("summary:"):
            total = int(line.split()[1])
    os.unlink(path)
    return total


def echo_load(conns, size, rounds):
    def load(port):
        subprocess.run([os.path.join(BUILD, "echo_client"), "-p", str(port), "-c", str(conns),
                        "-s", str(size), "-r", str(rounds)],
                       stdout=subprocess.DEVNULL, check=True, timeout=600)
    return load


def http_load(conc, n):
    def load(port):
        subprocess.run(["ab", "-q", "-r", "-n", str(n), "-c", str(conc),
                        "http://127.0.0.1:%d/" % port],
                       stdout=subprocess.DEVNULL, check=True, timeout=600)
    return load


def measure(kind, mode, load, units, tools):
    """Per-unit syscall counts and instructions: a loaded run minus an idle one."""
    rec = {}
    if "strace" in tools:
        base = strace_counts(run_once("strace", kind, mode, None))
        loaded = strace_counts(run_once("strace", kind, mode, load))
        rec["syscalls"] = {k: (loaded[k] - base.get(k, 0)) / units
                           for k in loaded if (loaded[k] - base.get(k, 0)) / units >= 0.005}
    if "callgrind" in tools:
        base = callgrind_total(run_once("callgrind", kind, mode, None))
        loaded = callgrind_total(run_once("callgrind", kind, mode, load))
        rec["ir"] = (loaded - base) / units
    return rec


def cpu_times(pid):
    """(user, system) CPU seconds of process pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    hz = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / hz, int(fields[12]) / hz


def cpu_split(kind, mode, load, units):
    """(user, system) microseconds of the server's CPU per unit, for one loaded run."""
    port = free_port()
    proc = subprocess.Popen(server_cmd(kind, mode, port), env=child_env(), cwd=ROOT,
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, preexec_fn=pinned(0))
    try:
        wait_listening(port, proc)
        before = cpu_times(proc.pid)
        load(port)
        after = cpu_times(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    return tuple((a - b) * 1e6 / units for a, b in zip(after, before))


def measure_all(servers, mode, counted, timed, tools):
    """counted: (load, units) for the counts; timed: (runs, load, units) for
    the CPU split (a longer load: /proc's times tick every 10 ms)."""
    res = {s: measure(s, mode, counted[0], counted[1], tools) for s in servers}
    runs, load, units = timed
    if runs:
        splits = take_turns("cpu split", {s: (lambda s=s: cpu_split(s, mode, load, units)) for s in servers},
                            runs, show=lambda r: "user %.1f us, system %.1f us" % r)
        for s in servers:
            res[s]["user_us"] = statistics.median(u for u, _ in splits[s])
            res[s]["sys_us"] = statistics.median(k for _, k in splits[s])
    return res


def table(title, unit, results, servers):
    print("\n%s (per %s)" % (title, unit))
    names = sorted({k for r in results.values() for k in r.get("syscalls", {})},
                   key=lambda k: -max(r.get("syscalls", {}).get(k, 0) for r in results.values()))
    print("| | " + " | ".join(servers) + " |")
    print("|---" * (len(servers) + 1) + "|")
    if any("ir" in r for r in results.values()):
        print("| instructions (user space) | " + " | ".join(
            "%.0f" % results[s]["ir"] if "ir" in results[s] else "-" for s in servers) + " |")
    for key, label in (("user_us", "user CPU, us"), ("sys_us", "system CPU, us")):
        if any(key in r for r in results.values()):
            print("| %s | " % label + " | ".join(
                "%.1f" % results[s][key] if key in results[s] else "-" for s in servers) + " |")
    if names:
        print("| syscalls, all | " + " | ".join(
            "%.2f" % sum(results[s].get("syscalls", {}).values()) for s in servers) + " |")
    for name in names:
        print("| %s | " % name + " | ".join(
            "%.2f" % results[s].get("syscalls", {}).get(name, 0) for s in servers) + " |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", type=lambda s: csv_list(s, SERVERS, "server"), default=list(SERVERS))
    ap.add_argument("--only", type=lambda s: csv_list(s, ("echo", "http"), "test"), default=["echo", "http"])
    ap.add_argument("--rounds", type=int, default=1000, help="echo round trips per connection (default 1000)")
    ap.add_argument("--requests", type=int, default=5000, help="HTTP requests (default 5000)")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--no-callgrind", action="store_true")
    ap.add_argument("--cpu-split", type=int, default=0, metavar="N",
                    help="also user and system CPU per unit, median of N timed runs")
    ap.add_argument("--split-rounds", type=int, default=20000,
                    help="echo round trips per connection in a --cpu-split run (default 20000)")
    ap.add_argument("--split-requests", type=int, default=40000,
                    help="HTTP requests in a --cpu-split run (default 40000)")
    args = ap.parse_args(argv)
    tools = [t for t in ("strace", "callgrind") if not getattr(args, "no_" + t)]
    if args.cpu_split:
        os.sched_setaffinity(0, {1})   # the load generators: off the server's CPU 0
    build_c()
    if "echo" in args.only:
        for conns, size in ECHO_CONFIGS:
            res = measure_all(args.servers, "echo", (echo_load(conns, size, args.rounds), conns * args.rounds),
                              (args.cpu_split, echo_load(conns, size, args.split_rounds),
                               conns * args.split_rounds), tools)
            table("echo %d x %d B" % (conns, size), "round trip", res, args.servers)
    if "http" in args.only:
        ensure_ab()
        for conc in HTTP_CONCURRENCY:
            res = measure_all(args.servers, "http", (http_load(conc, args.requests), args.requests),
                              (args.cpu_split, http_load(conc, args.split_requests), args.split_requests),
                              tools)
            table("HTTP ab -c %d" % conc, "request", res, args.servers)


if __name__ == "__main__":
    main()
