"""MicroPython's two-instance network tests (tests/multi_net/asyncio_*.py, TCP
and TLS), run by its own run-multitests.py in three pairings: both instances
on uasyncio.v3, our server with MicroPython's client, MicroPython's server
with our client. Our instances run `python3 -c SCRIPT` with a shim folder
whose asyncio.py calls uasyncio.v3.mp.install() (the runner's bindings:
asyncio, MicroPython's ssl, ...).

The reference: MICROPYTHON (its binary, with its tests/ beside or above
it), else ../shared/micropython/micropython beside the repository. Without
it the test is skipped, except under CI=true, where that is a failure.

Every test listens on port 8000: each pairing runs in a network namespace of
its own when `unshare -n` works, so that another run at the same time cannot
answer it. A test file that fails is run again, twice at most; and
MicroPython's own TLS client prints otherwise when a server's handshake
answer arrives within its first write, a race the machine's load decides
(seen with MicroPython on both sides too): that one difference is allowed
(RACY_DIFF)."""
import os
import re
import shlex
import shutil
import subprocess
import sys

import pytest

from conftest import PKG_DIR, ROOT

TESTS = ["multi_net/asyncio_%s.py" % name for name in (
    "tcp_client_rst", "tcp_close_write", "tcp_readall", "tcp_readexactly", "tcp_readinto",
    "tcp_server_client", "tls_server_client", "tls_server_client_cert_required_error",
    "tls_server_client_readline", "tls_server_client_verify_error")]
ATTEMPTS = 3
# What our instances inherit from this process (run-multitests gives them
# only the variables named in their spec): the sanitizer builds' needs.
PASSED_ON = ("PATH", "LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "PYTHONMALLOC")


def reference():
    """(the MicroPython binary, its tests folder); else skip (fail on CI)."""
    binary = os.path.abspath(os.environ.get("MICROPYTHON") or
                             os.path.join(ROOT, "..", "shared", "micropython", "micropython"))
    folder = os.path.dirname(binary)
    while not os.path.isfile(os.path.join(folder, "tests", "run-multitests.py")):
        if os.path.dirname(folder) == folder:
            break
        folder = os.path.dirname(folder)
    tests = os.path.join(folder, "tests")
    if os.access(binary, os.X_OK) and os.path.isdir(os.path.join(tests, "multi_net")):
        return binary, tests
    why = ("MicroPython's network tests need the reference interpreter: set MICROPYTHON to its binary "
           "(its tests/ beside it or above it), or put it at ../shared/micropython/micropython (%s)" % binary)
    if os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


def our_instance(tmp_path):
    """run-multitests' -t for uasyncio.v3: a script that runs this Python
    with the shim folder and the package under test on its path."""
    shim = tmp_path / "shim"
    shim.mkdir()
    (shim / "asyncio.py").write_text("from uasyncio.v3.mp import install\ninstall()   # asyncio is uasyncio.v3, ssl MicroPython's, ...\n")
    env = {"PYTHONPATH": "%s:%s" % (shim, os.path.abspath(PKG_DIR))}
    env.update({k: os.environ[k] for k in PASSED_ON if k in os.environ})
    script = tmp_path / "uasyncio-v3"
    script.write_text("#!/bin/sh\n" + "".join("export %s=%s\n" % (k, shlex.quote(v)) for k, v in env.items()) +
                      "exec %s \"$@\"\n" % shlex.quote(sys.executable))
    script.chmod(0o755)
    return "exec:%s" % script


def isolated():
    """The command prefix that runs a command in a network namespace of its
    own, loopback up; [] where that cannot be done."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    prefix = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    try:
        ok = subprocess.run(prefix + ["true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return prefix if ok else []


# MicroPython's TLS client meets a refused handshake inside its first
# write() when the server's alert is already there (a one-CPU machine, a
# loaded one), else in drain(): its output then lacks the "drain" line. The
# only difference allowed, and only in the TLS error tests.
RACY_DIFF = ["-drain"]


def racy_only(block):
    """Whether a failed test's report differs from the expected output only
    by MicroPython's client's timing (RACY_DIFF)."""
    if "tls_server_client_" not in block or "### DIFF ###" not in block:
        return False
    diff = block.split("### DIFF ###", 1)[1].splitlines()
    changed = [ln for ln in diff if ln.startswith(("+", "-")) and not ln.startswith(("---", "+++"))]
    return changed == RACY_DIFF


def run_multitests(tests_dir, instances, files, results):
    cmd = isolated() + [sys.executable, "run-multitests.py", "-r", str(results)]
    for inst in instances:
        cmd += ["-t", inst]
    p = subprocess.run(cmd + files, cwd=tests_dir, capture_output=True, text=True, timeout=900)
    passed = set(re.findall(r"^(multi_net/\S+) on \S+: pass$", p.stdout, re.M))
    # A failed test's report: from its FAIL line to the next test's line.
    for m in re.finditer(r"^(multi_net/\S+) on \S+: FAIL$(.*?)(?=^multi_net/\S+ on \S+: |\Z)", p.stdout, re.M | re.S):
        if racy_only(m.group(2)):
            passed.add(m.group(1))
    return passed, p.stdout + p.stderr


@pytest.mark.parametrize("pairing", ["uasyncio.v3 both", "our server, MicroPython's client",
                                     "MicroPython's server, our client"])
def test_micropython_network_tests_pass_in_each_pairing(pairing, tmp_path):
    binary, tests_dir = reference()
    ours, theirs = our_instance(tmp_path), "exec:" + binary
    instances = {"uasyncio.v3 both": [ours, ours], "our server, MicroPython's client": [ours, theirs],
                 "MicroPython's server, our client": [theirs, ours]}[pairing]
    pending, output = list(TESTS), ""
    for attempt in range(ATTEMPTS):
        passed, output = run_multitests(tests_dir, instances, pending, tmp_path / "results")
        pending = [f for f in pending if f not in passed]
        if not pending:
            break
    assert not pending, "%s: failed %d times: %s\n%s" % (pairing, ATTEMPTS, pending, output[-6000:])
