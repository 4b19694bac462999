"""Builds the C extension uasyncio._uasyncio in place for the interpreter
that runs this script:

    python3 scripts/build_ext.py              setuptools if it is there, else sysconfig
    python3 scripts/build_ext.py --sysconfig  sysconfig even with setuptools there
    python3 scripts/build_ext.py --build-lib DIR --build-temp TMP --force
                                 into DIR/uasyncio/ instead, everything recompiled

setup.py takes the sources and flags from here (one list for both ways).
Without setuptools (pyenv's 3.12 and 3.13 have none) the extension is
compiled with the interpreter's own sysconfig: its CC, CFLAGS, CCSHARED,
include directory, LDSHARED and EXT_SUFFIX, objects in build/temp-<tag>/,
only what changed rebuilt. Any failure exits non-zero with the compiler's
message. UA_CFLAGS and UA_LDFLAGS add flags (make asan uses them)."""
from __future__ import print_function   # so that Python 2 reaches the check below

import sys

# Older interpreters stop here with a clear word, before anything they lack.
if sys.version_info < (3, 10):
    sys.exit("uasyncio needs CPython 3.10 or newer; %s is %s"
             % (sys.executable, sys.version.split()[0]))

import argparse
import glob
import importlib.util
import os
import shlex
import subprocess
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAME = "uasyncio._uasyncio"
INCLUDE_DIRS = ["src/core", "src/binding"]
DEFINES = [("_GNU_SOURCE", "1")]
CFLAGS = ["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
          "-Wno-missing-field-initializers", "-Wno-cast-function-type"]


def sources():
    """Every C file of the core and the binding, relative to the root."""
    return sorted(glob.glob("src/core/*.c", root_dir=ROOT) + glob.glob("src/binding/*.c", root_dir=ROOT))


def extra_cflags():
    return shlex.split(os.environ.get("UA_CFLAGS", ""))


def extra_ldflags():
    return shlex.split(os.environ.get("UA_LDFLAGS", ""))


def run(cmd):
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode:
        sys.exit("build failed (exit %d): %s" % (r.returncode, shlex.join(cmd)))


def with_setuptools(lib, temp, force):
    where = ["--build-lib", lib] if lib else ["--inplace"]
    cmd = [sys.executable, "setup.py", "-q", "build_ext"] + where
    cmd += (["--build-temp", temp] if temp else []) + (["--force"] if force else [])
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    # setuptools names every step it takes; keep only what the compiler says.
    out = [ln for ln in r.stdout.splitlines() if not ln.startswith(("running", "copying"))]
    if out:
        print("\n".join(out), file=sys.stderr if r.returncode else sys.stdout)
    if r.returncode:
        sys.exit("build failed (exit %d): %s" % (r.returncode, shlex.join(cmd)))


def with_sysconfig(lib, temp, force):
    cfg = sysconfig.get_config_var
    cc = shlex.split(cfg("CC"))
    cflags = (shlex.split(cfg("CFLAGS") or "") + shlex.split(cfg("CCSHARED") or "")
              + ["-I" + d for d in INCLUDE_DIRS + [sysconfig.get_paths()["include"]]]
              + ["-D%s=%s" % d for d in DEFINES] + CFLAGS + extra_cflags())
    tmp = temp or os.path.join("build", "temp-sysconfig-%s" % sys.implementation.cache_tag)
    os.makedirs(os.path.join(ROOT, tmp), exist_ok=True)
    # Other flags than last time (UA_CFLAGS, another compiler): all again.
    stamp = os.path.join(ROOT, tmp, "flags")
    flags = shlex.join(cc + cflags)
    if not os.path.exists(stamp) or open(stamp).read() != flags:
        force = True
    if force and os.path.exists(stamp):
        os.remove(stamp)   # written again only once all is built
    headers = glob.glob("src/*/*.h", root_dir=ROOT)
    newest_header = max((os.path.getmtime(os.path.join(ROOT, h)) for h in headers), default=0)
    objects = []
    for src in sources():
        obj = os.path.join(tmp, os.path.basename(src)[:-2] + ".o")
        objects.append(obj)
        o, s = os.path.join(ROOT, obj), os.path.join(ROOT, src)
        if (not force and os.path.exists(o) and os.path.getmtime(o) >= os.path.getmtime(s)
                and os.path.getmtime(o) >= newest_header):
            continue
        run(cc + cflags + ["-c", src, "-o", obj])
    with open(stamp, "w") as f:
        f.write(flags)
    target = os.path.join(lib or "", *NAME.split(".")) + cfg("EXT_SUFFIX")
    os.makedirs(os.path.join(ROOT, os.path.dirname(target)), exist_ok=True)
    run(shlex.split(cfg("LDSHARED")) + objects + extra_ldflags() + ["-o", target])


def main():
    ap = argparse.ArgumentParser(description="Build uasyncio._uasyncio.")
    ap.add_argument("--sysconfig", action="store_true", help="do not use setuptools even if present")
    ap.add_argument("--build-lib", help="put the extension in DIR/uasyncio/ (default: in place)")
    ap.add_argument("--build-temp", help="where the objects go")
    ap.add_argument("--force", action="store_true", help="recompile everything")
    a = ap.parse_args()
    if not a.sysconfig and importlib.util.find_spec("setuptools"):
        with_setuptools(a.build_lib, a.build_temp, a.force)
    else:
        with_sysconfig(a.build_lib, a.build_temp, a.force)


if __name__ == "__main__":
    main()
