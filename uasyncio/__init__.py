"""uasyncio: MicroPython's uasyncio 2.0 for CPython, with its event loop in C.

    import uasyncio as asyncio
"""
from uasyncio.core import *  # noqa: F401,F403
from uasyncio.core import __all__ as _core_all
from uasyncio._uasyncio import PollEventLoop  # noqa: F401

__all__ = _core_all + ["PollEventLoop"]
