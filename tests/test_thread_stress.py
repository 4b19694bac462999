"""Threads against running loops, for a bounded time: several threads call
call_soon_threadsafe(), ThreadSafeFlag.set() and the calls that must be
refused from another thread, while 2.0 and v3 loops run, stop, close and
are collected. No crash (the rounds run in a program of their own), no lost
wake-up (every call scheduled runs, every flag set is seen, before a
generous timeout), no leak (file descriptors and loop objects).

UA_STRESS_SECONDS sets how long (5 s by default; make asan gives 30)."""
import gc
import os
import random
import subprocess
import sys
import threading

import pytest

if __name__ != "__main__":
    from conftest import PKG_DIR

import uasyncio
import uasyncio.v3 as v3
from uasyncio.queues import Queue

SECONDS = float(os.environ.get("UA_STRESS_SECONDS", "5"))
POKERS = 3
CALLS = 200
TIMEOUT = 30   # generous: a wake-up that takes this long was lost


def refused_ok(e):
    """From another thread a call that changes the loop fails this way
    (or the loop is closed already)."""
    msg = str(e)
    return isinstance(e, RuntimeError) and ("another thread" in msg or "closed" in msg)


class Round:
    """One loop (2.0 or v3) run in a thread of its own, poked by POKERS
    threads; abrupt: the loop is stopped and closed while they poke."""

    def __init__(self, rng, v3_loop, abrupt):
        self.rng = rng
        self.v3 = v3_loop
        self.abrupt = abrupt
        self.loop = v3.Loop() if v3_loop else uasyncio.PollEventLoop()
        self.scheduled = [0] * POKERS   # call_soon_threadsafe() calls that succeeded
        self.ran = [0] * POKERS         # ... and the callbacks that ran
        self.refused = 0
        self.problems = []
        self.running = threading.Event()
        self.finish = False             # set before the last wake-up

    # ---- in the pokers' threads ----

    def record(self, tid):
        self.ran[tid] += 1

    def poke(self, tid, targets):
        loop = self.loop
        for i in range(CALLS):
            k = self.rng.randrange(4)
            try:
                if k == 0 or k == 1:
                    loop.call_soon_threadsafe(self.record, tid)
                    self.scheduled[tid] += 1
                elif k == 2 and self.v3:
                    targets["flag"].set()
                else:
                    self.rng.choice(targets["refused"])()
                    if not self.abrupt:   # the loop runs all along: it had to fail
                        self.problems.append(("poke", "a call that changes the loop was not refused"))
            except Exception as e:   # noqa: B902 - checked right here
                if not refused_ok(e):
                    self.problems.append(("poke", repr(e)))
                elif "another thread" in str(e):
                    self.refused += 1
                if "closed" in str(e):
                    return   # the loop is gone: nothing more to poke

    # ---- in the loop's thread ----

    async def main_v3(self, targets):
        flag, sleeper = targets["flag"], targets["sleeper"]
        self.running.set()

        async def flag_waiter():
            while not self.finish:
                await flag.wait()

        waiter = v3.create_task(flag_waiter())
        try:
            await v3.wait_for(waiter, TIMEOUT)
        except v3.TimeoutError:
            self.problems.append(("lost", "a ThreadSafeFlag.set() was not seen"))
        await self.main_v2(targets["done"])
        sleeper.cancel()

    async def main_v2(self, done):
        self.running.set()
        try:
            if self.v3:
                await v3.wait_for(done.get(), TIMEOUT)
            else:
                await uasyncio.wait_for(done.get(), TIMEOUT)
        except (uasyncio.TimeoutError, v3.TimeoutError):
            self.problems.append(("lost", "a call_soon_threadsafe() did not wake the loop"))

    def run_loop(self, targets):
        loop = self.loop
        try:
            if self.v3:
                loop.run_until_complete(self.main_v3(targets))
            else:
                loop.run_until_complete(self.main_v2(targets["done"]))
            if not self.abrupt and self.ran != self.scheduled:
                # Every call scheduled before the last wake-up ran before it.
                self.problems.append(("lost", "calls ran %s of %s" % (self.ran, self.scheduled)))
        except BaseException as e:   # noqa: B902 - reported by the round
            self.problems.append(("loop", repr(e)))
        finally:
            loop.close()

    # ---- the round, in the main thread ----

    def targets(self):
        """What the pokers poke: the flag, and the calls they must be refused."""
        loop = self.loop

        def gen():
            yield

        if self.v3:
            flag, ev, sem, q = v3.ThreadSafeFlag(), v3.Event(), v3.Semaphore(0), v3.Queue()

            async def forever(aw):
                await aw

            sleeper = loop.create_task(v3.sleep(3600))
            for aw in (ev.wait(), sem.acquire(), q.get()):
                loop.create_task(forever(aw))
            refused = [lambda: loop.call_soon(int), lambda: loop.create_task(gen()), sleeper.cancel,
                       ev.set, sem.release, lambda: q.put_nowait(1), loop.stop]
            return {"flag": flag, "sleeper": sleeper, "refused": refused, "done": v3.Queue(),
                    "keep": (ev, sem, q)}
        q, done = Queue(), Queue()

        async def getter():
            await q.get()

        loop.create_task(getter())
        refused = [lambda: loop.call_soon(int), lambda: loop.create_task(gen()),
                   lambda: q.put_nowait(1), loop.stop, lambda: loop.call_later(1, int)]
        return {"done": done, "refused": refused}

    def run(self):
        targets = self.targets()
        loop_thread = threading.Thread(target=self.run_loop, args=(targets,))
        loop_thread.start()
        self.running.wait(TIMEOUT)
        pokers = [threading.Thread(target=self.poke, args=(i, targets)) for i in range(POKERS)]
        for t in pokers:
            t.start()
        if self.abrupt:   # stop and close it while they poke
            self.end(targets)
        for t in pokers:
            t.join(TIMEOUT)
        if not self.abrupt:
            self.end(targets)
        loop_thread.join(TIMEOUT)
        if loop_thread.is_alive() or any(t.is_alive() for t in pokers):
            self.problems.append(("hang", "a thread did not finish"))
        return self.problems

    def end(self, targets):
        """The last wake-ups, from this thread: a queue item, queued after
        every call of the pokers (so all of them ran when it is taken), and
        the flag (v3)."""
        self.finish = True
        try:
            self.loop.call_soon_threadsafe(targets["done"].put_nowait, "done")
            if self.v3:
                targets["flag"].set()
        except RuntimeError as e:
            self.problems.append(("end", repr(e)))


