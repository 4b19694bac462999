"""Builds uasyncio: the Python glue in uasyncio/ and the C extension
uasyncio._uasyncio (the portable core in src/core, the binding in src/binding)."""
import glob
import os

from setuptools import Extension, setup

extra = os.environ.get("UA_CFLAGS", "").split()
ldextra = os.environ.get("UA_LDFLAGS", "").split()

setup(
    name="uasyncio-c",
    version="0.1.0",
    description="MicroPython's uasyncio 2.0 event loop, in C, for CPython",
    packages=["uasyncio"],
    ext_modules=[
        Extension(
            "uasyncio._uasyncio",
            sources=sorted(glob.glob("src/core/*.c") + glob.glob("src/binding/*.c")),
            include_dirs=["src/core", "src/binding"],
            define_macros=[("_GNU_SOURCE", "1")],
            extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers", "-Wno-cast-function-type"] + extra,
            extra_link_args=ldextra,
        )
    ],
    python_requires=">=3.10",
)
