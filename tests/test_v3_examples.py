"""The programs in examples/v3, each run through python3 -m uasyncio.v3 as
one runs them for real, with what they print checked."""
import http.server
import os
import re
import socket
import subprocess
import sys
import threading

import pytest

from conftest import PKG_DIR, ROOT

EXAMPLES = os.path.join(ROOT, "examples", "v3")


def start(name, *args):
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    return subprocess.Popen([sys.executable, "-m", "uasyncio.v3", os.path.join(EXAMPLES, name), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc, timeout=60):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail("%s did not end in %d s; stdout: %r stderr: %r" % (proc.args, timeout, out, err))
    assert proc.returncode == 0, err
    return out


def test_blink_leds_event_and_thread_safe_flag():
    out = finish(start("blink.py"))
    lines = out.splitlines()
    assert sorted(lines[:4]) == ["button pressed", "interrupt 0", "interrupt 1", "interrupt 2"]
    assert lines[4:] == ["red blinked yes", "green blinked yes", "done"]


def test_echo_server_with_start_server_write_and_drain():
    proc = start("echo_server.py", "0", "3")
    try:
        first = proc.stdout.readline()
        m = re.match(r"listening on (\d+)$", first.strip())
        assert m, first + proc.stderr.read()
        port = int(m.group(1))
        for i in range(3):
            with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
                f = s.makefile("rwb")
                for j in range(5):
                    f.write(b"client %d line %d\n" % (i, j))
                    f.flush()
                    assert f.readline() == b"client %d line %d\n" % (i, j)
                f.close()
    except BaseException:
        proc.kill()
        raise
    out = finish(proc)
    assert out.splitlines() == ["served 1 127.0.0.1", "served 2 127.0.0.1", "served 3 127.0.0.1", "stopped"]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"hello from %s\n" % self.path.encode() + b"x" * 100000
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_http_client_with_open_connection():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=httpd.serve_forever)
    t.start()
    try:
        out = finish(start("http_client.py", "127.0.0.1", str(httpd.server_address[1]), "/index"))
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(10)
    assert out.splitlines() == ["HTTP/1.0 200 OK", "content-type: text/plain", "body: 100018 bytes",
                                "hello from /index"]


def test_gather_with_timeouts():
    out = finish(start("gather_timeouts.py"))
    assert out.splitlines() == ["temperature 21.5", "humidity 48", "pressure timeout",
                                "('light', 300)", "ValueError", "gather timed out"]


def test_the_v3_demo_serves_every_client_and_exits():
    out = finish(start("demo.py"))
    assert re.search(r"^10000 echo round trips by 50 clients: \d+/s, 0 wrong$", out, re.M), out
    assert "sensors: [21.5, 48, 'timeout']" in out
    assert "button pressed (a ThreadSafeFlag set from another thread)" in out
    assert out.splitlines()[-1] == "errors: 0"


def test_the_testing_example_passes_under_the_pytest_plugin(tmp_path):
    # examples/v3/testing: a device program and its tests on the virtual
    # clock, run as its docstring says (from a source tree: -p).
    env = dict(os.environ, PYTHONPATH=PKG_DIR, PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "uasyncio.v3.pytest_plugin",
                        "-o", "cache_dir=%s" % tmp_path, "--strict-markers", "-W", "error",
                        os.path.join(EXAMPLES, "testing")],
                       capture_output=True, text=True, env=env, cwd=str(tmp_path), timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    assert re.search(r"^7 passed in ", r.stdout, re.M), r.stdout


def test_cpython_names_program():
    # Run as a plain program: it imports uasyncio.v3 by name.
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    proc = subprocess.Popen([sys.executable, os.path.join(EXAMPLES, "cpython_names.py")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out = finish(proc)
    addr = re.search(r"'accept loop (.*?)'", out).group(1)   # the server's own task, named
    assert out.splitlines() == [
        "server says HELLO", "server says WORLD", "thread: 10",
        "sensors: ['temp:temp=20', 'light:light=10']", "group failed: ['no answer from broken']",
        "timeout: too slow", "wait: first done ['b=10'] pending 2", "as_completed: ['c=20', 'a=30']",
        "shield: the wait timed out, the task goes on: kept=20", "tasks left: ['accept loop %s', 'server']" % addr,
        "server closed, serving: False"]
