"""Build and run the C unit tests of the portable core (src/core).

Each tests/c/test_*.c is a standalone program linked with the core sources
it needs. It prints one line per failed check and a summary line, and exits
non-zero on any failure.

Environment:
  CC           the C compiler (default "cc")
  UA_SANITIZE  e.g. "address,undefined": build with -fsanitize=... as well
  UA_VALGRIND  "1": run each program under valgrind (memcheck, full leak
               check); any error or leak fails the test

On x86-64 Linux each program is also built and run as a 32-bit program
(-m32, Debian's gcc-multilib), as on armhf or i386: 4-byte pointers and
8-byte aligned allocations. That build is plain (no sanitizer, no valgrind).
"""

import os
import platform
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
C_TESTS = ROOT / "tests" / "c"

# The core sources each test program links against.
SOURCES = {
    "test_ticks": ["ticks.c"],
    "test_timerheap": ["timerheap.c", "ticks.c"],
    "test_runq": ["runq.c"],
    "test_ptrmap": ["ptrmap.c"],
    "test_poller": ["poller_epoll.c"],
    "test_linebuf": ["linebuf.c"],
    "test_wsproto": ["wsproto.c", "sha1.c"],
    "test_wakeup": ["wakeup.c", "poller_epoll.c"],
    "test_waitq": [],
    "test_alloc_failures": ["linebuf.c", "poller_epoll.c", "ptrmap.c", "runq.c",
                            "ticks.c", "timerheap.c"],
}

# More for some programs: the core built with a failing allocator.
EXTRA_FLAGS = {
    "test_alloc_failures": ["-include", "tests/c/failalloc.h", "tests/c/failalloc.c"],
}

CFLAGS = ["-std=c11", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror", "-O1", "-g"]


def _test_names():
    return sorted(p.stem for p in C_TESTS.glob("test_*.c"))


# Word sizes to build for: the native one, and 32-bit where the machine can
# build and run it (install-deps.sh installs gcc-multilib there).
WORDS = ["native"] + (["m32"] if sys.platform.startswith("linux") and platform.machine() == "x86_64"
                      else [])


def _compiler():
    return shlex.split(os.environ.get("CC", "cc"))


def _sanitize_flags():
    sanitize = os.environ.get("UA_SANITIZE", "").strip()
    if not sanitize:
        return []
    return ["-fsanitize=" + sanitize, "-fno-omit-frame-pointer"]


def _runner():
    if os.environ.get("UA_VALGRIND") != "1":
        return []
    return ["valgrind", "-q", "--error-exitcode=99", "--leak-check=full",
            "--show-leak-kinds=all", "--errors-for-leak-kinds=all"]


def _run_env():
    env = dict(os.environ)
    # UBSan only warns by default: make it fail the run like ASan does.
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
    return env


@pytest.fixture(scope="session")
def c_build_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("c_core")


def _build(name, outdir, word="native"):
    if name not in SOURCES:
        # Without an entry it would link against nothing: say so plainly.
        pytest.fail(f"tests/c/{name}.c has no entry in SOURCES in {Path(__file__).name}")
    exe = outdir / (name if word == "native" else f"{name}-{word}")
    cmd = (
        _compiler()
        + CFLAGS
        + (_sanitize_flags() if word == "native" else ["-m32"])
        # Relative to the root (the cwd), so failure lines name short paths.
        + ["-Isrc/core", f"tests/c/{name}.c"]
        + EXTRA_FLAGS.get(name, [])
        + [f"src/core/{src}" for src in SOURCES[name]]
        + ["-o", str(exe), "-pthread"]
    )
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        hint = "\n(-m32 needs gcc-multilib: run scripts/install-deps.sh as root)" if word == "m32" else ""
        pytest.fail(
            "compile failed" + hint + ":\n  "
            + shlex.join(cmd)
            + "\n"
            + proc.stdout
            + proc.stderr,
            pytrace=False,
        )
    return exe


@pytest.mark.parametrize("word", WORDS)
@pytest.mark.parametrize("name", _test_names())
def test_c_core(name, word, c_build_dir):
    if name in ("test_poller", "test_wakeup") and not sys.platform.startswith("linux"):
        pytest.skip("the poller backend is epoll (Linux only)")
    exe = _build(name, c_build_dir, word)
    runner = _runner() if word == "native" else []
    proc = subprocess.run(
        runner + [str(exe)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=_run_env()
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{output}"
    # The program must have reached its summary line.
    assert re.search(rf"^{name}: \d+ passed, 0 failed$", proc.stdout, re.M), output
