"""help() is useful on everything public: every public module, every name it
exports (its __all__, else its public names), and every public method and
attribute of the classes among them has a docstring of its own. The modules
come from the source tree, so a new one is covered the day it is added."""
import importlib
import inspect

import pytest

from srctree import public_modules


def exported(mod):
    names = getattr(mod, "__all__", None)
    if names is None:
        names = [n for n in vars(mod) if not n.startswith("_")]
    return names


def own_doc(obj):
    doc = getattr(obj, "__doc__", None)
    if inspect.isclass(obj) and doc is not None and any(doc is b.__doc__ for b in obj.__mro__[1:]):
        return ""   # inherited (e.g. object's "The base class of the class hierarchy")
    return (doc or "").strip()


def undocumented(modname):
    mod = importlib.import_module(modname)
    missing = [] if own_doc(mod) else [modname]
    for name in exported(mod):
        obj = getattr(mod, name)
        if inspect.ismodule(obj) or isinstance(obj, (int, float, str, bytes, tuple)):
            continue   # constants and submodules: documented where they are defined
        if not own_doc(obj):
            missing.append("%s.%s" % (modname, name))
        if inspect.isclass(obj):
            for attr, member in vars(obj).items():
                if attr.startswith("_") and attr not in ("__aenter__", "__aexit__"):
                    continue
                if not own_doc(member):
                    missing.append("%s.%s.%s" % (modname, name, attr))
    return missing


@pytest.mark.parametrize("modname", public_modules())
def test_every_public_name_has_a_docstring(modname):
    assert undocumented(modname) == []


def test_help_shows_the_docstrings():
    import pydoc

    import uasyncio
    text = pydoc.render_doc(uasyncio.StreamReader, renderer=pydoc.plaintext)
    assert uasyncio.StreamReader.readline.__doc__.splitlines()[0] in text
    assert uasyncio.StreamReader.__doc__.splitlines()[0] in text
