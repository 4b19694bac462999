#!/usr/bin/env python3
"""Network benchmarks: uasyncio, uasyncio.v3, asyncio and uvloop stream servers
against a minimal C epoll server, over 127.0.0.1. (v3, asyncio and uvloop run
one server program, bench/servers/asyncio_server.py, written against the
asyncio API.)

    python3 bench/net.py [--quick] [--only echo,http,idle] [--servers uasyncio,v3,asyncio,uvloop,c]
                         [--json out.json] [--server-cpu 0] [--client-cpu 1] [--repeat N]

Three tests, every server a separate process pinned to one CPU and its load
generator pinned to another:

  echo  line echo: a C epoll client (bench/c/echo_client.c) keeps N connections
        busy, each sending one line of S bytes, checking the whole echo, then
        sending the next; round trips/s and round trips per server CPU-second.
  http  HTTP/1.0 "Hello" (request line + headers, answer, close) under
        ApacheBench (ab); requests/s and requests per server CPU-second.
  idle  10,000 open connections, each server handler parked in readline();
        the server's RSS growth per connection.

Server CPU is the server process's CPU time (user + system, summed over its
threads from /proc/PID/task/TID/schedstat, at nanosecond resolution), read at
both ends of the measured window. The children run under $PYTHON (default
/usr/bin/python3) with the repository root first on PYTHONPATH.
"""

import argparse
import json
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)
sys.dont_write_bytecode = True   # leave no __pycache__ in the tree

from common import (ROOT, PYTHON, available, child_env, combine, csv_list,  # noqa: E402
                    fmt_num, fmt_ratio, probe_python, ratio, render, take_turns, write_json)

BUILD = os.path.join(HERE, "build")
C_PROGRAMS = ("echo_client", "server")
CC = os.environ.get("CC", "cc")
CFLAGS = ["-O2", "-Wall", "-Wextra"]

SERVERS = ("uasyncio", "v3", "asyncio", "uvloop", "c")
PY_SERVERS = ("uasyncio", "v3", "asyncio", "uvloop")
TESTS = ("echo", "http", "idle")

# Echo configurations: (connections, line size in bytes incl. the "\n").
ECHO_CONFIGS = [(10, 100), (100, 1000), (10, 10000)]
# ab concurrency levels.
HTTP_CONCURRENCY = [10, 100]

SIZES = {
    "full": dict(echo_seconds=5.0, echo_warmup=1.0, http_requests=20000, idle_conns=10000),
    "quick": dict(echo_seconds=1.0, echo_warmup=0.3, http_requests=2000, idle_conns=10000),
}

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


# ------------------------------------------------------------ child processes

def _prctl_pdeathsig():
    import ctypes
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl_pdeathsig()


