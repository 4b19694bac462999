"""What every Python benchmark server does before serving: command line,
CPU pinning, a high fd limit, and dying with the runner.

    python3 SERVER.py MODE PORT [--cpu N] [--backlog N]

MODE is `echo` (echo every line back; the idle-connection test uses it too:
each handler then sits in readline()) or `http` (read the request line and
headers up to the blank line, answer RESPONSE, close).
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
    sys.path.insert(0, ROOT)
    return args


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
