#!/usr/bin/env python3
"""Long load runs against the uasyncio stream servers: the loop loses
nothing and leaks nothing.

    python3 reliability/load.py [--quick] [--only conns,http] [--json FILE]
                                [--servers uasyncio,asyncio,uvloop]
                                [--conns N] [--rounds N] [--warmup-rounds N]
                                [--roundtrips N] [--requests N] [--concurrency N]

Two tests, each against a fresh server process (bench/servers/
uasyncio_server.py; with --servers also asyncio_server.py on asyncio's loop
or uvloop, judged by the same targets) pinned to one CPU, its load generator
pinned to another:

  conns  10,000 TCP connections held open at once against the echo server,
         each doing 20 round trips of a 100..1000-byte line, every byte
         checked by the C client (bench/c/echo_client.c); the same round
         repeated: warm-up rounds until the server's RSS has settled, then
         3 measured rounds. While every connection is held the server must
         hold one fd per connection; after each round its fds must be back
         to the value before and its memory flat.
  http   the HTTP/1.0 server (one request per connection) under ApacheBench:
         1,000,000 requests at concurrency 100 after a 20,000-request
         warm-up; no failed or non-2xx request, every body received, fds
         back and memory flat.

Memory is checked two ways. RSS (from /proc) is what the machine sees, but
CPython's allocators keep freed memory for reuse, so RSS moves in steps of
whole 1 MiB obmalloc arenas whatever the program does: after a burst of
10,000 connections the RSS left behind climbs by about one arena a round
for several rounds, up to the working set. The server also reports its own
live Python blocks and C heap bytes in use (--stats-port, see
bench/servers/common.py), which do not move unless something is kept.

Prints a table and one JSON line per test and server, then, for more than
one server, a table comparing them; exit status 1 if any target is missed.
"""

import argparse
import json
import os
import re
import resource
import select
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
BENCH = os.path.join(ROOT, "bench")
sys.dont_write_bytecode = True   # leave no __pycache__ in the tree
if BENCH not in sys.path:
    sys.path.insert(0, BENCH)

import net  # noqa: E402
from common import (PYTHON, available, csv_list, fmt_num, fmt_ratio, ratio,  # noqa: E402
                    render, write_json)
from net import (AB_FIELDS, PY_SERVERS, Server, ServerError, ensure_ab, free_port,  # noqa: E402
                 pinned, proc_fds, proc_rss, raise_nofile, settle)

# Our own copy of the client: bench/build may be cleaned while a long run
# goes on.
BUILD = os.path.join(HERE, "build")
CLIENT = os.path.join(BUILD, "echo_client")
TESTS = ("conns", "http")
MB = 2 ** 20

SIZES = {
    "full": dict(conns=10000, warmup_rounds=3, rounds=3, roundtrips=20,
                 requests=1000000, http_warmup=20000),
    "quick": dict(conns=1000, warmup_rounds=2, rounds=3, roundtrips=20,
                  requests=50000, http_warmup=5000),
}
LINE_MIN, LINE_MAX = 100, 1000
RESPONSE_BODY = 5          # bytes of "Hello" in every answer

# Targets. A leak of one object per connection or request is thousands of
# blocks; what moves without one is a few blocks of caches and free lists.
RSS_GROWTH_MAX = 1 * MB
# Warm-up goes on (up to MAX_WARMUP_ROUNDS) until the RSS left after a round
# is within this of the RSS with every connection held: CPython's arenas
# have then filled up, and RSS stops climbing by one arena per round.
WARM_GAP = 1.5 * MB
MAX_WARMUP_ROUNDS = 20
BLOCKS_GROWTH_MAX = 1000
HEAP_GROWTH_MAX = 1 * MB


# ---------------------------------------------------------------- measuring

def proc_hwm(pid):
    """Peak RSS of the process so far (VmHWM), in bytes."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None


def listen_counters():
    """System-wide ListenOverflows + ListenDrops (accept queue full):
    a connection burst that overflowed the backlog shows here."""
    try:
        with open("/proc/net/netstat") as f:
            lines = [line.split() for line in f if line.startswith("TcpExt:")]
        fields = dict(zip(lines[0][1:], (int(x) for x in lines[1][1:])))
        return fields.get("ListenOverflows", 0) + fields.get("ListenDrops", 0)
    except (OSError, IndexError, ValueError):
        return None


def query_stats(port, timeout=30.0):
    """The server's own memory counters (mem_stats in bench/servers/common.py)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
            return json.loads(data)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def snapshot(server, stats_port):
    """fds, settled RSS, peak RSS and the server's own counters."""
    fds = proc_fds(server.pid)
    rss = settle(server.pid)
    rec = {"fds": fds, "rss": rss, "hwm": proc_hwm(server.pid)}
    rec.update(query_stats(stats_port))
    return rec


