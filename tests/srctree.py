"""The package's modules as the source tree has them, so the tests that
go over every module (install, stubs, docstrings) cover a new one the day
it is added."""
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def module_files():
    """{dotted name: path of its .py} for every module under uasyncio/."""
    mods = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "uasyncio", "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, ROOT)[:-3].split(os.sep)
        if rel[-1] == "__init__":
            rel.pop()
        mods[".".join(rel)] = path
    return mods


def public_modules():
    """Every module no part of whose name starts with '_' (not
    uasyncio._uasyncio, not a __main__)."""
    return [m for m in module_files() if not any(part.startswith("_") for part in m.split("."))]
