"""What every Python benchmark server does before serving: command line,
CPU pinning, a high fd limit, and dying with the runner.

    python3 SERVER.py MODE PORT [--cpu N] [--backlog N] [--stats-port N]

MODE is `echo` (echo every line back; the idle-connection test uses it too:
each handler then sits in readline()) or `http` (read the request line and
headers up to the blank line, answer RESPONSE, close).

Both servers also take --stats-port N: a connection there gets mem_stats()
and is closed (reliability/load.py uses it for its leak checks).
"""

import argparse
import ctypes
import os
import resource
import signal
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nHello"
HOST = "127.0.0.1"


def setup(description, extra_args=()):
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("mode", choices=("echo", "http"))
    ap.add_argument("port", type=int)
    ap.add_argument("--cpu", type=int, default=None, help="CPU to pin this process to")
    ap.add_argument("--backlog", type=int, default=1024, help="listen backlog (default 1024)")
    ap.add_argument("--stats-port", type=int, default=None,
                    help="also serve memory counters on this port (mem_stats())")
    for args, kwargs in extra_args:
        ap.add_argument(*args, **kwargs)
    args = ap.parse_args()

    # Killed (SIGKILL) when the parent dies: a crashed or interrupted runner
    # leaves no server behind.
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    # The in-tree build must win over anything installed.
    # (UA_PKG_DIR: another build of it, e.g. build/asan, as the tests take.)
    sys.path.insert(0, os.path.join(ROOT, os.environ.get("UA_PKG_DIR", "")))
    return args


def mem_stats(errors):
    """What this process holds by its own account, as one JSON line: live
    Python memory blocks (sys.getallocatedblocks(), after a full collection),
    bytes the C heap has handed out and not got back (glibc's mallinfo2:
    in use + mmapped chunks), and the handler errors so far. Unlike RSS,
    these do not count memory the allocators keep for reuse, so a leak of
    even one object per connection shows."""
    import gc
    import json
    global _mallinfo2
    if _mallinfo2 is None:   # looked up once: each CDLL() makes new classes
        try:
            _mallinfo2 = ctypes.CDLL(None).mallinfo2   # glibc >= 2.33
            _mallinfo2.restype = _Mallinfo2
        except (OSError, AttributeError):
            _mallinfo2 = False
    collected = gc.collect()
    rec = {"py_blocks": sys.getallocatedblocks(), "gc_collected": collected,
           "handler_errors": errors.n}
    if _mallinfo2:
        info = _mallinfo2()
        rec["heap_in_use"] = info.uordblks + info.hblkhd
    return (json.dumps(rec) + "\n").encode()


class _Mallinfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


_mallinfo2 = None


class Errors:
    """Handler errors (peer resets and the like): the first few are shown on
    stderr, then every 1000th, so a misbehaving run is visible but cannot
    flood the runner."""

    def __init__(self):
        self.n = 0

    def report(self, where, exc):
        self.n += 1
        if self.n <= 5 or self.n % 1000 == 0:
            sys.stderr.write("%s: handler error #%d: %r\n" % (where, self.n, exc))
            sys.stderr.flush()