def pinned(cpu):
    """preexec_fn: pin the child to `cpu` and have it killed if we die."""
    def pre():
        if _PRCTL is not None:
            _PRCTL(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
        os.sched_setaffinity(0, {cpu})
    return pre


def build_c(force=False, out_dir=BUILD, programs=C_PROGRAMS):
    """Compile the C programs into out_dir (default bench/build) when missing
    or stale. Returns None on success, else the compiler's complaint."""
    os.makedirs(out_dir, exist_ok=True)
    for name in programs:
        src = os.path.join(HERE, "c", name + ".c")
        out = os.path.join(out_dir, name)
        if not force and os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(src):
            continue
        try:
            p = subprocess.run([CC] + CFLAGS + ["-o", out, src], capture_output=True,
                               text=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            return "%s: %s" % (name, e)
        if p.returncode != 0:
            return "%s: %s" % (name, p.stderr.strip()[-2000:])
    return None


def probe(server):
    """(True, description) if `server` can run here, else (False, why not)."""
    if server == "c":
        err = build_c()
        return (False, err) if err else (True, "bench/build/server (%s %s)" % (CC, " ".join(CFLAGS)))
    code = {
        "uasyncio": "import uasyncio as m; assert m.__file__, 'not built'; m.start_server; "
                    "m.StreamReader; m.StreamWriter",
        "v3": "import uasyncio.v3 as m; m.start_server; m.run; m.__version__ = 'v3'",
        "asyncio": "import asyncio as m, sys; m.__version__ = sys.version.split()[0]",
        "uvloop": "import uvloop as m",
    }[server] + "\nprint(getattr(m, '__version__', '-'), getattr(m, '__file__', '') or '')"
    return probe_python(code, cwd=ROOT)


def have_ab():
    try:
        subprocess.run(["ab", "-V"], capture_output=True, timeout=10, check=True)
        return True
    except (OSError, subprocess.SubprocessError):
        return False


def ensure_ab():
    """None if ApacheBench can run, installing Debian's apache2-utils when it
    is missing and we are root; else why not."""
    if have_ab():
        return None
    if os.geteuid() != 0 or not os.path.exists("/usr/bin/apt-get"):
        return "ApacheBench (ab) not found (Debian: apt-get install apache2-utils)"
    print("installing apache2-utils (for ab) ...", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=300)
        p = subprocess.run(["apt-get", "install", "-y", "-q", "--no-install-recommends",
                            "apache2-utils"], env=env, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as e:
        return "ab not found, and installing apache2-utils failed: %s" % e
    if not have_ab():
        return "ab not found, and installing apache2-utils failed: %s" % (
            p.stderr.strip().splitlines()[-1:] or ["exit status %d" % p.returncode])[0]
    return None


def server_cmd(kind, mode, port, program=None):
    """The command line of one benchmark server: the C server, the 2.0 API
    program, or the asyncio API program (or `program`, written against the
    asyncio API too) on the loop `kind`."""
    if program:
        return [PYTHON, program, mode, str(port), "--loop", kind]
    if kind == "c":
        return [os.path.join(BUILD, "server"), mode, str(port)]
    if kind == "uasyncio":
        return [PYTHON, os.path.join(HERE, "servers", "uasyncio_server.py"), mode, str(port)]
    return [PYTHON, os.path.join(HERE, "servers", "asyncio_server.py"), mode, str(port), "--loop", kind]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True once something listens on 127.0.0.1:port (from /proc/net/tcp, so
    checking does not open a connection the server would have to handle)."""
    want = ":%04X" % port
    try:
        with open("/proc/net/tcp") as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[1].endswith(want) and fields[3] == "0A":
                    return True
    except OSError:
        pass
    return False


def proc_cpu(pid):
    """CPU time of a process in seconds: the sum of its threads' run time
    from /proc/PID/task/TID/schedstat (nanoseconds), or utime + stime from
    /proc/PID/stat (clock ticks) where schedstat is not available."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except (OSError, ValueError, IndexError):
                pass
    except OSError:
        pass
    if total:
        return total / 1e9
    with open("/proc/%d/stat" % pid) as f:
        data = f.read()
    fields = data[data.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def busy_cpu():
    """CPU seconds all processes of the machine have used so far (user,
    nice and system time of every CPU from /proc/stat; interrupt and softirq
    time, charged to no process, left out)."""
    with open("/proc/stat") as f:
        fields = f.readline().split()
    return sum(int(x) for x in fields[1:4]) / CLK_TCK


class Others:
    """CPU used by processes other than the server and the load generator
    (this script's children) over a span: another busy program on the
    machine shows up here, and makes the figures of that run suspect."""

    def __init__(self, server):
        self.server = server
        self.busy0 = busy_cpu()
        self.srv0 = server.cpu()
        self.kids0 = self.children()
        self.self0 = time.process_time()
        self.t0 = time.perf_counter()

    @staticmethod
    def children():
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        return ru.ru_utime + ru.ru_stime

    def share(self):
        """Other processes' CPU / wall time of the span (1.0 = one CPU)."""
        wall = time.perf_counter() - self.t0
        other = (busy_cpu() - self.busy0 - (self.server.cpu() - self.srv0)
                 - (self.children() - self.kids0) - (time.process_time() - self.self0))
        return max(0.0, other) / wall if wall > 0 else None


def proc_rss(pid):
    with open("/proc/%d/statm" % pid) as f:
        return int(f.read().split()[1]) * PAGE


def proc_fds(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


class ServerError(Exception):
    pass


class Server:
    """One benchmark server process: started pinned, waited for until it
    listens, stopped (and reaped, with its rusage) at the end."""

    live = []   # every started, not yet reaped server: killed on the way out

    def __init__(self, kind, mode, cpu, timeout, extra_args=(), program=None):
        self.kind, self.mode = kind, mode
        self.port = free_port()
        cmd = server_cmd(kind, mode, self.port, program) + list(extra_args)
        self.cmd = cmd
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, env=child_env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                                     stdout=self.err, stderr=self.err, preexec_fn=pinned(cpu))
        self.pid = self.proc.pid
        self.rusage = None
        self.status = None
        Server.live.append(self)
        deadline = time.monotonic() + min(timeout, 30)
        while not listening(self.port):
            if self.proc.poll() is not None:
                self.stop()
                raise ServerError("server exited with status %d before listening" % self.proc.returncode)
            if time.monotonic() > deadline:
                self.stop()
                raise ServerError("server not listening on port %d after %.0f s"
                                  % (self.port, min(timeout, 30)))
            time.sleep(0.02)

    def alive(self):
        return self.proc.poll() is None

    def cpu(self):
        return proc_cpu(self.pid)

    def stop(self):
        """SIGTERM, then SIGKILL after 3 s; reap with os.wait4 for the
        rusage. Returns what the server wrote (stdout + stderr)."""
        if self.status is None:
            if self.proc.returncode is None:
                try:
                    os.kill(self.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 3
                while True:
                    pid, status, ru = os.wait4(self.pid, os.WNOHANG)
                    if pid:
                        break
                    if time.monotonic() > deadline:
                        os.kill(self.pid, signal.SIGKILL)
                        pid, status, ru = os.wait4(self.pid, 0)
                        break
                    time.sleep(0.01)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
                self.rusage = ru
            self.status = self.proc.returncode
            if self in Server.live:
                Server.live.remove(self)
        self.err.seek(0)
        return self.err.read().decode(errors="replace")

    def died(self):
        """An error text if the server exited on its own during the run."""
        if self.proc.poll() is not None:
            return "server exited with status %d during the run" % self.proc.returncode
        return None

    @classmethod
    def kill_all(cls):
        for s in list(cls.live):
            try:
                s.proc.kill()
                s.proc.wait(5)
            except Exception:
                pass
            cls.live.remove(s)


def server_info(server, out, rec):
    """Add what the stopped server left behind to a result record."""
    if server.rusage is not None:
        rec["server_maxrss_kb"] = server.rusage.ru_maxrss
    text = out.strip()
    if text:
        rec["server_output"] = text[-2000:]
    return rec


# ---------------------------------------------------------------------- tests

def echo_test(kind, conns, size, sz, args):
    rec = {"test": "echo", "config": "%dx%s" % (conns, fmt_size(size)), "server": kind,
           "connections": conns, "line_size": size}
    try:
        server = Server(kind, "echo", args.server_cpu, args.timeout)
    except ServerError as e:
        return dict(rec, error=str(e))
    try:
        cmd = [os.path.join(BUILD, "echo_client"), "-p", str(server.port), "-c", str(conns),
               "-s", str(size), "-w", str(sz["echo_warmup"]), "-P", str(server.pid), "-t", "5"]
        if args.roundtrips:
            cmd += ["-n", str(args.roundtrips)]
        else:
            cmd += ["-d", str(sz["echo_seconds"])]
        others = Others(server)
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                               preexec_fn=pinned(args.client_cpu))
        except subprocess.TimeoutExpired:
            rec["error"] = "client timed out after %g s" % args.timeout
            return rec
        died = server.died()
        rec["others_cpu"] = others.share() if not died else None
        lines = p.stdout.strip().splitlines()
        if p.returncode != 0 or not lines:
            rec["error"] = "client exit status %d: %s" % (p.returncode, p.stderr.strip()[-500:])
            return rec
        r = json.loads(lines[-1])
        rec.update(r)
        rec.update(value=r["rt_per_s"], unit="rt/s", seconds=r["seconds"],
                   server_cpu_s=r["server_cpu_s"],
                   per_cpu_s=r["roundtrips"] / r["server_cpu_s"] if r["server_cpu_s"] > 0 else None,
                   failed=r["errors"])
        if died:
            rec["error"] = died
        elif r["stalled"]:
            rec["error"] = "stalled: no round trip for 5 s (%d round trips measured, %d errors%s)" % (
                r["roundtrips"], r["errors"], ": " + r["first_error"] if r["first_error"] else "")
        elif r["alive"] == 0:
            rec["error"] = "every connection failed: %s" % r["first_error"]
        return rec
    finally:
        server_info(server, server.stop(), rec)


AB_FIELDS = {
    "complete": r"^Complete requests:\s+(\d+)",
    "failed": r"^Failed requests:\s+(\d+)",
    "non_2xx": r"^Non-2xx responses:\s+(\d+)",
    "rps": r"^Requests per second:\s+([\d.]+)",
    "ab_seconds": r"^Time taken for tests:\s+([\d.]+)",
    "write_errors": r"^Write errors:\s+(\d+)",
    "keepalive": r"^Keep-Alive requests:\s+(\d+)",
    "p99_ms": r"^\s*99%\s+(\d+)",
    "longest_ms": r"^\s*100%\s+(\d+)",
}


def http_test(kind, conc, sz, args):
    n = sz["http_requests"]
    rec = {"test": "http", "config": "c%d" % conc, "server": kind, "concurrency": conc, "requests": n}
    try:
        server = Server(kind, "http", args.server_cpu, args.timeout)
    except ServerError as e:
        return dict(rec, error=str(e))
    try:
        return ab_run(server, rec, n, conc, "/", args)
    finally:
        server_info(server, server.stop(), rec)


def ab_run(server, rec, n, conc, path, args, keepalive=False):
    """`ab -n N -c CONC [-k] http://127.0.0.1:PORT/PATH` against a started
    server (the server's CPU read just before and after); ab's figures go
    into rec, with the requests per server CPU-second. Returns rec."""
    # -r: count socket errors as failed requests instead of giving up;
    # -s: per-request timeout; -k: HTTP keep-alive.
    cmd = ["ab", "-q", "-r", "-s", "10"] + (["-k"] if keepalive else []) + [
        "-n", str(n), "-c", str(conc), "http://127.0.0.1:%d%s" % (server.port, path)]
    others = Others(server)
    cpu0 = server.cpu()
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                           preexec_fn=pinned(args.client_cpu))
    except subprocess.TimeoutExpired:
        rec["error"] = "ab timed out after %g s" % args.timeout
        return rec
    wall = time.perf_counter() - t0
    died = server.died()
    cpu1 = server.cpu() if not died else cpu0
    rec["others_cpu"] = others.share() if not died else None
    got = {}
    for key, pat in AB_FIELDS.items():
        m = re.search(pat, p.stdout, re.M)
        if m:
            got[key] = float(m.group(1)) if "." in m.group(1) else int(m.group(1))
    if p.returncode != 0 or "rps" not in got:
        done = re.search(r"Total of (\d+) requests completed", p.stdout + p.stderr)
        rec["error"] = "ab exit status %d: %s%s" % (
            p.returncode, (p.stderr.strip() or p.stdout.strip())[-500:],
            " (%s of %d requests completed)" % (done.group(1), n) if done else "")
        return rec
    cpu = cpu1 - cpu0
    failed = got.get("failed", 0) + got.get("non_2xx", 0)
    rec.update(got, value=got["rps"], unit="req/s", seconds=got["ab_seconds"], wall_s=wall,
               server_cpu_s=cpu, per_cpu_s=got["complete"] / cpu if cpu > 0 else None,
               failed=failed)
    if p.stderr.strip():
        rec["ab_stderr"] = p.stderr.strip()[-1000:]
    if died:
        rec["error"] = died
    elif keepalive and got.get("keepalive", 0) < got["complete"]:
        rec["error"] = "only %d of %d requests kept the connection alive" % (
            got.get("keepalive", 0), got["complete"])
    return rec


def raise_nofile(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= need:
        return
    if hard < need and os.geteuid() == 0:
        hard = need
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))


def settle(pid, period=0.2, stable=3, limit=5.0):
    """Sample the RSS until it has not changed for `stable` periods."""
    last, same = proc_rss(pid), 0
    deadline = time.monotonic() + limit
    while same < stable and time.monotonic() < deadline:
        time.sleep(period)
        now = proc_rss(pid)
        same = same + 1 if now == last else 0
        last = now
    return last


def idle_test(kind, sz, args):
    n = sz["idle_conns"]
    rec = {"test": "idle", "config": "%d conns" % n, "server": kind, "connections": n}
    try:
        raise_nofile(n + 64)
    except (ValueError, OSError) as e:
        return dict(rec, error="cannot raise RLIMIT_NOFILE to %d: %s" % (n + 64, e))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < n + 64:
        return dict(rec, error="RLIMIT_NOFILE is %d, need %d (run as root or raise the hard limit)"
                    % (resource.getrlimit(resource.RLIMIT_NOFILE)[0], n + 64))
    try:
        server = Server(kind, "echo", args.server_cpu, args.timeout)
    except ServerError as e:
        return dict(rec, error=str(e))
    socks = []
    try:
        t0 = time.perf_counter()
        rss0 = settle(server.pid)
        fd0 = proc_fds(server.pid)
        batch = 500
        deadline = time.monotonic() + args.timeout
        while len(socks) < n:
            for _ in range(min(batch, n - len(socks))):
                s = socket.socket()
                s.settimeout(10)
                s.connect(("127.0.0.1", server.port))
                socks.append(s)
            # Let the server accept this batch before the next: its backlog
            # is finite, and an overflowing one turns into 1 s SYN retries.
            while proc_fds(server.pid) - fd0 < len(socks):
                died = server.died()
                if died:
                    raise ServerError(died + " (after %d connections)" % len(socks))
                if time.monotonic() > deadline:
                    raise ServerError("server accepted %d of %d connections in %g s"
                                      % (proc_fds(server.pid) - fd0, len(socks), args.timeout))
                time.sleep(0.005)
        rss1 = settle(server.pid)
        fds = proc_fds(server.pid) - fd0
        died = server.died()
        rec.update(value=(rss1 - rss0) / n, unit="B/conn", rss_before=rss0, rss_after=rss1,
                   server_fds_added=fds, wall_s=time.perf_counter() - t0,
                   server_cpu_s=server.cpu())
        if died:
            rec["error"] = died
        elif fds != n:
            rec["error"] = "server holds %d fds for %d connections" % (fds, n)
        return rec
    except (ServerError, OSError) as e:
        rec["error"] = "%s (%d connections open)" % (e, len(socks))
        return rec
    finally:
        # Server first: the client sockets then close without any handler
        # having to run, and no TIME_WAIT piles up on the client side.
        out = server.stop()
        for s in socks:
            s.close()
        server_info(server, out, rec)


# ---------------------------------------------------------------- formatting

def fmt_size(n):
    if n >= 1000 and n % 1000 == 0:
        return "%dKB" % (n // 1000)
    return "%dB" % n


def load_table(results, servers):
    """echo and http results: one row per test x config x server."""
    head = ("test", "server", "rate", "unit", "vs C", "per srv CPU-s", "vs C",
            "srv CPU", "others", "failed", "srv maxrss MB")
    rows = []
    keys = dict.fromkeys((r["test"], r["config"]) for r in results if r["test"] in ("echo", "http"))
    for test, config in keys:
        group = {r["server"]: r for r in results if (r["test"], r["config"]) == (test, config)}
        ref = group.get("c") if "c" in group and "error" not in group["c"] else None
        name = "%s %s" % (test, config)
        for kind in servers:
            r = group.get(kind)
            if r is None:
                continue
            if "error" in r and "value" not in r:
                rows.append((name, kind, "ERROR", "(below)", "", "", "", "", "", "", ""))
                continue
            busy = r["server_cpu_s"] / r["seconds"] if r.get("seconds") else None
            rows.append((
                name, kind + (" (!)" if "error" in r else ""), fmt_num(r["value"]), r["unit"],
                fmt_ratio(ratio(r["value"], ref and ref["value"])) if kind != "c" else "",
                fmt_num(r["per_cpu_s"]),
                fmt_ratio(ratio(r["per_cpu_s"], ref and ref["per_cpu_s"])) if kind != "c" else "",
                "-" if busy is None else "%.0f%%" % (100 * busy),
                "-" if r.get("others_cpu") is None else "%.0f%%" % (100 * r["others_cpu"]),
                r.get("failed", "-"),
                "%.1f" % (r["server_maxrss_kb"] / 1024) if "server_maxrss_kb" in r else "-"))
    return render(head, rows, {0, 1, 3})


def idle_table(results, servers):
    head = ("test", "server", "value", "unit", "vs asyncio", "vs uvloop",
            "RSS before MB", "RSS after MB", "srv maxrss MB")
    rows = []
    group = {r["server"]: r for r in results if r["test"] == "idle"}
    ref = {k: group[k]["value"] for k in ("asyncio", "uvloop") if k in group and "value" in group[k]}
    for kind in servers:
        r = group.get(kind)
        if r is None:
            continue
        name = "idle %s" % r["config"]
        if "value" not in r:
            rows.append((name, kind, "ERROR", "(below)", "", "", "", "", ""))
            continue
        vs = [fmt_ratio(ratio(r["value"], ref.get(k), False)) if k in ref and k != kind else ""
              for k in ("asyncio", "uvloop")]
        rows.append((name, kind + (" (!)" if "error" in r else ""), fmt_num(r["value"]), r["unit"],
                     vs[0], vs[1], "%.1f" % (r["rss_before"] / 2**20),
                     "%.1f" % (r["rss_after"] / 2**20),
                     "%.1f" % (r["server_maxrss_kb"] / 1024) if "server_maxrss_kb" in r else "-"))
    return render(head, rows, {0, 1, 3})


LEGEND = """\
echo NxS: N connections, each sending a line of S bytes (newline included) and
  waiting for its whole echo (every byte checked) before the next; rate: round
  trips/s. http cN: ab -n REQUESTS -c N, HTTP/1.0, one request per connection;
  rate: requests/s. Higher is better for both.
per srv CPU-s: round trips (requests) per CPU-second the server process used
  (user + system) in the measured window: efficiency, whether or not the
  server was saturated. vs C: this server's figure / the C epoll server's.
srv CPU: server CPU time / wall time of the window (100% = one CPU saturated).
others: CPU used meanwhile by the rest of the machine (not the server, not
  the client), in % of one CPU: above a few %, that run was disturbed.
failed: echo: connections dropped for an error (reset, EOF, wrong bytes);
  http: ab's "Failed requests" + "Non-2xx responses".
idle: RSS growth of the server / connections, all handlers parked in
  readline(); vs X: how many times less memory than X (>1x better).
(!): the run completed but something went wrong: see below the table."""


# ---------------------------------------------------------------------- main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="short runs, for a smoke test (< 60 s)")
    ap.add_argument("--only", type=lambda s: csv_list(s, TESTS, "test"), default=list(TESTS),
                    metavar="TEST[,TEST]", help="tests to run (default: %s)" % ",".join(TESTS))
    ap.add_argument("--servers", type=lambda s: csv_list(s, SERVERS, "server"),
                    default=list(SERVERS), metavar="S[,S]",
                    help="servers to compare (default: %s)" % ",".join(SERVERS))
    ap.add_argument("--json", metavar="FILE", help="also write all results as JSON to FILE")
    ap.add_argument("--server-cpu", type=int, default=0, help="CPU for the servers (default 0)")
    ap.add_argument("--client-cpu", type=int, default=1,
                    help="CPU for the load generators and this script (default 1)")
    ap.add_argument("--roundtrips", type=int, default=0,
                    help="echo: measure this many round trips instead of a fixed time")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per echo/http test x server; the median is reported (default 1)")
    ap.add_argument("--timeout", type=float, default=120.0,
                    help="seconds before a client, ab or a server start is given up on (default 120)")
    args = ap.parse_args(argv)

    allowed = os.sched_getaffinity(0)
    for what in ("server_cpu", "client_cpu"):
        if getattr(args, what) not in allowed:
            ap.error("CPU %d is not available (allowed: %s)" % (getattr(args, what), sorted(allowed)))
    if args.server_cpu == args.client_cpu:
        print("warning: server and client share CPU %d" % args.server_cpu)
    os.sched_setaffinity(0, {args.client_cpu})   # keep this script off the server's CPU
    sz = SIZES["quick" if args.quick else "full"]

    print("python: %s   server CPU %d, client CPU %d   sizes: %s (echo %s, ab -n %d, idle %d conns)"
          % (PYTHON, args.server_cpu, args.client_cpu, "quick" if args.quick else "full",
             "%d round trips" % args.roundtrips if args.roundtrips
             else "%g s + %g s warm-up" % (sz["echo_seconds"], sz["echo_warmup"]),
             sz["http_requests"], sz["idle_conns"]))
    err = build_c()
    if err:
        print("cannot build the C programs (%s): %s" % (CC, err))
        return 1
    servers, skipped = available(args.servers, probe, "skipping %s: %s%s")
    tests = list(args.only)
    if "http" in tests:
        why = ensure_ab()
        if why:
            print("skipping http: %s" % why)
            tests.remove("http")
            skipped["http"] = why
    if not servers or not tests:
        print("nothing to run")
        return 1

    jobs = []
    if "echo" in tests:
        for conns, size in ECHO_CONFIGS:
            for kind in servers:
                jobs.append(("echo %dx%s" % (conns, fmt_size(size)), kind,
                             lambda k=kind, c=conns, s=size: echo_test(k, c, s, sz, args), True))
    if "http" in tests:
        for conc in HTTP_CONCURRENCY:
            for kind in servers:
                jobs.append(("http c%d" % conc, kind,
                             lambda k=kind, c=conc: http_test(k, c, sz, args), True))
    if "idle" in tests:
        for kind in servers:
            if kind in PY_SERVERS:
                jobs.append(("idle", kind, lambda k=kind: idle_test(k, sz, args), False))

    t_start = time.time()
    results = []
    try:
        for name in dict.fromkeys(job[0] for job in jobs):
            group = [job for job in jobs if job[0] == name]
            runs = take_turns(name, {kind: run for _, kind, run, _ in group},
                              max(1, args.repeat) if group[0][3] else 1)
            results.extend(combine(runs[kind], median_value=False) for _, kind, _, _ in group)
    finally:
        Server.kill_all()

    print()
    if any(r["test"] in ("echo", "http") for r in results):
        print(load_table(results, servers))
        print()
    if any(r["test"] == "idle" for r in results):
        print(idle_table(results, servers))
        print()
    print(LEGEND)

    errors = [r for r in results if "error" in r]
    for r in errors:
        print("\n%s %s on %s failed: %s" % (r["test"], r["config"], r["server"], r["error"]))
        if r.get("server_output"):
            print("  server output:\n    %s" % r["server_output"].replace("\n", "\n    "))
    for r in results:
        if "error" not in r and r.get("server_output"):
            print("\n%s %s on %s: the server wrote:\n    %s"
                  % (r["test"], r["config"], r["server"], r["server_output"].replace("\n", "\n    ")))
    print("\ntotal %.1f s" % (time.time() - t_start))

    if args.json:
        write_json(args.json, {
            "python": PYTHON, "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
            "quick": args.quick, "repeat": args.repeat, "sizes": sz,
            "servers": servers, "skipped": skipped, "tests": tests,
        }, results)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