def loop_objects():
    gc.collect()
    kinds = (uasyncio.PollEventLoop, v3.Loop, v3.Task, v3.Wait)
    return [o for o in gc.get_objects() if type(o) in kinds]


def stress(seconds, seed=0):
    import time
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    problems = []
    fds = None
    rounds = refused = 0
    while time.monotonic() < deadline or rounds < 8:
        r = Round(rng, v3_loop=rounds % 2 == 1, abrupt=rounds % 4 >= 2)
        problems += r.run()
        refused += r.refused
        del r
        rounds += 1
        left = loop_objects()
        if left:
            problems.append(("leak", "round %d left %r" % (rounds, left[:5])))
        n = len(os.listdir("/proc/self/fd"))
        if rounds == 4:
            fds = n
        elif rounds > 4 and n != fds:
            problems.append(("leak", "round %d: %d fds open, %d after round 4" % (rounds, n, fds)))
        if problems:
            break
    return rounds, refused, problems


if __name__ == "__main__":
    sys.setswitchinterval(1e-5)   # the GIL changes hands often: more interleavings
    rounds, refused, problems = stress(float(sys.argv[1]))
    print("rounds", rounds, "refused", refused)
    for p in problems:
        print("PROBLEM", *p)
    sys.exit(1 if problems else 0)


def test_threads_against_loops_that_run_stop_close_and_are_collected():
    env = dict(os.environ, PYTHONPATH=PKG_DIR)
    r = subprocess.run([sys.executable, os.path.abspath(__file__), str(SECONDS)], capture_output=True,
                       text=True, env=env, timeout=SECONDS * 4 + 120)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-3000:])
    words = r.stdout.split()
    assert int(words[words.index("rounds") + 1]) >= 8
    assert int(words[words.index("refused") + 1]) > 0   # the refused calls were tried on a running loop
