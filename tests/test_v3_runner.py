"""python3 -m uasyncio.v3 prog.py: a MicroPython program runs unchanged, with
asyncio/uasyncio bound to uasyncio.v3 and MicroPython's time and micropython
helpers available."""
import os
import subprocess
import sys

from conftest import PKG_DIR, run_program


def run_prog(tmp_path, source, *args, timeout=60):
    """Run source through the runner; returns the CompletedProcess."""
    return run_program(tmp_path, source, *args, runner=("-m", "uasyncio.v3"), timeout=timeout)


def test_asyncio_and_uasyncio_are_uasyncio_v3(tmp_path):
    p = run_prog(tmp_path, """
        import asyncio, uasyncio, sys
        from asyncio import Event
        print(asyncio is uasyncio, asyncio.__name__, asyncio.__version__)
        print(Event is asyncio.Event)
        async def main():
            await asyncio.sleep_ms(1)
            return 7
        print(asyncio.run(main()))
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n")[:3] == ["True uasyncio.v3 (3, 0, 0)", "True", "7"]


def test_argv_and_program_directory(tmp_path):
    (tmp_path / "helper.py").write_text("VALUE = 'from beside the program'\n")
    p = run_prog(tmp_path, """
        import sys, helper
        print(sys.argv[1:], helper.VALUE)
        print(__name__)
        """, "a", "b c")
    assert p.returncode == 0, p.stderr
    assert p.stdout == "['a', 'b c'] from beside the program\n__main__\n"


def test_time_ticks_and_sleeps(tmp_path):
    p = run_prog(tmp_path, """
        import time, utime
        t0, u0 = time.ticks_ms(), time.ticks_us()
        time.sleep_ms(20)
        time.sleep_us(1000)
        print(time.ticks_diff(time.ticks_ms(), t0) >= 20, time.ticks_diff(time.ticks_us(), u0) >= 21000)
        print(time.ticks_add(2**30 - 1, 2), time.ticks_diff(1, 2**30 - 1))
        print(utime is time, 0 <= time.ticks_cpu() < 2**30)
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "True True\n1 2\nTrue True\n"


def test_micropython_module(tmp_path):
    p = run_prog(tmp_path, """
        import micropython
        from micropython import const
        X = const(5)

        @micropython.native
        def f(): return 1

        @micropython.viper
        def g(): return 2

        @micropython.bytecode
        def h(): return 3

        micropython.alloc_emergency_exception_buf(100)
        print(X, f(), g(), h())
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "5 1 2 3\n"


def test_const_without_an_import(tmp_path):
    # MicroPython's compiler knows const(); programs often use it unimported.
    p = run_prog(tmp_path, """
        _PERIOD = const(40)
        class C:
            N = const(2)
        print(_PERIOD * C.N)
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "80\n"


def test_print_exception_in_micropythons_format(tmp_path):
    p = run_prog(tmp_path, """
        import errno, io, sys

        def f():
            raise ValueError("bad", 2)

        try:
            f()
        except Exception as e:
            sys.print_exception(e)
        try:
            try:
                1 / 0
            except ZeroDivisionError:
                raise KeyError("k")
        except Exception as e:
            sys.print_exception(e, file=sys.stdout)
        buf = io.StringIO()
        sys.print_exception(OSError(errno.ECONNRESET), buf)
        sys.print_exception(OSError(errno.ENOENT, "no file"), buf)
        sys.print_exception(OSError(9999), buf)
        sys.print_exception(ValueError(), buf)
        print(buf.getvalue(), end="")
        """)
    assert p.returncode == 0, p.stderr
    prog = tmp_path / "prog.py"   # as the runner was given it, as MicroPython prints it
    assert p.stdout == (
        "Traceback (most recent call last):\n"
        '  File "%s", line 8, in <module>\n'
        '  File "%s", line 5, in f\n'
        "ValueError: ('bad', 2)\n"
        "Traceback (most recent call last):\n"
        '  File "%s", line 15, in <module>\n'
        "KeyError: k\n"
        "OSError: [Errno 104] ECONNRESET\n"
        "OSError: [Errno 2] ENOENT: no file\n"
        "OSError: 9999\n"
        "ValueError: \n") % (prog, prog, prog)
    assert p.stderr == ""


def test_lazy_import_relative_to_the_calling_package(tmp_path):
    # A package's __getattr__ loads its submodules on first use with
    # __import__(name, None, None, True, 1), as MicroPython's libraries do.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        "_attrs = {'thing': 'mod', 'other': 'sub'}\n"
        "def __getattr__(attr):\n"
        "    mod = _attrs.get(attr, None)\n"
        "    if mod is None:\n"
        "        raise AttributeError(attr)\n"
        "    value = getattr(__import__(mod, None, None, True, 1), attr)\n"
        "    globals()[attr] = value\n"
        "    return value\n")
    (pkg / "mod.py").write_text("thing = 'a thing'\n")
    (pkg / "sub" / "__init__.py").write_text("other = 42\n")
    p = run_prog(tmp_path, """
        import sys, pkg
        print(pkg.thing, pkg.other, "pkg.mod" in sys.modules, "mod" in sys.modules)
        try:
            pkg.missing
        except AttributeError as e:
            print("AttributeError", e)
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "a thing 42 True False\nAttributeError missing\n"


def test_schedule_from_a_thread_and_from_a_signal_handler(tmp_path):
    p = run_prog(tmp_path, """
        import _thread, os, signal, threading
        import asyncio, micropython

        got = []
        ev = asyncio.ThreadSafeFlag()

        def on_loop(arg):
            got.append((arg, threading.current_thread() is threading.main_thread()))
            if len(got) == 2:
                ev.set()

        def handler(signum, frame):
            micropython.schedule(on_loop, "signal")

        signal.signal(signal.SIGUSR1, handler)

        async def main():
            _thread.start_new_thread(micropython.schedule, (on_loop, "thread"))
            await asyncio.sleep_ms(50)
            os.kill(os.getpid(), signal.SIGUSR1)
            await asyncio.wait_for(ev.wait(), 10)
            print(sorted(got))

        asyncio.run(main())
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "[('signal', True), ('thread', True)]\n"


def test_schedule_runs_before_the_queued_tasks_and_is_never_lost(tmp_path):
    """As MicroPython's: the function runs as soon as Python code runs again
    (not behind the tasks queued), and one scheduled as run() returns still
    runs."""
    p = run_prog(tmp_path, """
        import asyncio, micropython

        async def other():
            print("other")

        async def main():
            asyncio.create_task(other())
            micropython.schedule(print, "scheduled 1")
            for i in range(2):
                pass
            print("main")
            await asyncio.sleep(0)
            micropython.schedule(print, "scheduled 2")

        asyncio.run(main())
        for i in range(2):
            pass
        print("end")
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split("\n") == ["scheduled 1", "main", "other", "scheduled 2", "end", ""]


def test_schedule_from_a_thread_wakes_the_blocked_loop_and_runs_in_its_thread(tmp_path):
    """An Event is not thread-safe; set through schedule() it is, and the
    loop blocked in a long wait wakes for it."""
    p = run_prog(tmp_path, """
        import _thread, asyncio, micropython, threading

        ev = asyncio.Event()

        def on_main(arg):
            print(arg, threading.current_thread() is threading.main_thread())
            ev.set()

        async def main():
            _thread.start_new_thread(micropython.schedule, (on_main, "set"))
            await asyncio.wait_for(ev.wait(), 60)
            print("woken")

        asyncio.run(main())
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "set True\nwoken\n"


def test_a_function_that_schedules_itself_runs_while_the_loop_has_no_task_queued(tmp_path):
    """The loop waiting for an Event only a scheduled function sets keeps
    running scheduled functions (MicroPython's scheduler runs them while
    its loop waits)."""
    p = run_prog(tmp_path, """
        import asyncio, micropython

        ev = asyncio.Event()
        rounds = [0]

        def poll_again(arg):
            rounds[0] += 1
            if rounds[0] == arg:
                ev.set()
            else:
                micropython.schedule(poll_again, arg)

        async def main():
            micropython.schedule(poll_again, 500)
            await ev.wait()
            print("set after", rounds[0])

        asyncio.run(main())
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "set after 500\n"


def test_schedule_prints_what_the_function_raises_and_says_when_full(tmp_path):
    """As MicroPython's: the exception is printed (its format, on stdout)
    and the code it interrupted carries on."""
    p = run_prog(tmp_path, """
        import _thread, asyncio, micropython, threading

        def fail(arg):
            raise ValueError(arg)

        async def main():
            micropython.schedule(fail, 7)
            await asyncio.sleep_ms(1)
            print("main ends")

        asyncio.run(main())

        # Filled from a thread while the main thread runs no Python code.
        ran, refused, done = [], [], threading.Event()

        def fill():
            for i in range(1000):
                try:
                    micropython.schedule(ran.append, i)
                except RuntimeError as e:
                    refused.append(str(e))
            done.set()

        _thread.start_new_thread(fill, ())
        done.wait()
        for i in range(2):
            pass
        print(len(ran) + len(refused), refused[0], ran == sorted(ran))
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout.endswith("ValueError: 7\nmain ends\n1000 schedule queue full True\n"), p.stdout
    assert p.stdout.startswith("Traceback (most recent call last):\n"), p.stdout


def test_u_names_of_standard_modules(tmp_path):
    p = run_prog(tmp_path, """
        import usocket, ustruct, ujson, uerrno, uselect
        import socket, struct, json
        print(usocket is socket, ustruct is struct, ujson.dumps([1]))
        """)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "True True [1]\n"


def test_an_uncaught_exception_exits_non_zero_with_its_traceback(tmp_path):
    p = run_prog(tmp_path, """
        import asyncio
        async def main():
            raise ValueError("boom")
        asyncio.run(main())
        """)
    assert p.returncode == 1
    assert "ValueError: boom" in p.stderr


def test_usage_without_a_program():
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    p = subprocess.run([sys.executable, "-m", "uasyncio.v3"], capture_output=True, text=True, timeout=60,
                       env=env)
    assert p.returncode == 2 and "usage" in p.stderr


def test_dash_c_runs_code_as_micropython_c(tmp_path):
    # As `micropython -c CODE args`: how two-instance test runners start a program.
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    code = "import sys, asyncio\nprint(sys.argv, asyncio.__name__, __name__, sys.path[0] == '')\n"
    p = subprocess.run([sys.executable, "-m", "uasyncio.v3", "-c", code, "a", "b"], capture_output=True,
                       text=True, timeout=60, env=env, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout == "['-c', 'a', 'b'] uasyncio.v3 __main__ True\n"
