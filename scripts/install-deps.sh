#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing need and the
# machine lacks. Does nothing when all is there; needs root to install.
#   scripts/install-deps.sh          building, and pytest with its plugins
#   scripts/install-deps.sh test     + everything the suite uses: Chromium,
#                                    openssl, mypy, pip and wheel (the install
#                                    test), pytest-asyncio (the pytest plugin
#                                    beside it), exceptiongroup and tomli
#                                    (Debian's pytest on pyenv's 3.10:
#                                    scripts/pythons.py)
#   ... dbg | bench | fuzz | valgrind    what those make targets need
# make runs it before any test: nothing is ever installed from inside the suite.
set -euo pipefail
# Never run apt under a sanitizer's preload (its hooks deadlock there).
unset LD_PRELOAD
need=()
command -v cc >/dev/null || need+=(gcc)
[ -x /usr/bin/python3 ] || need+=(python3)
py() { /usr/bin/python3 -c "$1" 2>/dev/null; }
py 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' || need+=(python3-dev)
py 'import setuptools' || need+=(python3-setuptools)
py 'import pytest' || need+=(python3-pytest)
py 'import pytest_timeout' || need+=(python3-pytest-timeout)
py 'import hypothesis' || need+=(python3-hypothesis)
py 'import uvloop' || need+=(python3-uvloop)
# The C core's unit tests also run as 32-bit programs (-m32) on x86-64.
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
  dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
fi
for extra in "$@"; do
  case "$extra" in
    test)
      command -v chromium >/dev/null || need+=(chromium)
      command -v openssl >/dev/null || need+=(openssl)
      command -v mypy >/dev/null || need+=(mypy)
      py 'import pip' || need+=(python3-pip)
      py 'import wheel' || need+=(python3-wheel)
      py 'import pytest_asyncio' || need+=(python3-pytest-asyncio)
      [ -d /usr/lib/python3/dist-packages/exceptiongroup ] || need+=(python3-exceptiongroup)
      [ -d /usr/lib/python3/dist-packages/tomli ] || need+=(python3-tomli) ;;
    dbg) [ -x /usr/bin/python3-dbg ] || need+=(python3-dbg) ;;
    bench) command -v ab >/dev/null || need+=(apache2-utils); command -v wrk >/dev/null || need+=(wrk)
           py 'import matplotlib' || need+=(python3-matplotlib) ;;
    fuzz) command -v clang >/dev/null || need+=(clang); dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev) ;;
    valgrind) command -v valgrind >/dev/null || need+=(valgrind) ;;
    *) echo "install-deps.sh: unknown group '$extra'" >&2; exit 2 ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another make on this machine may be installing too: wait for its lock.
lock=(-o DPkg::Lock::Timeout=600)
apt-get "${lock[@]}" update -q >/dev/null
apt-get "${lock[@]}" install -y -q --no-install-recommends "${need[@]}" >/dev/null
