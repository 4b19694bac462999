"""make conformance: uasyncio.v3 against MicroPython (MICROPYTHON=path to its
unix port; its tests are looked for in tests/ beside it, or --tests DIR).

1. MicroPython's own asyncio tests (tests/extmod/asyncio_*.py), each run by
   the reference and by `python3 -m uasyncio.v3` (stdout and stderr, as
   MicroPython's test runner takes them): the outputs must be the same.
2. Its two-instance network tests (tests/multi_net/asyncio_*.py) with its
   runner, run-multitests.py, in three pairings: both instances ours, our
   server (instance 0) with MicroPython's client, MicroPython's server with
   our client.
3. The differential run over --programs random programs (differ.py).

The reference's folder is only read: results and temporary files go to a
temporary folder.
"""
import argparse
import concurrent.futures
import glob
import os
import re
import stat
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import differ  # noqa: E402
import gen  # noqa: E402


def run_merged(argv, path, env=None, timeout=30):
    """stdout and stderr of argv + [file] run in the file's folder, merged."""
    try:
        p = subprocess.run(argv + [os.path.basename(path)], cwd=os.path.dirname(path), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        return p.stdout.decode(errors="replace")
    except subprocess.TimeoutExpired as e:
        return (e.stdout or b"").decode(errors="replace") + "TIMEOUT\n"


def asyncio_tests(reference, tests):
    files = sorted(glob.glob(os.path.join(tests, "extmod", "asyncio_*.py")))
    env = dict(differ.ours_env(), PYTHONDONTWRITEBYTECODE="1")
    failed = []

    def one(path):
        return path, run_merged([reference], path, differ.reference_env()), run_merged(differ.ours_argv(), path, env)

    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        for path, a, b in ex.map(one, files):
            name = os.path.basename(path)
            if differ.normalise(a) == differ.normalise(b):
                print("  pass", name)
                continue
            failed.append(name)
            print("  FAIL", name)
            for line in unified(differ.normalise(a), differ.normalise(b)):
                print("      " + line)
    print("MicroPython's asyncio tests: %d of %d print the same" % (len(files) - len(failed), len(files)))
    return len(files) - len(failed), len(files)


def unified(a, b):
    import difflib
    return list(difflib.unified_diff(a.splitlines(), b.splitlines(), "micropython", "uasyncio.v3",
                                     lineterm="", n=1))


def network_tests(reference, tests, tmp):
    """The three pairings; returns [(name, passed, total)]."""
    runner = os.path.join(tests, "run-multitests.py")
    files = sorted(os.path.relpath(p, tests) for p in glob.glob(os.path.join(tests, "multi_net", "asyncio_*.py")))
    # Ours as one program, as run-multitests.py starts an instance: PROG -c SCRIPT.
    ours = os.path.join(tmp, "uasyncio-v3")
    with open(ours, "w") as f:
        f.write("#!/bin/sh\nPYTHONPATH=%s exec %s -m uasyncio.v3 \"$@\"\n"
                % (shquote(differ.ours_env()["PYTHONPATH"]), shquote(differ.ours_argv()[0])))
    os.chmod(ours, os.stat(ours).st_mode | stat.S_IXUSR)
    mp, us = "exec:" + reference, "exec:" + ours
    results = []
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    prefix = own_network()
    for name, a, b in (("both uasyncio.v3", us, us),
                       ("uasyncio.v3 server, MicroPython client", us, mp),
                       ("MicroPython server, uasyncio.v3 client", mp, us)):
        passed = 0
        print("  " + name)
        # One runner per test: a runner that fails on one (it can, on a
        # broken pipe) does not take the others with it.
        for test in files:
            res = os.path.join(tmp, "results")
            try:
                p = subprocess.run(prefix + [sys.executable, runner, "-r", res, "-t", a, "-t", b, test], cwd=tests,
                                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
                out = p.stdout.decode(errors="replace")
            except subprocess.TimeoutExpired as e:
                out = (e.stdout or b"").decode(errors="replace") + "\nTIMEOUT"
            ok = re.search(r": pass$", out, re.M) is not None
            passed += ok
            print("    %s %s" % ("pass" if ok else "FAIL", os.path.basename(test)))
            if not ok and os.environ.get("UA_CONFORMANCE_VERBOSE"):
                print("      " + out.replace("\n", "\n      "))
        print("  %s: %d of %d pass" % (name, passed, len(files)))
        results.append((name, passed, len(files)))
    return results


def own_network():
    """A command prefix that runs a program in a network namespace of its
    own (loopback only), where it can have the tests' fixed port (8000)
    even while other programs on this machine use it; [] where that is not
    allowed."""
    prefix = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    try:
        ok = subprocess.run(prefix + ["true"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        ok = False
    return prefix if ok else []


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def differential(reference, n, jobs, save):
    failed, faulted = [], []

    def one(seed):
        prog = gen.generate(seed)
        return seed, prog, differ.differs(prog, reference, faulted=faulted)

    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        for seed, prog, found in ex.map(one, range(n)):
            if found is not None:
                failed.append(seed)
                print("  " + differ.report(seed, prog, found).splitlines()[0], flush=True)
                if save:
                    os.makedirs(save, exist_ok=True)
                    with open(os.path.join(save, "seed%d.txt" % seed), "w") as f:
                        f.write(differ.report(seed, prog, found) + "\n")
    print("Random programs: %d of %d print the same (differ: %s; the reference faulted on %d)"
          % (n - len(failed), n, " ".join(map(str, failed)) or "none", len(faulted)))
    return n - len(failed), n


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tests", help="MicroPython's tests/ folder (default: beside MICROPYTHON)")
    ap.add_argument("--programs", type=int, default=2000, help="random programs (0: none)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--save", help="a folder for the differing programs' reports")
    ap.add_argument("--only", choices=("tests", "net", "random"))
    args = ap.parse_args(argv)
    reference = differ.reference_path()
    if not reference or not os.path.isfile(reference):
        sys.exit("make conformance needs MicroPython's unix port: MICROPYTHON=/path/to/micropython "
                 "(e.g. %s), its tests in tests/ beside it" % differ.DEFAULT_REFERENCE)
    tests = args.tests or os.path.join(os.path.dirname(reference), "tests")
    if not os.path.isdir(os.path.join(tests, "extmod")):
        sys.exit("no MicroPython tests in %s (--tests DIR)" % tests)
    ok = True
    if args.only in (None, "tests"):
        print("== MicroPython's asyncio tests")
        passed, total = asyncio_tests(reference, tests)
        ok &= passed == total
    if args.only in (None, "net"):
        print("== MicroPython's network tests (run-multitests.py)")
        with tempfile.TemporaryDirectory(prefix="ua-conformance-") as tmp:
            for _, passed, total in network_tests(reference, tests, tmp):
                ok &= passed == total
    if args.only in (None, "random") and args.programs:
        print("== %d random programs" % args.programs)
        passed, total = differential(reference, args.programs, args.jobs, args.save)
        ok &= passed == total
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