def wait_fds(server, want, timeout):
    """Wait until the server is down to `want` open fds; returns its count."""
    deadline = time.monotonic() + timeout
    while True:
        n = proc_fds(server.pid)
        if n <= want or time.monotonic() > deadline or not server.alive():
            return n
        time.sleep(0.05)


def start_server(kind, mode, args, backlog):
    stats_port = free_port()
    server = Server(kind, mode, args.server_cpu, args.timeout,
                    extra_args=["--backlog", str(backlog), "--stats-port", str(stats_port)])
    return server, stats_port


def time_wait_warning(conns, rounds):
    """The conns client closes first, so every round leaves its ports in
    TIME_WAIT for 60 s; connect() reuses them only with tcp_tw_reuse."""
    try:
        with open("/proc/sys/net/ipv4/tcp_tw_reuse") as f:
            reuse = int(f.read())
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
    except (OSError, ValueError):
        return None
    if reuse == 0 and conns * rounds > hi - lo + 1:
        return ("warning: net.ipv4.tcp_tw_reuse is 0 and %d rounds x %d connections exceed the "
                "%d ephemeral ports: connects may fail with EADDRNOTAVAIL "
                "(sysctl -w net.ipv4.tcp_tw_reuse=2 allows reuse on loopback)"
                % (rounds, conns, hi - lo + 1))
    return None


def mb(x):
    return "-" if x is None else "%.1f" % (x / MB)


def signed_mb(x):
    return "-" if x is None else "%+.2f" % (x / MB)


class Targets:
    """Named pass/fail checks, in the order made. With memory=False (a
    sanitizer build: its allocator keeps freed memory in quarantine) the
    RSS and C heap checks are reported, not judged."""

    def __init__(self, memory=True):
        self.items = []
        self.memory = memory

    def check(self, name, ok, value, allocator=False):
        if allocator and not self.memory:
            self.items.append({"target": name, "ok": True, "value": value, "info": True})
        else:
            self.items.append({"target": name, "ok": bool(ok), "value": value})

    def failed(self):
        return [t for t in self.items if not t["ok"]]

    def render(self):
        return "\n".join("  %s  %s: %s" % ("info" if t.get("info") else "ok  " if t["ok"] else "FAIL",
                                            t["target"], t["value"])
                         for t in self.items)


# ---------------------------------------------------------------- conns test

