"""The type stubs: every public module has its .pyi beside it and the
package is marked typed (py.typed); mypy's stubtest finds each stub
consistent with the module it describes (names, classes, signatures where
the runtime shows them); the typed example programs (examples/typed_*.py,
and examples/v3/cpython_names.py for the v3 stubs) pass `mypy --strict`
and run; and mypy does read the stubs (a wrong
program is rejected for the right reasons).

mypy is Debian's (scripts/install-deps.sh test installs it)."""
import glob
import os
import subprocess
import sys

import pytest

from srctree import ROOT, module_files, public_modules

# The package under test: the sanitizer build under make asan, else the tree.
PKG_DIR = os.path.join(ROOT, os.environ.get("UA_PKG_DIR", ""))
# examples/typed_*.py (2.0) and v3's program with CPython's names, relative to examples/
EXAMPLES = [os.path.relpath(p, os.path.join(ROOT, "examples"))
            for p in sorted(glob.glob(os.path.join(ROOT, "examples", "typed_*.py")))
            + [os.path.join(ROOT, "examples", "v3", "cpython_names.py")]]
BAD_PROGRAM = '''
import uasyncio as asyncio
from uasyncio.queues import Queue
from uasyncio.websocket.server import WSReader


async def f(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
    line: int = await r.readline()
    ws = await WSReader(r, w)
    msg: int = await ws.recv()
    Queue().put_nowait()
    yield_from_ok: bytes = await asyncio.wait_for(r.read(10), 1)
    asyncio.sleep_ms("soon")
'''
BAD_ERRORS = [
    ':8: error: Incompatible types in assignment (expression has type "bytes", variable has type "int")',
    ':10: error: Incompatible types in assignment (expression has type "Union[str, bytes, None]", '
    'variable has type "int")',
    ':11: error: Missing positional argument "v" in call to "put_nowait" of "Queue"',
    ':13: error: Argument 1 to "sleep_ms" has incompatible type "str"; expected "int"',
]


def mypy(*args, module="mypy", cwd=PKG_DIR):
    """Debian's mypy, run by this interpreter when it has it (stubtest
    imports the package, so it must be the one it was built for)."""
    has = subprocess.run([sys.executable, "-c", "import mypy"], capture_output=True).returncode == 0
    if not has and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        pytest.skip("%s has no mypy (Debian's is for /usr/bin/python3)" % sys.executable)
    if not has:
        pytest.fail("mypy is missing: scripts/install-deps.sh test installs it")
    env = dict(os.environ, MYPYPATH=PKG_DIR)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("module", public_modules())
def test_every_public_module_has_a_stub_beside_it(module):
    path = module_files()[module]
    assert os.path.exists(path + "i"), "no stub for %s: add %si" % (module, os.path.relpath(path, ROOT))


def test_the_package_is_marked_typed():
    assert os.path.isfile(os.path.join(ROOT, "uasyncio", "py.typed"))


def test_stubtest_finds_the_stubs_consistent_with_the_modules():
    r = mypy("--allowlist", os.path.join(ROOT, "tests", "stubtest-allowlist.txt"), "uasyncio",
             module="mypy.stubtest")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Success" in r.stdout


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_typed_example_passes_mypy_strict(example, tmp_path):
    r = mypy("--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"),
             os.path.join(ROOT, "examples", example))
    assert r.returncode == 0, r.stdout + r.stderr


def test_there_is_a_typed_example():
    assert EXAMPLES


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_typed_example_runs(example):
    # Run on the package under test: its folder first on the path.
    code = ("import runpy, sys; sys.path.insert(0, %r); import uasyncio; sys.argv = [%r]; "
            "runpy.run_path(%r, run_name='__main__')"
            % (PKG_DIR, example, os.path.join(ROOT, "examples", example)))
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_rejects_a_wrong_program_through_the_stubs(tmp_path):
    prog = tmp_path / "wrong.py"
    prog.write_text(BAD_PROGRAM)
    r = mypy("--strict", "--no-incremental", "--cache-dir", str(tmp_path / "cache"), str(prog))
    assert r.returncode == 1, r.stdout + r.stderr
    errors = [ln[len(str(prog)):] for ln in r.stdout.splitlines() if ln.startswith(str(prog))]
    assert sorted(e.split("  [")[0] for e in errors) == sorted(BAD_ERRORS), r.stdout
