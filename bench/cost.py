#!/usr/bin/env python3
"""Where a server's time goes: system calls and user-space instructions per
echo round trip (and per HTTP request), each server against the C epoll server.

    python3 bench/cost.py [--servers uasyncio,asyncio,uvloop,c] [--only echo,http]
                          [--rounds N] [--requests N] [--no-callgrind] [--no-strace]

Each figure is a difference of two runs of the same server, one with the load
and one without (start-up and tear-down cancel out), divided by the round trips
or requests:

  syscalls   `strace -f -c` on the server: calls of each kind per round trip.
  Ir         valgrind's callgrind on the server: instructions executed in user
             space per round trip (the kernel's share is not counted).

Neither depends on how busy the machine is, so the figures are the same from
run to run (time figures are net.py's job). The load generators are the C echo
client (bench/c/echo_client.c, -r rounds per connection) and ab.
"""

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True

from common import ROOT, child_env, csv_list  # noqa: E402
from net import (BUILD, ECHO_CONFIGS, HTTP_CONCURRENCY, SERVERS, build_c, ensure_ab, free_port,  # noqa: E402
                 listening, server_cmd)


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


def table(title, unit, results, servers):
    print("\n%s (per %s)" % (title, unit))
    names = sorted({k for r in results.values() for k in r.get("syscalls", {})},
                   key=lambda k: -max(r.get("syscalls", {}).get(k, 0) for r in results.values()))
    print("| | " + " | ".join(servers) + " |")
    print("|---" * (len(servers) + 1) + "|")
    if any("ir" in r for r in results.values()):
        print("| instructions (user space) | " + " | ".join(
            "%.0f" % results[s]["ir"] if "ir" in results[s] else "-" for s in servers) + " |")
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
    args = ap.parse_args(argv)
    tools = [t for t in ("strace", "callgrind") if not getattr(args, "no_" + t)]
    build_c()
    if "echo" in args.only:
        for conns, size in ECHO_CONFIGS:
            res = {s: measure(s, "echo", echo_load(conns, size, args.rounds), conns * args.rounds, tools)
                   for s in args.servers}
            table("echo %d x %d B" % (conns, size), "round trip", res, args.servers)
    if "http" in args.only:
        ensure_ab()
        for conc in HTTP_CONCURRENCY:
            res = {s: measure(s, "http", http_load(conc, args.requests), args.requests, tools)
                   for s in args.servers}
            table("HTTP ab -c %d" % conc, "request", res, args.servers)


if __name__ == "__main__":
    main()
