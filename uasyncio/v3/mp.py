"""MicroPython's environment for the code this interpreter runs next, as
`python3 -m uasyncio.v3 prog.py` sets it up: install() binds `asyncio` and
`uasyncio` to uasyncio.v3, `ssl` (and `ussl`) to MicroPython's ssl API
(uasyncio.v3._mpssl), and adds the `micropython` module, `time.ticks_ms()`
and the others, and the u-names of standard modules.

For a tool that starts Python itself (MicroPython's run-multitests.py runs
`python3 -c SCRIPT`): a folder on PYTHONPATH holding one file, asyncio.py:

    from uasyncio.v3.mp import install
    install()

The program's `import asyncio` runs it, and gets uasyncio.v3.
"""
from uasyncio.v3.__main__ import install

__all__ = ["install"]
