"""python3 -m uasyncio.v3 prog.py [args]: run a MicroPython program unchanged
(or -c CODE [args], as `micropython -c`).

`asyncio` and `uasyncio` are bound to uasyncio.v3; `time` gains
ticks_ms/ticks_us/ticks_cpu/ticks_add/ticks_diff/sleep_ms/sleep_us; a
`micropython` module gives const, schedule (runs the function in the main
thread as soon as Python code runs there; safe from other threads and signal
handlers), and native,
viper, bytecode as no-op decorators; `const` is also a builtin (MicroPython's
compiler knows the name); `sys.print_exception` prints as MicroPython's;
`__import__` with globals None resolves a relative name against the calling
module, as MicroPython's; `ssl` (and `ussl`) is MicroPython's ssl API over
CPython's (uasyncio.v3._mpssl); `utime`, `usocket`, `uselect`, ... name the
standard modules MicroPython's old u-names stand for.
"""
import builtins
import errno
import importlib
import importlib.util
import os
import runpy
import sys
import time
import types

import uasyncio.v3 as _v3
from uasyncio.core import TICKS_PERIOD, ticks_add, ticks_diff, ticks_ms

USAGE = "usage: python3 -m uasyncio.v3 prog.py [args] | -c CODE [args]"

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


def make_micropython_module():
    m = types.ModuleType("micropython", "MicroPython's micropython module, as far as it means anything here.")
    m.const = _identity
    m.native = m.viper = m.bytecode = _identity
    m.schedule = importlib.import_module("uasyncio._uasyncio").schedule
    for name in ("alloc_emergency_exception_buf", "opt_level", "mem_info", "qstr_info",
                 "stack_use", "heap_lock", "heap_unlock", "kbd_intr"):
        setattr(m, name, _nothing)
    return m


def _exception_message(exc):
    """What MicroPython prints after "Type: " (its exception print kind):
    nothing, the one argument as str, or the arguments' tuple; an OSError
    with a known errno as "[Errno N] NAME" (then ": " and its message)."""
    args = exc.args
    if isinstance(exc, OSError) and 0 < len(args) < 3 and type(args[0]) is int and args[0] in errno.errorcode:
        msg = "[Errno %d] %s" % (args[0], errno.errorcode[args[0]])
        return msg + ": " + str(args[1]) if len(args) > 1 else msg
    if not args:
        return ""
    return str(args[0]) if len(args) == 1 else repr(args)


def _type_name(exc):
    # MicroPython has no OSError subclasses: CPython's own (ConnectionResetError,
    # made from an errno) print as the OSError they are there.
    t = type(exc)
    if isinstance(exc, OSError) and t.__module__ == "builtins":
        return "OSError"
    return t.__name__


def print_exception(exc, file=None):
    """sys.print_exception(exc, file=sys.stdout), in MicroPython's format:
    the traceback's frames outermost first (file, line and function, no
    source), then "Type: message"; no chained exceptions."""
    out = sys.stdout if file is None else file
    lines = []
    tb = exc.__traceback__
    if tb is not None:
        lines.append("Traceback (most recent call last):\n")
        while tb is not None:
            code = tb.tb_frame.f_code
            lines.append('  File "%s", line %d, in %s\n' % (code.co_filename, tb.tb_lineno, code.co_name))
            tb = tb.tb_next
    lines.append("%s: %s\n" % (_type_name(exc), _exception_message(exc)))
    out.write("".join(lines))


_import = builtins.__import__


def mp_import(name, globals=None, locals=None, fromlist=(), level=0):
    """__import__ as MicroPython's: a relative import with globals None is
    relative to the calling module (the lazy-loading idiom in a package's
    __getattr__: __import__(name, None, None, True, 1)), and a true
    fromlist that is not a sequence asks for the named module itself."""
    if globals is None and level > 0:
        globals = sys._getframe(1).f_globals
    if fromlist and not isinstance(fromlist, (list, tuple)):
        # A name every module has: CPython then returns the named module
        # itself, and imports nothing more.
        fromlist = ("__name__",)
    return _import(name, globals, locals, fromlist, level)


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
    builtins.const = _identity
    builtins.__import__ = mp_import
    sys.print_exception = print_exception
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
    if argv[0] == "-c":
        if len(argv) < 2:
            print(USAGE, file=sys.stderr)
            return 2
        # As python3 -c: argv[0] is "-c", the current folder first on sys.path.
        sys.argv = ["-c"] + argv[2:]
        sys.path[0] = ""
        install()
        main_module = types.ModuleType("__main__")
        sys.modules["__main__"] = main_module
        exec(compile(argv[1], "<stdin>", "exec"), main_module.__dict__)
        return 0
    prog = argv[0]
    sys.argv = list(argv)
    sys.path[0] = os.path.dirname(os.path.abspath(prog))
    install()
    runpy.run_path(prog, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
