"""The suite's core files on every other CPython >= 3.10 on the machine
(pyenv's): each gets its own copy of the package in build/pythons/<version>/
with the extension built by it (scripts/build_ext.py --build-lib, with its
own sysconfig flags; a copy, because pyenv's 3.11 and Debian's would
otherwise share one in-place file name) and runs them on it (UA_PKG_DIR, as
make asan does). Each build is made with -Werror: no
version may warn (deprecated API included).

    /usr/bin/python3 scripts/pythons.py             build and test on each, say which ran
    /usr/bin/python3 scripts/pythons.py --list      the interpreters found
    /usr/bin/python3 scripts/pythons.py --testpath  print a PYTHONPATH with pytest on it

Those interpreters have no pytest, and no package index is reachable, so
they borrow Debian's: its pytest, hypothesis and their dependencies are pure
Python, and a folder of links to just those (build/testpath) goes on
PYTHONPATH; nothing else of Debian's site-packages is seen. The core files:
scheduling, streams, uasyncio.v3's CPython names side by side with that
version's asyncio, and for each subpackage of uasyncio the test file named
after it (tests/test_<name>.py, else tests/test_<name>_core.py, else the first
tests/test_<name>_*.py)."""
import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEBIAN_SITE = "/usr/lib/python3/dist-packages"
# Debian's pytest and hypothesis with what they import (exceptiongroup and
# tomli only on 3.10), all pure Python.
TEST_PACKAGES = ["pytest", "_pytest", "py.py", "pluggy", "iniconfig", "packaging", "attr", "attrs",
                 "pytest_timeout.py", "hypothesis", "_hypothesis_pytestplugin.py",
                 "_hypothesis_ftz_detector.py", "sortedcontainers", "exceptiongroup", "tomli"]
ENTRY_POINTS = ["pytest_timeout", "hypothesis"]   # the plugins pytest loads by entry point
CORE_TESTS = ["test_scheduling.py", "test_streams.py", "test_v3_cpython_names.py"]


def testpath():
    """build/testpath: links to Debian's test packages (and their
    entry-point metadata, so the plugins load as they do on Debian)."""
    path = os.path.join(ROOT, "build", "testpath")
    os.makedirs(path, exist_ok=True)
    names = list(TEST_PACKAGES)
    for ep in ENTRY_POINTS:
        names += [os.path.basename(p) for p in glob.glob(os.path.join(DEBIAN_SITE, ep + "-*.*-info"))]
    for name in names:
        src, dst = os.path.join(DEBIAN_SITE, name), os.path.join(path, name)
        if os.path.exists(src) and not os.path.lexists(dst):
            os.symlink(src, dst)
    return path


def pyenv_root():
    exe = shutil.which("pyenv")
    if exe:
        r = subprocess.run([exe, "root"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            return r.stdout.strip()
    return os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")


def version(exe):
    # Written so that Python 2 answers too.
    r = subprocess.run([exe, "-c", "import platform, sys; sys.stdout.write('%s %d %d %d' % "
                        "((platform.python_implementation(),) + tuple(sys.version_info[:3])))"],
                       capture_output=True, text=True)
    if r.returncode:
        return None
    impl, *v = r.stdout.split()
    return tuple(int(x) for x in v) if impl == "CPython" else None


def interpreters(supported=True):
    """pyenv's CPythons, oldest first, as (path, version): those >= 3.10,
    or (supported=False) the older ones."""
    found = []
    for exe in glob.glob(os.path.join(pyenv_root(), "versions", "*", "bin", "python")):
        v = version(exe)
        if v and (v >= (3, 10)) == supported:
            found.append((v, exe))
    return [(exe, v) for v, exe in sorted(found)]


def refused(exe):
    """An interpreter older than 3.10 must be told so by the build, plainly."""
    r = subprocess.run([exe, "scripts/build_ext.py", "--build-lib", os.path.join("build", "too-old")],
                       cwd=ROOT, capture_output=True, text=True)
    return r.returncode != 0 and "needs CPython 3.10 or newer" in r.stderr


def core_tests():
    """Scheduling, streams, and one test file per subpackage of uasyncio."""
    tests = list(CORE_TESTS)
    subs = sorted({re.sub(r"\.py$", "", os.path.basename(p))
                   for p in glob.glob(os.path.join(ROOT, "uasyncio", "*"))
                   if (p.endswith(".py") or os.path.isfile(os.path.join(p, "__init__.py")))
                   and not os.path.basename(p).startswith("_")} - {"core"})
    for name in subs:
        match = (glob.glob(os.path.join(ROOT, "tests", "test_%s.py" % name))
                 or glob.glob(os.path.join(ROOT, "tests", "test_%s_core.py" % name))
                 or sorted(glob.glob(os.path.join(ROOT, "tests", "test_%s_*.py" % name))))
        if not match:
            sys.exit("no test file for the subpackage uasyncio.%s (tests/test_%s.py)" % (name, name))
        tests.append(os.path.basename(match[0]))
    return ["tests/" + t for t in tests]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--testpath", action="store_true")
    a = ap.parse_args()
    if a.testpath:
        print(testpath())
        return 0
    found = interpreters()
    if a.list:
        for exe, v in found:
            print("%d.%d.%d %s" % (v + (exe,)))
        return 0
    tests = core_tests()
    env = dict(os.environ, PYTHONPATH=testpath(), PYTHONNOUSERSITE="1")
    for k in ("LD_PRELOAD", "UA_PKG_DIR", "UA_SANITIZE"):
        env.pop(k, None)
    print("core tests on %d other CPython(s): %s" % (len(found), " ".join(t[6:] for t in tests)))
    results, failed = [], 0
    for exe, v in found:
        name = "%d.%d.%d" % v
        t0 = time.monotonic()
        pkg = os.path.join("build", "pythons", name)
        print("-- CPython %s (%s): build, core tests" % (name, exe), flush=True)
        # -Werror: the build must stay warning-free on every version.
        r = subprocess.run([exe, "scripts/build_ext.py", "--build-lib", pkg, "--build-temp", pkg + "-tmp"],
                           cwd=ROOT, env=dict(env, UA_CFLAGS=(env.get("UA_CFLAGS", "") + " -Werror").strip()))
        if r.returncode == 0:
            r = subprocess.run([exe, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"] + tests, cwd=ROOT,
                               env=dict(env, UA_PKG_DIR=pkg), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            out = r.stdout.strip()
            summary = out.splitlines()[-1] if out else "no output"
            print(out if r.returncode else summary, flush=True)
        else:
            summary = "build failed"
        failed += r.returncode != 0
        results.append("  CPython %-8s %s  %s (%.0f s)" % (name, "ok    " if r.returncode == 0 else "FAILED",
                                                           summary.strip("= "), time.monotonic() - t0))
    for exe, v in interpreters(supported=False):
        ok = refused(exe)
        failed += not ok
        results.append("  CPython %-8s %s  the build refuses it with a clear message" % (
            "%d.%d.%d" % v, "ok    " if ok else "FAILED"))
    print("core tests ran on (and older CPythons were refused):")
    print("\n".join(results) if results else "  (no other CPython found)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
