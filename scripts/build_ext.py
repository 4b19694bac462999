"""Builds the C extension uasyncio._uasyncio for the interpreter that runs
this script, with that interpreter's own sysconfig: its CC, CFLAGS,
CCSHARED, include directory, LDSHARED and EXT_SUFFIX (what setuptools would
use too; pyenv's 3.12 and 3.13 have no setuptools, so it is not needed):

    python3 scripts/build_ext.py                  in place, objects in build/temp-<tag>/
    python3 scripts/build_ext.py --build-lib DIR [--build-temp TMP] [--force]
                 a copy of the package in DIR/uasyncio/ with its own build
                 of the extension (make asan, make refleak, make pythons)

Only what changed is recompiled (a source newer than its object, any
header newer, other flags than last time), and the extension linked again
only then; --force recompiles everything.
Any failure exits non-zero with the compiler's message. UA_CFLAGS and
UA_LDFLAGS add flags (make asan uses them). setup.py, which pip uses, takes
the sources and flags from here (one list for both)."""
from __future__ import print_function   # so that Python 2 reaches the check below

import sys

# Older interpreters stop here with a clear word, before anything they lack.
if sys.version_info < (3, 10):
    sys.exit("uasyncio needs CPython 3.10 or newer; %s is %s"
             % (sys.executable, sys.version.split()[0]))

import argparse
import glob
import os
import shlex
import shutil
import subprocess
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "uasyncio._uasyncio"
# A binding file includes another folder's header by its path ("loop/loop.h"),
# its own folder's by its name.
INCLUDE_DIRS = ["src/core", "src/binding"]
DEFINES = [("_GNU_SOURCE", "1")]
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-Wno-cast-function-type"]


def sources():
    """Every C file of the core and the binding (its folders too), relative
    to the root: a new file is built the day it is added."""
    return sorted(glob.glob("src/core/*.c", root_dir=ROOT) + glob.glob("src/binding/**/*.c", root_dir=ROOT,
                                                                            recursive=True))


def extra_cflags():
    return shlex.split(os.environ.get("UA_CFLAGS", ""))


def extra_ldflags():
    return shlex.split(os.environ.get("UA_LDFLAGS", ""))


def run(cmd):
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode:
        sys.exit("build failed (exit %d): %s" % (r.returncode, shlex.join(cmd)))


def copy_package(lib):
    """lib/uasyncio: a fresh copy of the package's Python files and stubs,
    which the extension built for it then joins."""
    pkg = os.path.join(ROOT, lib, "uasyncio")
    shutil.rmtree(pkg, ignore_errors=True)
    shutil.copytree(os.path.join(ROOT, "uasyncio"), pkg, ignore=shutil.ignore_patterns("*.so", "__pycache__"))


def build(lib, temp, force):
    cfg = sysconfig.get_config_var
    cc = shlex.split(cfg("CC"))
    cflags = (shlex.split(cfg("CFLAGS") or "") + shlex.split(cfg("CCSHARED") or "")
              + ["-I" + d for d in INCLUDE_DIRS + [sysconfig.get_paths()["include"]]]
              + ["-D%s=%s" % d for d in DEFINES] + CFLAGS + extra_cflags())
    tmp = temp or os.path.join("build", "temp-%s" % sys.implementation.cache_tag)
    os.makedirs(os.path.join(ROOT, tmp), exist_ok=True)
    ldshared, ldflags = shlex.split(cfg("LDSHARED")), extra_ldflags()
    # Other flags than last time (UA_CFLAGS, UA_LDFLAGS, another compiler): all again.
    stamp = os.path.join(ROOT, tmp, "flags")
    flags = shlex.join(cc + cflags + ldshared + ldflags)
    if not os.path.exists(stamp):
        force = True
    else:
        with open(stamp) as f:
            force = force or f.read() != flags
    if force and os.path.exists(stamp):
        os.remove(stamp)   # written again only once all is built
    headers = glob.glob("src/**/*.h", root_dir=ROOT, recursive=True)
    newest_header = max((os.path.getmtime(os.path.join(ROOT, h)) for h in headers), default=0)
    objects = []
    for src in sources():
        # The object's path is the source's (below src/): v2/sync.c and v3/sync.c are two objects.
        obj = os.path.join(tmp, os.path.relpath(src, "src")[:-2] + ".o")
        objects.append(obj)
        o, s = os.path.join(ROOT, obj), os.path.join(ROOT, src)
        os.makedirs(os.path.dirname(o), exist_ok=True)
        if (not force and os.path.exists(o) and os.path.getmtime(o) >= os.path.getmtime(s)
                and os.path.getmtime(o) >= newest_header):
            continue
        run(cc + cflags + ["-c", src, "-o", obj])
    with open(stamp, "w") as f:
        f.write(flags)
    target = os.path.join(lib or "", *NAME.split(".")) + cfg("EXT_SUFFIX")
    t = os.path.join(ROOT, target)
    # Linked again only if an object is newer (an extension in use stays as it is).
    if not os.path.exists(t) or os.path.getmtime(t) < max(os.path.getmtime(os.path.join(ROOT, o))
                                                          for o in objects):
        os.makedirs(os.path.dirname(t), exist_ok=True)
        run(ldshared + objects + ldflags + ["-o", target])


def main():
    ap = argparse.ArgumentParser(description="Build uasyncio._uasyncio.")
    ap.add_argument("--build-lib", metavar="DIR",
                    help="build a copy of the package in DIR/uasyncio/ (default: in place)")
    ap.add_argument("--build-temp", metavar="TMP", help="where the objects go")
    ap.add_argument("--force", action="store_true", help="recompile everything")
    a = ap.parse_args()
    if a.build_lib:
        copy_package(a.build_lib)
    build(a.build_lib, a.build_temp, a.force)


if __name__ == "__main__":
    main()
