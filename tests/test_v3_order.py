"""uasyncio.v3 runs tasks in MicroPython's order, pass for pass.

Each program here was run on MicroPython v1.28.0 (with `import asyncio, time`
prepended); the trace it printed there is the one asserted. MicroPython
keeps one queue of ready and sleeping tasks ordered by (tick, push order):
a task made ready is keyed at the current tick, a sleeper at its deadline.
"""
import time
import types

import pytest

from uasyncio.core import ticks_add
from v3util import aio  # noqa: F401 - fixture

# The runner's time (python3 -m uasyncio.v3): ticks wrap at 2**30, as on a
# 32-bit board.
TIME = types.SimpleNamespace(sleep=time.sleep, ticks_add=ticks_add)


def run_program(aio, src, capsys):
    """Run src (a MicroPython program minus its imports) on uasyncio.v3;
    returns the lines it printed."""
    exec(compile(src, "<program>", "exec"), {"asyncio": aio, "time": TIME})
    return capsys.readouterr().out.splitlines()


# a sleeper whose deadline passed runs before a task made ready since (one queue by tick)
MERGE = '''\
async def sleeper(n, ms):
    await asyncio.sleep_ms(ms)
    print("sleeper", n)

async def other():
    print("other")

async def main():
    asyncio.create_task(sleeper(1, 10))
    asyncio.create_task(sleeper(2, 20))
    await asyncio.sleep(0)
    time.sleep(0.05)   # both deadlines pass while main runs
    asyncio.create_task(other())
    await asyncio.sleep(0)
    print("main")

asyncio.run(main())
'''
MERGE_PRINTS = '''\
sleeper 1
sleeper 2
other
main
'''

# cancel(): a task due already keeps its deadline's place; one sleeping on comes forward to now
CANCEL_PLACE = '''\
async def sleeper(n, ms):
    try:
        await asyncio.sleep_ms(ms)
        print("sleeper", n, "woke")
    except asyncio.CancelledError:
        print("sleeper", n, "cancelled")

async def ready(n):
    print("ready", n)

async def main():
    a = asyncio.create_task(sleeper("a", 10))
    b = asyncio.create_task(sleeper("b", 10000))
    await asyncio.sleep(0)
    asyncio.create_task(ready(1))
    time.sleep(0.03)   # a's deadline passes
    asyncio.create_task(ready(2))
    print("cancel", a.cancel(), b.cancel())
    asyncio.create_task(ready(3))
    await asyncio.sleep(0)
    print("main")
    await asyncio.sleep(0)

asyncio.run(main())
'''
CANCEL_PLACE_PRINTS = '''\
cancel True True
ready 1
sleeper a cancelled
ready 2
sleeper b cancelled
ready 3
main
'''

# wait_for: a runner task awaits the inner one; TimeoutError even if it returns; cancelling the waiter raises at once
WAITFOR = '''\
async def inner(catch):
    print("inner start")
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        print("inner cancelled")
        if catch:
            return "kept"
        raise
    return "done"

async def ticker():
    for i in range(4):
        print("tick", i)
        await asyncio.sleep(0)

async def quick():
    print("quick")
    return 5

async def waiter():
    try:
        await asyncio.wait_for(inner(False), 1)
    except asyncio.CancelledError:
        print("waiter cancelled")
        raise

async def main():
    asyncio.create_task(ticker())
    try:
        print(await asyncio.wait_for(inner(True), 0.02))
    except asyncio.TimeoutError:
        print("timeout")
    asyncio.create_task(ticker())
    print(await asyncio.wait_for(quick(), 1))
    t = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    print("cancel", t.cancel())
    try:
        await t
    except asyncio.CancelledError:
        print("main: waiter cancelled")
    await asyncio.sleep(0.01)

asyncio.run(main())
'''
WAITFOR_PRINTS = '''\
tick 0
inner start
tick 1
tick 2
tick 3
inner cancelled
timeout
tick 0
quick
tick 1
5
tick 2
cancel True
tick 3
inner start
waiter cancelled
inner cancelled
main: waiter cancelled
'''

# gather: tasks made when it first runs; cancelled, it cancels them when it runs again; a task done with an exception
GATHER = '''\
async def task(n):
    print("start", n)
    await asyncio.sleep(0)
    print("end", n)
    return n

async def fail(n):
    print("fail", n)
    raise ValueError(n)

async def gatherer(*aws):
    print("gather")
    try:
        print(await asyncio.gather(*aws))
    except asyncio.CancelledError:
        print("gather cancelled")
    except ValueError as e:
        print("gather raised", e.args)

async def main():
    g = asyncio.gather(task(1), task(2))
    print("made")
    await asyncio.sleep(0)
    print(await g)
    for i in range(1, 4):
        print("--", i)
        t = asyncio.create_task(gatherer(task(1), task(2)))
        for _ in range(i):
            await asyncio.sleep(0)
        t.cancel()
        await asyncio.sleep(0.02)
    print("--")
    f = asyncio.create_task(fail(9))
    await asyncio.sleep(0)
    await gatherer(f, task(3))
    await asyncio.sleep(0.02)

def handler(loop, ctx):
    print("handler", ctx["message"], ctx["exception"].args)

asyncio.get_event_loop().set_exception_handler(handler)
asyncio.run(main())
'''
GATHER_PRINTS = '''\
made
start 1
start 2
end 1
end 2
[1, 2]
-- 1
gather
start 1
start 2
gather cancelled
-- 2
gather
start 1
start 2
end 1
end 2
gather cancelled
-- 3
gather
start 1
start 2
end 1
end 2
gather cancelled
--
fail 9
gather
gather raised (9,)
handler Task exception wasn't retrieved (9,)
start 3
end 3
'''

