"""A real browser against the WebSocket example: examples/websocket_chat.py
runs as a subprocess (--port 0 --report), headless Chromium opens its page
with ?test=1, the page exchanges text and binary messages of 10 B, 200 B and
100 KB with /echo and sends "REPORT <json>" over /ws, which the server prints.

Chromium is installed by the set-up step before any test runs
(scripts/install-deps.sh test, which make check and make test run), never from
here: a test may run under the sanitizers' LD_PRELOAD, which apt does not
survive. In CI (CI=true) a missing Chromium fails the test; elsewhere it is
skipped, with the reason in the skip message and in a warning, which
pytest's summary shows."""
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE = os.path.join(ROOT, "examples", "websocket_chat.py")
REPORT_WAIT = 60      # seconds for the page's self-test to report
TEST_TIMEOUT = 2 * REPORT_WAIT + 60
EXPECTED = {(kind, size) for kind in ("text", "binary") for size in (10, 200, 102400)}


def find_chromium():
    for name in ("chromium", "chromium-browser"):
        exe = shutil.which(name)
        if exe:
            return exe
    return None


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def chromium():
    """The Chromium executable, or pytest.fail in CI, pytest.skip elsewhere."""
    exe = find_chromium()
    if exe:
        return exe
    msg = ("no Chromium on PATH: scripts/install-deps.sh test installs it "
           "(as root; make check and make test run it first)")
    if in_ci():
        pytest.fail("BROWSER TEST FAILED: " + msg)
    warnings.warn(UserWarning("BROWSER TEST SKIPPED: " + msg))
    pytest.skip("BROWSER TEST SKIPPED: " + msg)


def exited(proc):
    """Whether proc has ended, without reaping it: its pid, and so its process
    group's id, stays reserved until kill_group()."""
    if proc.returncode is not None:
        return True
    return os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def kill_group(proc):
    """Kill a process started with start_new_session=True and everything left
    in its process group (a browser's helpers), then reap it."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    proc.wait(10)


def run_browser(cmd, env, secs):
    """Run a browser to its end (at most secs), its group killed afterwards
    in any case; returns (exit status or None on timeout, output)."""
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=secs)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        return None, "timed out after %s s" % secs
    finally:
        kill_group(proc)
        proc.stdout.close()


def example_cmd(*args):
    """The example, run by this Python. When UA_PKG_DIR points at another
    build of the package (make asan, make refleak), that build is imported
    first, so the example (which puts the work tree first on sys.path) runs
    on it too."""
    pkg_dir = os.environ.get("UA_PKG_DIR")
    if not pkg_dir:
        return [sys.executable, EXAMPLE] + list(args)
    code = ("import sys, runpy; sys.path.insert(0, %r); import uasyncio.websocket.server; "
            "sys.argv = %r; runpy.run_path(%r, run_name='__main__')"
            % (os.path.join(ROOT, pkg_dir), [EXAMPLE] + list(args), EXAMPLE))
    return [sys.executable, "-c", code]


class ChatServer:
    """examples/websocket_chat.py --port 0 --report, its stdout read line by
    line into a queue by a thread."""

    def __init__(self, tmp):
        self.err = open(os.path.join(tmp, "server.err"), "w+")
        self.proc = subprocess.Popen(example_cmd("--port", "0", "--report"),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self.err, text=True, start_new_session=True)
        self.lines = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        first = self.next_line(20)
        if not (first and first.startswith("listening on http://127.0.0.1:")):
            err = self.stderr()
            self.stop()
            raise AssertionError("the example server did not start: %r\n%s" % (first, err))
        self.url = first.split()[-1]        # http://127.0.0.1:PORT/

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def next_line(self, secs):
        try:
            return self.lines.get(timeout=secs)
        except queue.Empty:
            return None

    def stderr(self):
        self.err.flush()
        self.err.seek(0)
        return self.err.read()

    def stop(self):
        kill_group(self.proc)
        self.pump.join(10)          # it sees the end of the pipe
        self.proc.stdout.close()
        self.err.close()


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory):
    server = ChatServer(str(tmp_path_factory.mktemp("chat_server")))
    yield server
    server.stop()


def chromium_cmd(exe, headless, profile, *args):
    return [exe, headless, "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--user-data-dir=" + profile] + list(args)


def browser_env(tmp):
    """Chromium's home, config and caches in the test's own directory."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "UA_SANITIZE")}
    env.update(HOME=tmp, XDG_CONFIG_HOME=os.path.join(tmp, ".config"),
               XDG_CACHE_HOME=os.path.join(tmp, ".cache"))
    return env


@pytest.mark.timeout(TEST_TIMEOUT)
def test_chromium_self_test_exchanges_text_and_binary_messages(chromium, chat_server, tmp_path):
    exe = chromium
    url = chat_server.url + "?test=1"
    report, tried = None, []
    for headless in ("--headless=new", "--headless"):
        log = open(tmp_path / ("chromium%s.log" % headless.replace("=", "-")), "w+")
        browser = subprocess.Popen(
            chromium_cmd(exe, headless, str(tmp_path / ("profile" + headless)), url),
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            env=browser_env(str(tmp_path)), start_new_session=True)
        quit_early = False
        try:
            end = time.monotonic() + REPORT_WAIT
            while time.monotonic() < end:
                line = chat_server.next_line(0.2)
                if line is not None and line.startswith("REPORT"):
                    report = line
                    break
                if exited(browser) and chat_server.lines.empty():
                    quit_early = True     # try the other headless mode
                    break
        finally:
            kill_group(browser)
            log.seek(0)
            tried.append("%s exited %r; its output ends: %s"
                         % (headless, browser.returncode, log.read()[-1500:]))
            log.close()
        if report is not None or not quit_early:
            break
    assert report is not None, "no REPORT from the page within %d s\n%s\nserver stderr: %s" % (
        REPORT_WAIT, "\n".join(tried), chat_server.stderr())
    assert report.startswith("REPORT "), report       # not "REPORT-ERROR <exception>"
    results = json.loads(report[len("REPORT "):])
    assert len(results) == 6, results
    assert {(r["kind"], r["size"]) for r in results} == EXPECTED
    assert all(r["ok"] is True for r in results), results
    assert chat_server.proc.poll() is None, chat_server.stderr()   # still serving
    assert "Traceback" not in chat_server.stderr(), chat_server.stderr()


@pytest.mark.timeout(TEST_TIMEOUT)
def test_chromium_screenshot_of_the_page(chromium, chat_server, tmp_path):
    exe = chromium
    png = tmp_path / "page.png"
    out = ""
    for headless in ("--headless=new", "--headless"):
        rc, output = run_browser(
            chromium_cmd(exe, headless, str(tmp_path / ("profile" + headless)),
                         "--screenshot=" + str(png), "--window-size=800,600",
                         "--virtual-time-budget=2000", "--hide-scrollbars", chat_server.url),
            browser_env(str(tmp_path)), 40)
        out = "%s exited %r: %s" % (headless, rc, output[-1500:])
        if png.exists() and png.stat().st_size > 0:
            break
    assert png.exists(), out
    data = png.read_bytes()
    assert len(data) > 100, out
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert chat_server.proc.poll() is None, chat_server.stderr()
