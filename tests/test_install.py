"""The package as users install it: `pip wheel --no-build-isolation` on a copy
of the source tree, then `pip install --target` of that wheel into an empty
folder (what `pip install --no-build-isolation .` does, in two steps). With
only that folder on the path, a fresh interpreter imports every module the
source tree has (so a new subpackage is covered the day it is added) and runs
the demo (servers and clients over 127.0.0.1) from the installed copy.

pip and wheel are Debian's (scripts/install-deps.sh test); nothing is
downloaded (--no-index)."""
import glob
import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile

import pytest

from srctree import module_files

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIP_WAIT = 600    # seconds: pip compiles the extension


def source_modules():
    """Every module of the source tree, dotted: uasyncio, uasyncio.core, ...
    (the extension and private modules too: they must be installed)."""
    return list(module_files()) + ["uasyncio._uasyncio"]


def source_stubs():
    """The stubs and markers beside the modules, relative to the root."""
    return sorted(os.path.relpath(p, ROOT) for pat in ("*.pyi", "py.typed")
                  for p in glob.glob(os.path.join(ROOT, "uasyncio", "**", pat), recursive=True))


def clean_env(**extra):
    """No sanitizer preload (the installed copy is the regular build), no
    path to the source tree."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "PYTHONPATH", "UA_PKG_DIR", "UA_SANITIZE", "UA_CFLAGS",
                        "UA_LDFLAGS", "ASAN_OPTIONS", "UBSAN_OPTIONS")}
    env.update(PYTHONNOUSERSITE="1", **extra)
    return env


def pip(*args, cwd):
    r = subprocess.run([sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input",
                        "--no-cache-dir"] + list(args), cwd=cwd, env=clean_env(),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PIP_WAIT)
    assert r.returncode == 0, "pip %s failed:\n%s\n%s" % (" ".join(args), r.stdout[-3000:], r.stderr[-3000:])
    return r


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(site folder, wheel path): the package installed from a wheel built
    from a copy of the source tree (no build output of ours gets in)."""
    missing = [m for m in ("pip", "wheel", "setuptools") if not importlib.util.find_spec(m)]
    if missing and os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3"):
        # pyenv's 3.12 and 3.13 have no setuptools, and none can be fetched.
        pytest.skip("%s has no %s: pip cannot build the package offline with it"
                    % (sys.executable, ", ".join(missing)))
    if missing:
        pytest.fail("%s missing: scripts/install-deps.sh test installs them" % ", ".join(missing))
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", "build", "*.so", "*.o", "__pycache__", "*.egg-info", ".hypothesis", ".pytest_cache"))
    pip("wheel", "--no-build-isolation", "--no-deps", "--no-index", "-w", str(tmp / "wheels"), ".",
        cwd=str(src))
    wheels = glob.glob(str(tmp / "wheels" / "*.whl"))
    assert len(wheels) == 1, wheels
    site = tmp / "site"
    pip("install", "--no-build-isolation", "--no-deps", "--no-index", "--target", str(site), wheels[0],
        cwd=str(tmp))
    return str(site), wheels[0]


def run_installed(site, code, *args, cwd):
    """code in a fresh interpreter that sees only the standard library and site."""
    return subprocess.run([sys.executable, "-s", "-c", code] + list(args), cwd=cwd,
                          env=clean_env(PYTHONPATH=site), stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, timeout=120)


def test_the_wheel_holds_every_module_stub_and_the_extension(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    for mod in source_modules():
        path = mod.replace(".", "/")
        if mod == "uasyncio._uasyncio":
            assert any(n.startswith(path + ".") and n.endswith(".so") for n in names), sorted(names)
        else:
            assert path + ".py" in names or path + "/__init__.py" in names, (mod, sorted(names))
    for stub in source_stubs():
        assert stub in names, (stub, sorted(names))
    assert any(n.endswith(".dist-info/METADATA") for n in names)


def test_every_module_imports_from_the_installed_copy(installed, tmp_path):
    site, _ = installed
    code = ("import importlib, os, sys\n"
            "site = os.path.realpath(sys.argv[1])\n"
            "for name in sys.argv[2:]:\n"
            "    m = importlib.import_module(name)\n"
            "    f = os.path.realpath(m.__file__)\n"
            "    assert f.startswith(site + os.sep), (name, f)\n"
            "    print(name, f)\n")
    mods = source_modules()
    r = run_installed(site, code, site, *mods, cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert len(r.stdout.splitlines()) == len(mods)
    assert ROOT not in r.stdout


def test_the_demo_runs_over_loopback_on_the_installed_copy(installed, tmp_path):
    site, _ = installed
    # The examples put their parent folder first on sys.path (the source
    # tree's root, where they live): a copy of them in an empty folder
    # makes that folder one with no uasyncio in it.
    examples = tmp_path / "run" / "examples"
    shutil.copytree(os.path.join(ROOT, "examples"), examples)
    code = ("import os, runpy, sys\n"
            "site, demo = os.path.realpath(sys.argv[1]), sys.argv[2]\n"
            "sys.path.insert(0, os.path.dirname(demo))\n"
            "sys.argv = [demo]\n"
            "import uasyncio, uasyncio.websocket.server\n"
            "assert os.path.realpath(uasyncio.__file__).startswith(site + os.sep), uasyncio.__file__\n"
            "print('uasyncio from', uasyncio.__file__)\n"
            "runpy.run_path(demo, run_name='__main__')\n")
    r = run_installed(site, code, site, str(examples / "demo.py"), cwd=str(tmp_path))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "uasyncio from " + site in r.stdout
    assert ROOT + os.sep + "uasyncio" not in r.stdout + r.stderr
    assert "every line verified" in r.stdout and "errors: 0" in r.stdout, r.stdout
    assert "20/20 HTTP requests answered 'Hello'" in r.stdout, r.stdout


def test_the_installed_package_brings_its_pytest_plugin(installed, tmp_path):
    # The wheel declares it (entry point pytest11, named as the module) ...
    site, wheel = installed
    with zipfile.ZipFile(wheel) as z:
        eps = [n for n in z.namelist() if n.endswith(".dist-info/entry_points.txt")]
        assert eps, z.namelist()
        assert "[pytest11]\nuasyncio.v3.pytest_plugin = uasyncio.v3.pytest_plugin" in z.read(eps[0]).decode()
    # ... so pytest loads it from the installed copy with nothing asked for,
    # and `-p uasyncio.v3.pytest_plugin` finds it loaded already.
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_device.py").write_text(
        "import pytest\n"
        "import uasyncio.v3 as asyncio\n\n"
        "@pytest.mark.uasyncio(virtual_clock=True)\n"
        "async def test_an_hour(uasyncio_loop):\n"
        "    await asyncio.sleep(3600)\n"
        "    assert uasyncio_loop.time() == 3600_000\n")
    for extra in ([], ["-p", "uasyncio.v3.pytest_plugin"]):
        r = run_installed(site, "import sys, pytest; sys.exit(pytest.main(sys.argv[1:]))",
                          "-q", "--strict-markers",
                          *extra, str(suite), cwd=str(suite))
        assert r.returncode == 0, r.stdout + r.stderr
        assert "1 passed" in r.stdout, r.stdout
