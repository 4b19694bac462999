"""python3 -m uasyncio.v3 prog.py [args]: run a MicroPython program unchanged.

`asyncio` and `uasyncio` are bound to uasyncio.v3; `time` gains
ticks_ms/ticks_us/ticks_cpu/ticks_add/ticks_diff/sleep_ms/sleep_us; a
`micropython` module gives const, schedule (runs the function soon on the
loop's thread; safe from other threads and signal handlers), and native,
viper as no-op decorators; `ssl` (and `ussl`) is MicroPython's ssl API
over CPython's (uasyncio.v3._mpssl); `utime`, `usocket`, `uselect`, ...
name the standard modules MicroPython's old u-names stand for.
"""
import importlib
import importlib.util
import os
import runpy
import sys
import time
import types

import uasyncio.v3 as _v3
from uasyncio.core import TICKS_PERIOD, ticks_add, ticks_diff, ticks_ms

USAGE = "usage: python3 -m uasyncio.v3 prog.py [args]"

# MicroPython's u-prefixed names (still in use in many programs).
ALIASES = {
    "utime": "time", "usocket": "socket", "uselect": "select", "ustruct": "struct",
    "ujson": "json", "ubinascii": "binascii", "uerrno": "errno", "uos": "os", "uio": "io",
    "ure": "re", "uhashlib": "hashlib", "urandom": "random", "ucollections": "collections",
    "ussl": "ssl", "usys": "sys", "uzlib": "zlib", "uheapq": "heapq", "uarray": "array",
}


def ticks_us():
    return (time.monotonic_ns() // 1000) & (TICKS_PERIOD - 1)


def sleep_ms(ms):
    time.sleep(ms / 1000)


def sleep_us(us):
    time.sleep(us / 1000000)


def _identity(f):
    return f


def _nothing(*args, **kwargs):
    return None


def schedule(func, arg):
    """Run func(arg) soon on the loop's thread (MicroPython's micropython.schedule)."""
    _v3.get_event_loop().call_soon_threadsafe(func, arg)


def make_micropython_module():
    m = types.ModuleType("micropython", "MicroPython's micropython module, as far as it means anything here.")
    m.const = _identity
    m.native = m.viper = _identity
    m.schedule = schedule
    for name in ("alloc_emergency_exception_buf", "opt_level", "mem_info", "qstr_info",
                 "stack_use", "heap_lock", "heap_unlock", "kbd_intr"):
        setattr(m, name, _nothing)
    return m


class _AliasLoader:
    def __init__(self, real):
        self.real = real

    def create_module(self, spec):
        return importlib.import_module(self.real)

    def exec_module(self, module):
        pass


class _AliasFinder:
    @staticmethod
    def find_spec(name, path=None, target=None):
        real = ALIASES.get(name)
        return importlib.util.spec_from_loader(name, _AliasLoader(real)) if real else None


def install():
    """Make this interpreter look like MicroPython's to a program."""
    for name in ("ticks_ms", "ticks_add", "ticks_diff"):
        setattr(time, name, globals()[name])
    time.ticks_us = time.ticks_cpu = ticks_us
    time.sleep_ms = sleep_ms
    time.sleep_us = sleep_us
    sys.modules.setdefault("micropython", make_micropython_module())
    from uasyncio.v3 import _mpssl   # imports CPython's ssl first, which it wraps
    sys.modules["ssl"] = _mpssl
    sys.meta_path.append(_AliasFinder)
    # Last: from here on both names are uasyncio.v3 (already fully imported).
    sys.modules["asyncio"] = _v3
    sys.modules["uasyncio"] = _v3


def main(argv):
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not argv else sys.stdout)
        return 2 if not argv else 0
    prog = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(prog))
    install()
    runpy.run_path(prog, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
