"""The C extension uasyncio._uasyncio (the portable core in src/core, the
binding in src/binding) and the packages: every package under uasyncio/,
found, with the type stubs (.pyi) and py.typed beside its modules. The
metadata is in pyproject.toml. Sources and flags come from
scripts/build_ext.py, which also builds without setuptools."""
import importlib.util
import os

from setuptools import Extension, find_packages, setup

_spec = importlib.util.spec_from_file_location(
    "build_ext", os.path.join(os.path.dirname(os.path.abspath(__file__)), "scripts", "build_ext.py"))
ext = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ext)

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
