"""Shared helpers of the uasyncio.v3 tests: a fresh default loop per test
(checked to leave no live Task behind), a way to run one program on
uasyncio.v3 and on CPython's asyncio and compare what each printed, and an
echo handler for either's streams."""
import asyncio as cpython_asyncio
import gc

import pytest

import uasyncio.v3 as v3


def live_tasks():
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is v3.Task and not o.done()]


def v3_on_a_new_loop():
    """(A fixture's body) uasyncio.v3 on a new default loop; afterwards the
    loop is closed and no pending Task may be left alive."""
    loop = v3.new_event_loop()
    yield v3
    loop.close()
    del loop
    v3.new_event_loop()
    assert not live_tasks()


@pytest.fixture
def aio():
    """uasyncio.v3 on a new default loop; afterwards the loop is closed and
    no pending Task may be left alive."""
    yield from v3_on_a_new_loop()


@pytest.fixture(params=["uasyncio.v3", "asyncio"])
def both(request):
    """Each test runs on uasyncio.v3 (as aio) and on CPython's asyncio."""
    if request.param == "asyncio":
        yield cpython_asyncio
    else:
        yield from v3_on_a_new_loop()


def run_both(program):
    """Run program(asyncio_module, out) on both modules; out is a list the
    program appends to. Returns (v3's output, asyncio's output)."""
    outs = []
    for mod in (v3, cpython_asyncio):
        if mod is v3:
            v3.new_event_loop()
        out = []
        try:
            out.append(("result", mod.run(program(mod, out))))
        except BaseException as e:   # noqa: B902 - the test compares what escaped
            out.append(("raised", type(e).__name__, str(e)))
        outs.append(out)
    v3.new_event_loop().close()
    v3.new_event_loop()
    return outs


async def echo_lines(reader, writer):
    """Server handler on the asyncio streams API (uasyncio.v3's or CPython's):
    echo each line until EOF, then close."""
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
