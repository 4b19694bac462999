"""Random uasyncio.v3 programs mixing gather, wait_for, Lock, Event and
cancellation (of any task by any other, some swallowing it): each must end
cleanly, with only the exceptions the program itself raises, however the
cancellations land."""
import gc
import random
import sys

import uasyncio.v3 as v3

# What a program may end with, in a task or in the exception handler.
PLANNED = (ValueError, v3.TimeoutError, v3.CancelledError)


def make_ops(rng, depth=0):
    """A random list of steps for one task; wait_for and gather nest."""
    ops = []
    for _ in range(rng.randint(1, 5)):
        k = rng.randrange(10 if depth < 2 else 6)
        if k == 0:
            ops.append(("sleep", rng.choice([0, 0, 1, 3])))
        elif k == 1:
            ops.append(("lock", rng.choice([0, 1, 2])))
        elif k == 2:
            ops.append(("cancel", rng.randrange(6)))
        elif k == 3:
            ops.append(("event", rng.choice(["set", "clear", "wait"])))
        elif k == 4:
            ops.append(("return", rng.choice([None, None, 1])))
        elif k == 5:
            ops.append(("raise",))
        elif k in (6, 7):
            ops.append(("wait_for", rng.choice([0, 1, 2, 5]), make_ops(rng, depth + 1), rng.random() < 0.5))
        else:
            subs = [make_ops(rng, depth + 1) for _ in range(rng.randint(0, 3))]
            ops.append(("gather", subs, rng.random() < 0.5, rng.random() < 0.5))
    return ops


def program(seed, n_tasks=5):
    """main() of the program of this seed: returns what each task ended
    with, and the lock."""
    rng = random.Random(seed)
    plans = [(make_ops(rng), rng.random() < 0.3) for _ in range(n_tasks)]
    tasks = []

    async def run_ops(ops, lock, ev, swallow):
        try:
            for op in ops:
                kind = op[0]
                if kind == "sleep":
                    await v3.sleep_ms(op[1])
                elif kind == "lock":
                    async with lock:
                        await v3.sleep_ms(op[1])
                elif kind == "cancel":
                    if op[1] < len(tasks) and tasks[op[1]] is not v3.current_task():
                        tasks[op[1]].cancel()
                elif kind == "event":
                    if op[1] == "set":
                        ev.set()
                    elif op[1] == "clear":
                        ev.clear()
                    else:
                        await v3.wait_for_ms(ev.wait(), 3)
                elif kind == "return":
                    return op[1]
                elif kind == "raise":
                    raise ValueError("planned")
                elif kind == "wait_for":
                    _, ms, sub, as_task = op
                    aw = run_ops(sub, lock, ev, swallow)
                    try:
                        await v3.wait_for_ms(v3.create_task(aw) if as_task else aw, ms)
                    except v3.TimeoutError:
                        pass
                else:
                    _, subs, return_exceptions, as_tasks = op
                    aws = [run_ops(s, lock, ev, swallow) for s in subs]
                    if as_tasks:
                        aws = [v3.create_task(a) for a in aws]
                    await v3.gather(*aws, return_exceptions=return_exceptions)
        except v3.CancelledError:
            if not swallow:
                raise
        return None

    async def main():
        lock, ev = v3.Lock(), v3.Event()
        for ops, swallow in plans:
            tasks.append(v3.create_task(run_ops(ops, lock, ev, swallow)))
        outcomes = []
        for t in tasks:
            for _ in range(3):   # a task that swallows a cancel may be cancelled again
                try:
                    outcomes.append(await v3.wait_for_ms(t, 1000))
                    break
                except (v3.CancelledError, v3.TimeoutError) as e:
                    outcomes.append(e)
                    if t.done():
                        break
                except Exception as e:
                    outcomes.append(e)
                    break
        return outcomes, lock
    return main()


def pending_tasks(loop):
    """The loop's tasks that have not ended (the loop holds each one)."""
    return [o for o in gc.get_referents(loop) if type(o) is v3.Task and not o.done()]


def test_random_programs_end_cleanly():
    unraisable = []
    old_hook = sys.unraisablehook
    sys.unraisablehook = unraisable.append
    failures = []
    try:
        for seed in range(1500):
            loop = v3.new_event_loop(virtual_clock=True)
            handled = []
            loop.set_exception_handler(lambda loop, context: handled.append(context["exception"]))
            try:
                outcomes, lock = loop.run_until_complete(program(seed))
                # Tasks main did not wait for (a gather's others, after one
                # failed) run on until none can be woken: then every task
                # has ended, and the lock is free.
                v3.run_until_complete()
                bad = [e for e in outcomes + handled if isinstance(e, BaseException) and
                       not isinstance(e, PLANNED)]
                if bad or lock.locked() or pending_tasks(loop):
                    failures.append((seed, bad, lock, pending_tasks(loop)))
            finally:
                loop.close()
    finally:
        sys.unraisablehook = old_hook
        v3.new_event_loop()
    assert not failures, failures[:3]
    assert not unraisable, [(u.exc_value, u.object) for u in unraisable[:3]]