# Lock.locked() is False while the lock is handed to a waiter that has not run; release() then raises
LOCK = '''\
async def holder(lock):
    async with lock:
        print("holder has it")
        await asyncio.sleep(0)
        await asyncio.sleep(0)
    print("holder released, locked:", lock.locked())
    try:
        lock.release()
    except RuntimeError as e:
        print("release:", e)

async def taker(lock):
    print("taker waits")
    await lock.acquire()
    print("taker has it, locked:", lock.locked())
    lock.release()

async def main():
    lock = asyncio.Lock()
    asyncio.create_task(holder(lock))
    await asyncio.sleep(0)
    asyncio.create_task(taker(lock))
    await asyncio.sleep(0)
    print("main, locked:", lock.locked())
    await asyncio.sleep(0)
    print("main, locked:", lock.locked())
    await asyncio.sleep(0)

asyncio.run(main())
'''
LOCK_PRINTS = '''\
holder has it
taker waits
main, locked: True
holder released, locked: False
release: Lock not acquired
main, locked: False
taker has it, locked: True
'''

# ThreadSafeFlag.set() in the loop's thread wakes the waiter at the next poll, behind what is queued
FLAG = '''\
async def waiter(flag):
    print("waiting")
    await flag.wait()
    print("woken")

async def other():
    print("other")

async def main():
    flag = asyncio.ThreadSafeFlag()
    asyncio.create_task(waiter(flag))
    await asyncio.sleep(0)
    asyncio.create_task(other())
    flag.set()
    print("set")
    await asyncio.sleep(0)
    print("main")
    await asyncio.sleep(0)
    print("main again")

asyncio.run(main())
'''
FLAG_PRINTS = '''\
waiting
set
other
main
woken
main again
'''

# a ThreadSafeFlag cleared after its waiter was woken: the waiter returns all the same
FLAG_CLEARED = '''\
fl = asyncio.ThreadSafeFlag()

async def w():
    print("w waits")
    await fl.wait()
    print("w woken")

async def a():
    fl.set()
    print("a set")

async def b():
    fl.clear()
    print("b clear")

async def main():
    asyncio.create_task(w())
    await asyncio.sleep(0)
    asyncio.create_task(a())
    asyncio.create_task(b())
    await asyncio.sleep(0)
    print("main")
    await asyncio.sleep(0.01)
    print("end")

asyncio.run(main())
'''
FLAG_CLEARED_PRINTS = '''\
w waits
a set
b clear
main
w woken
end
'''

# an exception nobody awaited is reported one step after its task ended
UNRETRIEVED = '''\
async def fail(n):
    print("fail", n)
    raise ValueError(n)

async def step(n):
    print("step", n)

def handler(loop, ctx):
    print("handler", ctx["message"], ctx["exception"].args)

async def main():
    asyncio.create_task(fail(1))
    asyncio.create_task(step(1))
    await asyncio.sleep(0)
    print("main 1")
    t = asyncio.create_task(fail(2))
    await asyncio.sleep(0)
    try:
        await t
    except ValueError as e:
        print("awaited", e.args)
    await asyncio.sleep(0)
    print("main 2")

asyncio.get_event_loop().set_exception_handler(handler)
asyncio.run(main())
'''
UNRETRIEVED_PRINTS = '''\
fail 1
step 1
main 1
handler Task exception wasn't retrieved (1,)
fail 2
awaited (2,)
main 2
'''

# run() returns when main ends, a cancelled task runs in the next run(); sleep_ms() past the longest delay
RUNS = '''\
async def victim(n):
    try:
        await asyncio.sleep(1)
    except asyncio.CancelledError:
        print("victim cancelled", n)

async def main1():
    t = asyncio.create_task(victim(1))
    await asyncio.sleep(0)
    t.cancel()
    print("main1 returns")
    return 1

async def main2():
    print("main2")
    await asyncio.sleep(0)
    print("main2 returns")
    return 2

print(asyncio.run(main1()))
print(asyncio.run(main2()))
try:
    asyncio.sleep_ms(time.ticks_add(0, -1) // 2 + 1)
except OverflowError:
    print("OverflowError")
'''
RUNS_PRINTS = '''\
main1 returns
1
victim cancelled 1
main2
main2 returns
2
OverflowError
'''


CASES = {
    'merge': (MERGE, MERGE_PRINTS),
    'cancel_place': (CANCEL_PLACE, CANCEL_PLACE_PRINTS),
    'waitfor': (WAITFOR, WAITFOR_PRINTS),
    'gather': (GATHER, GATHER_PRINTS),
    'lock': (LOCK, LOCK_PRINTS),
    'flag': (FLAG, FLAG_PRINTS),
    'flag_cleared': (FLAG_CLEARED, FLAG_CLEARED_PRINTS),
    'unretrieved': (UNRETRIEVED, UNRETRIEVED_PRINTS),
    'runs': (RUNS, RUNS_PRINTS),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_prints_what_micropython_prints(aio, capsys, name):
    src, expected = CASES[name]
    assert run_program(aio, src, capsys) == expected.splitlines()
