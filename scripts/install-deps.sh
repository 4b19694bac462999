#!/usr/bin/env bash
# Installs, from Debian's packages, what building and testing need and the
# machine lacks. Does nothing when all is there; needs root to install.
set -euo pipefail
PYTHON=${PYTHON:-/usr/bin/python3}
need=()
command -v cc >/dev/null || need+=(gcc)
[ -x /usr/bin/python3 ] || need+=(python3)
/usr/bin/python3 -c 'import sysconfig, os, sys; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || need+=(python3-dev)
/usr/bin/python3 -c 'import setuptools' 2>/dev/null || need+=(python3-setuptools)
/usr/bin/python3 -c 'import pytest' 2>/dev/null || need+=(python3-pytest)
/usr/bin/python3 -c 'import pytest_timeout' 2>/dev/null || need+=(python3-pytest-timeout)
/usr/bin/python3 -c 'import hypothesis' 2>/dev/null || need+=(python3-hypothesis)
/usr/bin/python3 -c 'import uvloop' 2>/dev/null || need+=(python3-uvloop)
# The C core's unit tests also run as 32-bit programs (-m32) on x86-64.
if [ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ]; then
  dpkg -s gcc-multilib >/dev/null 2>&1 || need+=(gcc-multilib)
fi
for extra in "$@"; do
  case "$extra" in
    dbg) [ -x /usr/bin/python3-dbg ] || need+=(python3-dbg) ;;
    bench) command -v ab >/dev/null || need+=(apache2-utils); command -v wrk >/dev/null || need+=(wrk) ;;
    fuzz) command -v clang >/dev/null || need+=(clang); dpkg -s libclang-rt-14-dev >/dev/null 2>&1 || need+=(libclang-rt-14-dev) ;;
    valgrind) command -v valgrind >/dev/null || need+=(valgrind) ;;
    browser) command -v chromium >/dev/null || need+=(chromium) ;;
  esac
done
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "installing: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