def conns_round(server, stats_port, before, args):
    """One round: N connections up at once, R round trips each, held, closed."""
    n = args.conns
    cmd = [CLIENT, "-p", str(server.port), "-c", str(n), "-s", str(LINE_MIN), "-S", str(LINE_MAX),
           "-r", str(args.roundtrips), "-P", str(server.pid), "-t", "10", "-H"]
    rec = {}
    overflows0 = listen_counters()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, preexec_fn=pinned(args.client_cpu))
    try:
        # Every connection has done its round trips and is held open.
        ready, _, _ = select.select([p.stdout], [], [], args.timeout)
        line = p.stdout.readline() if ready else b""
        try:
            held = json.loads(line)["held"]
        except (ValueError, KeyError):
            p.kill()
            out, err = p.communicate()
            rec["error"] = "client: %s" % ((line + out + err).decode(errors="replace").strip()[-500:]
                                           or "no answer in %g s" % args.timeout)
            return rec
        rec["client_held"] = held
        rec["held_fds"] = proc_fds(server.pid)
        rec["held_rss"] = settle(server.pid)
        rec["held_stats"] = query_stats(stats_port)
        # Close them all.
        out, err = p.communicate(b"\n", timeout=args.timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
        rec["error"] = "client did not finish in %g s" % args.timeout
        return rec
    lines = out.decode().strip().splitlines()
    if p.returncode != 0 or not lines:
        rec["error"] = "client exit status %d: %s" % (p.returncode, err.decode().strip()[-500:])
        return rec
    rec["client"] = json.loads(lines[-1])
    rec["wall_s"] = time.perf_counter() - t0
    rec["after_fds"] = wait_fds(server, before["fds"], 30)
    rec["after_rss"] = settle(server.pid)
    rec["after_hwm"] = proc_hwm(server.pid)
    rec["after_stats"] = query_stats(stats_port)
    overflows1 = listen_counters()
    if overflows0 is not None and overflows1 is not None:
        rec["listen_overflows"] = overflows1 - overflows0
    return rec


def conns_test(kind, args):
    n = args.conns
    rec = {"test": "conns", "server": kind, "connections": n,
           "roundtrips_per_conn": args.roundtrips,
           "line_size": [LINE_MIN, LINE_MAX], "min_warmup_rounds": args.warmup_rounds,
           "rounds": args.rounds}
    targets = Targets(memory=not args.sanitized)
    try:
        raise_nofile(n + 64)   # the client and the server inherit the hard limit
    except (ValueError, OSError) as e:
        return dict(rec, error="cannot raise RLIMIT_NOFILE to %d: %s" % (n + 64, e)), targets
    if resource.getrlimit(resource.RLIMIT_NOFILE)[1] < n + 64:
        return dict(rec, error="RLIMIT_NOFILE hard limit is %d, need %d (run as root)"
                    % (resource.getrlimit(resource.RLIMIT_NOFILE)[1], n + 64)), targets
    try:
        # The client connects all N at once; the kernel caps the backlog at
        # net.core.somaxconn, and an overflow costs 1 s SYN retries, not errors.
        server, stats_port = start_server(kind, "echo", args, max(1024, n))
    except ServerError as e:
        return dict(rec, error=str(e)), targets
    rounds = []
    try:
        cold = snapshot(server, stats_port)
        rec["cold"] = cold
        warming, measured_n = True, 0
        while measured_n < args.rounds:
            name = "warm-up %d" % (len(rounds) + 1) if warming else "round %d" % (measured_n + 1)
            print("  conns %-10s ..." % name, end="", file=sys.stderr, flush=True)
            r = conns_round(server, stats_port, cold, args)
            r["name"] = name
            r["warmup"] = warming
            rounds.append(r)
            if warming and "error" not in r and len(rounds) >= args.warmup_rounds and (
                    r["after_rss"] > r["held_rss"] - WARM_GAP or len(rounds) >= MAX_WARMUP_ROUNDS):
                warming = False
            elif not warming:
                measured_n += 1
            died = server.died()
            if died:
                r["error"] = died
            c = r.get("client", {})
            print(" %s" % ("ERROR: " + r["error"] if "error" in r else
                           "%d round trips, %d errors, server fds held %d, RSS after %s MB"
                           % (c["roundtrips"], c["errors"], r["held_fds"] - cold["fds"],
                              mb(r["after_rss"]))),
                  file=sys.stderr, flush=True)
            if "error" in r:
                rec["error"] = "%s: %s" % (name, r["error"])
                break
    except (ServerError, OSError, ValueError) as e:
        rec["error"] = "%s (after %d rounds)" % (e, len(rounds))
    finally:
        out = server.stop()
        if out.strip():
            rec["server_output"] = out.strip()[-2000:]
    rec["round_results"] = rounds
    done = [r for r in rounds if "error" not in r]
    measured = [r for r in done if not r["warmup"]]
    warm = [r for r in done if r["warmup"]]

    # Nothing lost, in any round (the value shown: the worst round).
    def every_round(name, ok, describe):
        bad = [r for r in done if not ok(r)]
        worst = bad[0] if bad else (done[-1] if done else None)
        value = "%s%s" % (describe(worst) if worst else "-",
                          " (%s; %d rounds fail)" % (worst["name"], len(bad)) if bad
                          else " (all %d rounds)" % len(done))
        targets.check(name, done and not bad, value)

    every_round("errors + mismatches = 0",
                lambda r: r["client"]["errors"] == 0 and r["client"]["mismatches"] == 0,
                lambda r: "%d errors, %d mismatches%s" % (
                    r["client"]["errors"], r["client"]["mismatches"],
                    ", first: " + r["client"]["first_error"] if r["client"]["first_error"] else ""))
    every_round("every connection did >= %d round trips" % args.roundtrips,
                lambda r: r["client"]["alive"] == n and r["client"]["min_rounds"] >= args.roundtrips,
                lambda r: "%d of %d connections, %d..%d round trips each" % (
                    r["client"]["alive"], n, r["client"]["min_rounds"], r["client"]["max_rounds"]))
    every_round("all %d connections open at once (server fds held >= before + %d)" % (n, n),
                lambda r: r["client_held"] == n and r["held_fds"] >= cold["fds"] + n,
                lambda r: "client held %d, server fds %d, %d before" % (
                    r["client_held"], r["held_fds"], cold["fds"]))
    # Nothing leaked.
    every_round("server fds back to before after the round",
                lambda r: r["after_fds"] == cold["fds"],
                lambda r: "%d, %d before" % (r["after_fds"], cold["fds"]))
    handler_errors = done[-1]["after_stats"]["handler_errors"] if done else None
    targets.check("server handler errors = 0", handler_errors == 0, handler_errors)
    if warm and measured:
        # RSS baselines: the high-water of the warm-up rounds (obmalloc
        # arenas fill up over several rounds); the server's own counters
        # do not move that way: the last warm-up round.
        base = warm[-1]
        rec["warm"] = {"rss": max(r["after_rss"] for r in warm),
                       "held_rss": max(r["held_rss"] for r in warm), "fds": base["after_fds"],
                       "py_blocks": base["after_stats"]["py_blocks"],
                       "heap_in_use": base["after_stats"].get("heap_in_use")}
        growth = max(r["after_rss"] for r in measured) - rec["warm"]["rss"]
        targets.check("RSS after each round - warm baseline < %d MB" % (RSS_GROWTH_MAX // MB),
                      growth < RSS_GROWTH_MAX, "%s MB at most" % signed_mb(growth), allocator=True)
        growth = max(r["held_rss"] for r in measured) - rec["warm"]["held_rss"]
        targets.check("RSS while held - warm-up's < %d MB" % (RSS_GROWTH_MAX // MB),
                      growth < RSS_GROWTH_MAX, "%s MB at most" % signed_mb(growth), allocator=True)
        growth = max(r["after_stats"]["py_blocks"] for r in measured) - rec["warm"]["py_blocks"]
        targets.check("live Python blocks after each round - warm baseline < %d"
                      % BLOCKS_GROWTH_MAX, growth < BLOCKS_GROWTH_MAX, "%+d at most" % growth)
        if rec["warm"]["heap_in_use"] is not None:
            growth = (max(r["after_stats"]["heap_in_use"] for r in measured)
                      - rec["warm"]["heap_in_use"])
            targets.check("C heap in use after each round - warm baseline < %d MB"
                          % (HEAP_GROWTH_MAX // MB), growth < HEAP_GROWTH_MAX,
                          "%+d bytes at most" % growth, allocator=True)
    elif "error" not in rec:
        rec["error"] = "no warm-up or no measured round"
    return rec, targets


def conns_table(rec):
    head = ("round", "round trips", "rt/s", "errors", "mismatch", "rt/conn",
            "held conns", "srv fds held", "RSS held MB", "fds after", "RSS after MB",
            "peak MB", "py blocks", "C heap KB", "wall s")
    rows = []
    cold = rec.get("cold")
    if cold:
        rows.append(("before (cold)", "", "", "", "", "", "", "", "", cold["fds"], mb(cold["rss"]),
                     mb(cold["hwm"]), cold["py_blocks"], heap_kb(cold), ""))
    for r in rec.get("round_results", []):
        if "error" in r:
            rows.append((r["name"], "ERROR", "(below)") + ("",) * 12)
            continue
        c = r["client"]
        rows.append((r["name"], c["roundtrips"], fmt_num(c["rt_per_s"]), c["errors"],
                     c["mismatches"], "%d..%d" % (c["min_rounds"], c["max_rounds"]),
                     r["client_held"], r["held_fds"], mb(r["held_rss"]), r["after_fds"],
                     mb(r["after_rss"]), mb(r["after_hwm"]), r["after_stats"]["py_blocks"],
                     heap_kb(r["after_stats"]), "%.1f" % r["wall_s"]))
    out = render(head, rows, {0}, group_gap=False)
    warm = rec.get("warm")
    if cold and warm:
        out += ("\n\nbaselines: cold RSS %s MB, %d fds; warm (highest of the warm-up rounds) "
                "RSS after %s MB, RSS held %s MB; %d py blocks, %s KB C heap (last warm-up round)"
                % (mb(cold["rss"]), cold["fds"], mb(warm["rss"]), mb(warm["held_rss"]),
                   warm["py_blocks"], heap_kb(warm)))
    return out


def heap_kb(stats):
    return "-" if stats.get("heap_in_use") is None else "%.0f" % (stats["heap_in_use"] / 1024)


# ----------------------------------------------------------------- http test

AB_HTML = r"^HTML transferred:\s+(\d+) bytes"


def run_ab(server, requests, args, progress):
    """ab -n requests -c concurrency; its figures, sampling the server's
    RSS and fds meanwhile for their peaks."""
    cmd = ["ab", "-r", "-s", "10", "-n", str(requests), "-c", str(args.concurrency),
           "http://127.0.0.1:%d/" % server.port]
    rec = {"requests": requests}
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=pinned(args.client_cpu))
    errs = []

    def read_stderr():
        # ab reports progress ("Completed N requests") and socket errors here.
        for line in p.stderr:
            if line.startswith("Completed ") or line.startswith("Finished "):
                if progress:
                    print("    ab: %s" % line.strip(), file=sys.stderr, flush=True)
            elif line.strip():
                errs.append(line.rstrip())

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    out_parts = []
    out_reader = threading.Thread(target=lambda: out_parts.append(p.stdout.read()), daemon=True)
    out_reader.start()
    peak_rss, peak_fds = 0, 0
    deadline = time.monotonic() + args.timeout
    while p.poll() is None:
        if time.monotonic() > deadline:
            p.kill()
            p.wait()
            rec["error"] = "ab did not finish in %g s" % args.timeout
            return rec
        if server.alive():
            try:
                peak_rss = max(peak_rss, proc_rss(server.pid))
                peak_fds = max(peak_fds, proc_fds(server.pid))
            except OSError:
                pass
        time.sleep(0.5)
    rec["wall_s"] = time.perf_counter() - t0
    if server.alive():
        rec["server_cpu_s"] = server.cpu() - cpu0
    reader.join(10)
    out_reader.join(10)
    out = out_parts[0] if out_parts else ""
    rec["peak_rss_sampled"], rec["peak_fds_sampled"] = peak_rss, peak_fds
    if errs:
        rec["ab_stderr"] = "\n".join(errs[-20:])
    got = {}
    for key, pat in dict(AB_FIELDS, html_bytes=AB_HTML).items():
        m = re.search(pat, out, re.M)
        if m:
            got[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    rec.update(got)
    rec.setdefault("failed", 0)
    rec.setdefault("non_2xx", 0)
    rec.setdefault("write_errors", 0)
    if p.returncode != 0 or "rps" not in got:
        m = re.search(r"Total of (\d+) requests completed", out + "\n".join(errs))
        rec["error"] = "ab exit status %d: %s%s" % (
            p.returncode, ("\n".join(errs) or out.strip())[-500:],
            " (%s of %d requests completed)" % (m.group(1), requests) if m else "")
    return rec


def http_test(kind, args):
    rec = {"test": "http", "server": kind, "requests": args.requests,
           "concurrency": args.concurrency,
           "warmup_requests": args.http_warmup}
    targets = Targets(memory=not args.sanitized)
    try:
        server, stats_port = start_server(kind, "http", args, 1024)
    except ServerError as e:
        return dict(rec, error=str(e)), targets
    try:
        rec["cold"] = snapshot(server, stats_port)
        print("  http warm-up (%d requests) ..." % args.http_warmup, end="",
              file=sys.stderr, flush=True)
        warm = run_ab(server, args.http_warmup, args, False)
        rec["warmup_run"] = warm
        print(" %s" % ("ERROR: " + warm["error"] if "error" in warm
                       else "%s req/s" % fmt_num(warm["rps"])), file=sys.stderr, flush=True)
        if "error" in warm:
            rec["error"] = "warm-up: " + warm["error"]
            return rec, targets
        rec["before"] = before = snapshot(server, stats_port)
        print("  http %d requests, concurrency %d ..." % (args.requests, args.concurrency),
              file=sys.stderr, flush=True)
        run = run_ab(server, args.requests, args, True)
        rec["run"] = run
        if "error" in run:
            rec["error"] = run["error"]
        died = server.died()
        if died:
            rec["error"] = died
            return rec, targets
        wait_fds(server, before["fds"], 30)
        rec["after"] = after = snapshot(server, stats_port)
    except (ServerError, OSError, ValueError) as e:
        rec["error"] = str(e)
        return rec, targets
    finally:
        out = server.stop()
        if out.strip():
            rec["server_output"] = out.strip()[-2000:]

    n = args.requests
    if "rps" in run:
        targets.check("ab: all %d requests complete" % n, run.get("complete") == n,
                      run.get("complete"))
        targets.check("ab: failed = 0, non-2xx = 0, write errors = 0",
                      run["failed"] == 0 and run["non_2xx"] == 0 and run["write_errors"] == 0,
                      "failed %d, non-2xx %d, write errors %d" % (
                          run["failed"], run["non_2xx"], run["write_errors"]))
        targets.check("ab: every body received (%d x %d bytes)" % (n, RESPONSE_BODY),
                      run.get("html_bytes") == n * RESPONSE_BODY, run.get("html_bytes"))
    targets.check("server handler errors = 0", after["handler_errors"] == 0,
                  after["handler_errors"])
    targets.check("server fds back to before", after["fds"] == before["fds"],
                  "%d (before %d)" % (after["fds"], before["fds"]))
    growth = after["rss"] - before["rss"]
    targets.check("RSS after - before < %d MB" % (RSS_GROWTH_MAX // MB),
                  growth < RSS_GROWTH_MAX, "%s MB" % signed_mb(growth), allocator=True)
    growth = after["py_blocks"] - before["py_blocks"]
    targets.check("live Python blocks after - before < %d" % BLOCKS_GROWTH_MAX,
                  growth < BLOCKS_GROWTH_MAX, "%+d" % growth)
    if before.get("heap_in_use") is not None:
        growth = after["heap_in_use"] - before["heap_in_use"]
        targets.check("C heap in use after - before < %d MB" % (HEAP_GROWTH_MAX // MB),
                      growth < HEAP_GROWTH_MAX, "%+d bytes" % growth, allocator=True)
    return rec, targets


def http_table(rec):
    head = ("phase", "requests", "complete", "failed", "non-2xx", "req/s", "wall s",
            "fds", "RSS MB", "peak MB", "py blocks", "C heap KB")
    rows = []
    for name, key, run in (("before (cold)", "cold", None), ("warm-up", "before", "warmup_run"),
                           ("run", "after", "run")):
        s = rec.get(key)
        r = rec.get(run) if run else None
        if run and r is None:
            continue
        cells = [name]
        if r is None:
            cells += [""] * 6
        elif "rps" not in r:
            cells += ["ERROR", "(below)"] + [""] * 4
        else:
            cells += [r["requests"], r.get("complete", "-"), r["failed"], r["non_2xx"],
                      fmt_num(r["rps"]), "%.1f" % r["wall_s"]]
        if s:
            cells += [s["fds"], mb(s["rss"]), mb(s["hwm"]), s["py_blocks"], heap_kb(s)]
        else:
            cells += [""] * 5
        rows.append(cells)
    return render(head, rows, {0}, group_gap=False)


LEGEND = {
    "conns": """\
Each row is one round on the same server process: every connection up at
once, then 20 round trips each of a 100..1000-byte line (every byte
checked), then all held open while the server is looked at, then closed.
rt/conn: fewest..most round trips a connection did. held conns: connections
the client held open at once; srv fds held: the server's open fds then.
RSS held: server RSS with every connection held; fds after, RSS after: once
all are closed. peak: the server's peak RSS so far (VmHWM). py blocks, C
heap: the server's live Python memory blocks and C heap bytes in use, by
its own account (after a full gc), after the round. Measured rounds are
compared with the warm baseline: for RSS the highest value of the warm-up
rounds (CPython's arenas take several rounds to fill), for the server's
own counters the last warm-up round.""",
    "http": """\
ab -r -s 10 -n REQUESTS -c CONCURRENCY, HTTP/1.0, one request per
connection. fds, RSS, py blocks, C heap: the server after that phase (for
"warm-up": the baseline the run is compared with); peak: its peak RSS so
far (VmHWM).""",
}


# ------------------------------------------------------- servers side by side

def headline(rec):
    """The figures of one finished test that the comparison table shows
    (missing where the run did not get that far). Growth is measured as the
    targets judge it."""
    out = {"targets_missed": sum(1 for t in rec["targets"] if not t["ok"]),
           "wall_s": rec["test_wall_s"]}
    cold = rec.get("cold")
    if cold:
        out["cold_rss"] = cold["rss"]
    if rec["test"] == "conns":
        done = [r for r in rec.get("round_results", []) if "error" not in r]
        measured = [r for r in done if not r["warmup"]]
        if done:
            out["errors"] = sum(r["client"]["errors"] + r["client"]["mismatches"] for r in done)
            out["warmup_rounds"] = len(done) - len(measured)
            out["peak_rss"] = done[-1]["after_hwm"]
        if measured:
            ops = sum(r["client"]["roundtrips"] for r in measured)
            secs = sum(r["client"]["seconds"] for r in measured)
            cpu = sum(r["client"]["server_cpu_s"] for r in measured)
            out.update(rate=ops / secs if secs > 0 else None,
                       server_cpu_s=cpu, cpu_us=1e6 * cpu / ops if ops else None,
                       rss_per_conn=(max(r["held_rss"] for r in measured) - cold["rss"])
                       / rec["connections"])
        warm = rec.get("warm")
        if warm:
            after = [r["after_stats"] for r in measured]
            out["rss_growth"] = max(r["after_rss"] for r in measured) - warm["rss"]
            out["py_blocks_growth"] = max(a["py_blocks"] for a in after) - warm["py_blocks"]
            if warm["heap_in_use"] is not None:
                out["heap_growth"] = max(a["heap_in_use"] for a in after) - warm["heap_in_use"]
    else:
        run = rec.get("run", {})
        if "rps" in run:
            out["errors"] = run["failed"] + run["non_2xx"] + run["write_errors"]
            out["rate"] = run["rps"]
        if "server_cpu_s" in run and run.get("complete"):
            out["server_cpu_s"] = run["server_cpu_s"]
            out["cpu_us"] = 1e6 * run["server_cpu_s"] / run["complete"]
        before, after = rec.get("before"), rec.get("after")
        if before and after:
            out["peak_rss"] = after["hwm"]
            out["rss_growth"] = after["rss"] - before["rss"]
            out["py_blocks_growth"] = after["py_blocks"] - before["py_blocks"]
            if before.get("heap_in_use") is not None:
                out["heap_growth"] = after["heap_in_use"] - before["heap_in_use"]
    return out


# Rows of the comparison table: (label, headline key, format, ratio) with
# ratio True where more is better (uasyncio / peer), False where less is
# (peer / uasyncio), None for no ratio. OP is "round trip" or "request".
COMPARE_ROWS = (
    ("targets missed", "targets_missed", "%d", None),
    ("errors", "errors", "%d", None),
    ("OPs/s", "rate", fmt_num, True),
    ("server CPU s", "server_cpu_s", "%.2f", None),
    ("server CPU us / OP", "cpu_us", "%.2f", False),
    ("RSS cold MB", "cold_rss", mb, None),
    ("RSS peak MB", "peak_rss", mb, None),
    ("RSS held B / connection", "rss_per_conn", fmt_num, False),
    ("RSS growth MB", "rss_growth", signed_mb, None),
    ("py blocks growth", "py_blocks_growth", "%+d", None),
    ("C heap growth KB", "heap_growth", lambda x: "%+.0f" % (x / 1024), None),
    ("warm-up rounds", "warmup_rounds", "%d", None),
    ("test wall s", "wall_s", "%.1f", None),
)
OP = {"conns": "round trip", "http": "request"}


def compare_table(results, servers):
    """Each test's headline figures, one column per server, and how uasyncio
    compares with each peer."""
    peers = [k for k in servers if k != "uasyncio"] if "uasyncio" in servers else []
    head = ("test", "figure") + tuple(servers) + tuple("vs " + k for k in peers)
    rows = []
    for test in TESTS:
        got = {r["server"]: r["headline"] for r in results if r["test"] == test}
        for label, key, fmt, better in COMPARE_ROWS:
            if not any(h.get(key) is not None for h in got.values()):
                continue
            value = {k: got.get(k, {}).get(key) for k in servers}
            cells = ["-" if value[k] is None else fmt(value[k]) if callable(fmt)
                     else fmt % value[k] for k in servers]
            cells += [fmt_ratio(ratio(value["uasyncio"], value[k], better))
                      if better is not None else "" for k in peers]
            rows.append([test, label.replace("OP", OP[test])] + cells)
    return render(head, rows, {0, 1})


COMPARE_LEGEND = """\
Measured part only: conns the measured rounds (round trips/s and server CPU
over their round-trip windows, as the client reports them), http the ab run
after the warm-up (server CPU from /proc around ab). RSS held B /
connection: (highest RSS with every connection held - cold RSS) /
connections. RSS peak: VmHWM at the end. Growth: as the targets judge it
(conns: worst measured round - warm baseline; http: after - before).
vs X: how many times better uasyncio's figure is than X's: for rates
uasyncio's / X's, for costs X's / uasyncio's (server CPU us / request vs
asyncio: asyncio's / uasyncio's). Above 1x, uasyncio is faster or cheaper."""


# ---------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 1,000 connections and 50,000 requests")
    ap.add_argument("--only", type=lambda s: csv_list(s, TESTS, "test"), default=list(TESTS),
                    metavar="TEST[,TEST]", help="tests to run (default: %s)" % ",".join(TESTS))
    ap.add_argument("--servers", type=lambda s: csv_list(s, PY_SERVERS, "server"),
                    default=["uasyncio"], metavar="S[,S]",
                    help="servers to run the tests against, each judged by the same targets"
                         " (default: uasyncio; choose from %s)" % ",".join(PY_SERVERS))
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--sanitized", action="store_true",
                    help="the server runs a sanitizer build (UA_PKG_DIR, LD_PRELOAD: make load-asan):"
                         " RSS and C heap are reported, not checked")
    ap.add_argument("--conns", type=int, help="conns: connections held at once (10000; --quick 1000)")
    ap.add_argument("--rounds", type=int, help="conns: measured rounds (3)")
    ap.add_argument("--warmup-rounds", type=int, help="conns: warm-up rounds at least (3; --quick 2)")
    ap.add_argument("--roundtrips", type=int, help="conns: round trips per connection (20)")
    ap.add_argument("--requests", type=int, help="http: requests (1000000; --quick 50000)")
    ap.add_argument("--http-warmup", type=int, help="http: warm-up requests (20000; --quick 5000)")
    ap.add_argument("--concurrency", type=int, default=100, help="http: ab -c (default 100)")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU for the server (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1,
                    help="CPU for the load generator and this script (default 1)")
    ap.add_argument("--timeout", type=float, default=1800.0,
                    help="seconds before a client or ab is given up on (default 1800)")
    args = ap.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)   # in step with the progress on stderr
    sz = SIZES["quick" if args.quick else "full"]
    for key, value in sz.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if not 1 <= args.warmup_rounds <= MAX_WARMUP_ROUNDS or args.rounds < 1:
        ap.error("conns needs 1 to %d warm-up rounds and at least one measured round"
                 % MAX_WARMUP_ROUNDS)

    allowed = os.sched_getaffinity(0)
    for what in ("server_cpu", "client_cpu"):
        if getattr(args, what) not in allowed:
            fallback = min(allowed)
            print("CPU %d is not available: using %d" % (getattr(args, what), fallback))
            setattr(args, what, fallback)
    if args.server_cpu == args.client_cpu:
        print("warning: server and client share CPU %d" % args.server_cpu)
    os.sched_setaffinity(0, {args.client_cpu})   # keep this script off the server's CPU

    tests = list(args.only)
    print("python: %s   server CPU %d, client CPU %d   %s" % (
        PYTHON, args.server_cpu, args.client_cpu, "quick" if args.quick else "full"))
    if "conns" in tests:
        print("conns: %d connections, %d round trips each of %d..%d bytes; %d measured rounds "
              "after %d to %d warm-up rounds (until the RSS after a round is within %.1f MB of "
              "the RSS held)" % (args.conns, args.roundtrips, LINE_MIN, LINE_MAX, args.rounds,
                                 args.warmup_rounds, MAX_WARMUP_ROUNDS, WARM_GAP / MB))
        warning = time_wait_warning(args.conns, args.warmup_rounds + args.rounds)
        if warning:
            print(warning)
    if "http" in tests:
        print("http: ab -n %d -c %d after %d warm-up requests"
              % (args.requests, args.concurrency, args.http_warmup))
    err = net.build_c(out_dir=BUILD, programs=("echo_client",))
    if err:
        print("cannot build the echo client: %s" % err)
        return 1
    servers, skipped = available(args.servers, net.probe, "%s cannot run: %s%s")
    if skipped:
        return 1
    if "http" in tests:
        why = ensure_ab()
        if why:
            print("cannot run http: %s" % why)
            return 1

    t_start = time.time()
    results, failed = [], []
    try:
        for kind in servers:
            if len(servers) > 1:
                print("\n==== %s ====" % kind)
                print("%s:" % kind, file=sys.stderr, flush=True)
            for test in tests:
                t0 = time.perf_counter()
                rec, targets = (conns_test if test == "conns" else http_test)(kind, args)
                rec["test_wall_s"] = time.perf_counter() - t0
                rec["targets"] = targets.items
                if "error" in rec:
                    targets.check("ran to the end", False, rec["error"])
                rec["ok"] = not targets.failed()
                rec["headline"] = headline(rec)
                results.append(rec)
                print("\n%s on %s:" % (test, kind))
                print(conns_table(rec) if test == "conns" else http_table(rec))
                if kind == servers[0]:   # once per test
                    print()
                    print(LEGEND[test])
                print("\ntargets (%s on %s):" % (test, kind))
                print(targets.render())
                if rec.get("server_output"):
                    print("\nthe server wrote:\n    %s"
                          % rec["server_output"].replace("\n", "\n    "))
                print("\n" + json.dumps(summarize(rec)))
                print()
                if not rec["ok"]:
                    failed.append("%s on %s" % (test, kind))
    finally:
        Server.kill_all()
    if len(servers) > 1:
        print(compare_table(results, servers))
        print()
        print(COMPARE_LEGEND)
        print()
        for kind in servers:
            print("%-8s  %s" % (kind, ", ".join(
                "%s %s (%.1f s)" % (r["test"], "ok" if r["ok"] else "FAILED", r["test_wall_s"])
                for r in results if r["server"] == kind)))
    print("total %.1f s: %s" % (time.time() - t_start,
                                "all targets met" if not failed else "FAILED: " + ", ".join(failed)))
    if args.json:
        write_json(args.json, {"python": PYTHON, "server_cpu": args.server_cpu,
                               "client_cpu": args.client_cpu, "quick": args.quick,
                               "servers": servers, "tests": tests}, results)
    return 1 if failed else 0


def summarize(rec):
    """The one-line JSON of a test: its headline figures and verdict."""
    out = {"test": rec["test"], "server": rec["server"], "ok": rec["ok"],
           "test_wall_s": round(rec["test_wall_s"], 1)}
    if rec["test"] == "conns":
        rounds = [r for r in rec.get("round_results", []) if "error" not in r]
        out.update(connections=rec["connections"], rounds=rec["rounds"],
                   warmup_rounds=sum(1 for r in rounds if r["warmup"]))
        out["errors"] = sum(r["client"]["errors"] for r in rounds)
        out["mismatches"] = sum(r["client"]["mismatches"] for r in rounds)
        out["roundtrips"] = sum(r["client"]["roundtrips"] for r in rounds)
        out["max_server_fds_held"] = max((r["held_fds"] for r in rounds), default=None)
        if "cold" in rec:
            out["cold"] = {"rss": rec["cold"]["rss"], "fds": rec["cold"]["fds"]}
        out["warm"] = rec.get("warm")
        out["per_round"] = [{"name": r["name"], "held_fds": r["held_fds"],
                             "held_rss": r["held_rss"], "after_fds": r["after_fds"],
                             "after_rss": r["after_rss"],
                             "py_blocks": r["after_stats"]["py_blocks"],
                             "heap_in_use": r["after_stats"].get("heap_in_use"),
                             "rt_per_s": r["client"]["rt_per_s"],
                             "connect_s": r["client"]["connect_s"],
                             "listen_overflows": r.get("listen_overflows"), "wall_s": r["wall_s"]}
                            for r in rounds]
    else:
        run = rec.get("run", {})
        out.update({k: run.get(k) for k in ("requests", "complete", "failed", "non_2xx",
                                            "rps", "server_cpu_s", "wall_s")})
        for key in ("before", "after"):
            if key in rec:
                out[key] = {k: rec[key][k] for k in ("rss", "fds", "py_blocks", "heap_in_use")
                            if k in rec[key]}
        if "after" in rec:
            out["peak_rss"] = rec["after"]["hwm"]
            out["peak_fds"] = run.get("peak_fds_sampled")
    if "error" in rec:
        out["error"] = rec["error"]
    out["failed_targets"] = [t["target"] for t in rec["targets"] if not t["ok"]]
    return out


if __name__ == "__main__":
    sys.exit(main())
