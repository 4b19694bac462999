"""The C extension uasyncio._uasyncio (the portable core in src/core, the
binding in src/binding) and the packages: every package under uasyncio/,
found, with the type stubs (.pyi) and py.typed beside its modules. The
metadata is in pyproject.toml. Sources and flags come from
scripts/build_ext.py, which `make build` runs itself."""
import os
import sys

# First, so that an interpreter too old is told so (build_ext checks).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts"))
import build_ext as ext  # noqa: E402

from setuptools import Extension, find_packages, setup  # noqa: E402

setup(
    packages=find_packages(include=["uasyncio", "uasyncio.*"]),
    package_data={"": ["*.pyi", "py.typed"]},
    ext_modules=[
        Extension(
            ext.NAME,
            sources=ext.sources(),
            include_dirs=ext.INCLUDE_DIRS,
            define_macros=ext.DEFINES,
            extra_compile_args=ext.CFLAGS + ext.extra_cflags(),
            extra_link_args=ext.extra_ldflags(),
        )
    ],
)
