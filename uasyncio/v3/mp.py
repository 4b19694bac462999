"""`import uasyncio.v3.mp`: from then on this interpreter looks like
MicroPython's to the code it runs, as `python3 -m uasyncio.v3 prog.py` makes
it look: `asyncio` and `uasyncio` are uasyncio.v3, `ssl` (and `ussl`) is
MicroPython's ssl API (uasyncio.v3._mpssl), and there are the `micropython`
module, `time.ticks_ms()` and the others, the u-names (the runner's
install(), done once).

For a tool that starts Python itself (MicroPython's run-multitests.py runs
`python3 -c SCRIPT`): a folder on PYTHONPATH holding one file, asyncio.py,
that says `import uasyncio.v3.mp`. The program's `import asyncio` then runs
it, and gets uasyncio.v3.
"""
from uasyncio.v3.__main__ import install

install()
