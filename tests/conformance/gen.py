"""Random, deterministic v3 programs for differential testing.

generate(seed) gives a Program: task functions and one or two main
coroutines (each run with asyncio.run()) built from statements that print a
trace: sleeps, sleep(0), Event, Lock, ThreadSafeFlag, create_task, await,
cancel (caught or not), gather (with and without return_exceptions),
wait_for / wait_for_ms, raised exceptions and return values.

What makes a program print the same on every run of one interpreter: time
is cut into slots SLOT_MS apart (from the program's start), every timer (a
sleep or a wait_for timeout) ends on a slot of its own, and all that a timer
sets off is over long before the next slot. Within a slot the order is the
scheduler's alone. A sleep to a slot that has passed is a sleep(0).

A Program is a tree of Stmt; render() gives its source. The minimizer
(differ.py) removes statements and re-renders; prune() then drops what no
longer makes sense (a task function nothing starts, a use of a task handle
nothing creates), so every reduced program is still well formed.
"""
import random

SLOT_MS = 40
WATCHDOG_SLOTS = 3

# Every kind of statement, by the feature it tests (differ.py can leave
# features out, e.g. those not deterministic on the reference).
FEATURES = ("sleep", "sleep0", "event", "lock", "flag", "spawn", "await", "cancel", "catch",
            "gather", "wait_for", "raise", "run2", "cancel_self")

HEADER = """\
import asyncio, time

SLOT_MS = %d
T0 = time.ticks_ms()


def ms(k):
    # Milliseconds from now to slot k (0 if it has passed).
    return max(0, time.ticks_diff(time.ticks_add(T0, SLOT_MS * k), time.ticks_ms()))


def sl(k):
    return asyncio.sleep_ms(ms(k))


def handler(loop, context):
    print("unretrieved", repr(context["exception"]))


asyncio.get_event_loop().set_exception_handler(handler)
E = [asyncio.Event() for _ in range(%d)]
L = [asyncio.Lock() for _ in range(%d)]
F = [asyncio.ThreadSafeFlag() for _ in range(%d)]
T = {}


async def wd(name, task, k):
    # Cancels a main task that would otherwise wait for ever.
    for j in range(%d):
        await sl(k + j)
        print(name, "watchdog", task.cancel())

"""


class Stmt:
    """One statement: kind, its arguments, and for blocks a body."""

    def __init__(self, kind, *args, body=None):
        self.kind = kind
        self.args = list(args)
        self.body = body

    def timed(self):
        return self.kind == "sleep" or (self.kind == "wait_for" and self.args[1] is not None)


class Func:
    def __init__(self, name, body):
        self.name = name
        self.body = body


class Program:
    def __init__(self, funcs, mains, nevents, nlocks, nflags, features):
        self.funcs = funcs          # name -> Func (task functions)
        self.mains = mains          # [Func]: main1, main2 (asyncio.run() each)
        self.nevents, self.nlocks, self.nflags = nevents, nlocks, nflags
        self.features = features    # the features the program uses

    def render(self):
        out = [HEADER % (SLOT_MS, self.nevents, self.nlocks, self.nflags, WATCHDOG_SLOTS)]
        for f in self.funcs.values():
            out.append(render_func(f))
        for m in self.mains:
            out.append(render_func(m))
        for m in self.mains:
            out.append("try:\n    print(%r, asyncio.run(%s()))\nexcept BaseException as e:\n"
                       "    print(%r, \"raised\", repr(e))\n" % (m.name, m.name, m.name))
        return "\n".join(out)

    def all_bodies(self):
        """(function, body) for every block of statements, outermost first."""
        todo = [(f, f.body) for f in list(self.funcs.values()) + self.mains]
        while todo:
            f, body = todo.pop(0)
            yield f, body
            todo.extend((f, s.body) for s in body if s.body is not None)

    def slots(self):
        return sorted({s.args[-1] if s.kind == "sleep" else s.args[1]
                       for _, b in self.all_bodies() for s in b if s.timed()} |
                      {s.args[1] for _, b in self.all_bodies() for s in b if s.kind == "watchdog"})

    def duration_ms(self):
        sl = self.slots()
        return SLOT_MS * ((sl[-1] if sl else 0) + WATCHDOG_SLOTS)


# ---- rendering ----------------------------------------------------------------


def item_src(item):
    """A gather/wait_for/await operand: a new coroutine or a task handle."""
    how, name = item
    return "%s()" % name if how == "new" else "T[%r]" % name


def item_label(item):
    return item[1] if item[0] == "new" else "T." + item[1]


def render_func(f):
    lines = ["async def %s():" % f.name]
    render_body(f.name, f.body, 1, lines)
    if not f.body:
        lines.append("    pass")
    return "\n".join(lines) + "\n"


def render_body(who, body, depth, lines):
    for s in body:
        render_stmt(who, s, depth, lines)


def render_stmt(who, s, depth, lines):
    ind = "    " * depth
    w = repr(who)
    a = s.args

    def emit(*ls):
        lines.extend(ind + x for x in ls)

    k = s.kind
    if k == "sleep":
        emit("await sl(%d)" % a[0], "print(%s, \"slept\", %d)" % (w, a[0]))
    elif k == "sleep0":
        emit("await asyncio.sleep(0)", "print(%s, \"s0\")" % w)
    elif k == "set":
        emit("E[%d].set()" % a[0], "print(%s, \"set E%d\")" % (w, a[0]))
    elif k == "clear":
        emit("E[%d].clear()" % a[0], "print(%s, \"clear E%d\")" % (w, a[0]))
    elif k == "wait":
        emit("await E[%d].wait()" % a[0], "print(%s, \"got E%d\")" % (w, a[0]))
    elif k == "fset":
        emit("F[%d].set()" % a[0], "print(%s, \"set F%d\")" % (w, a[0]))
    elif k == "fwait":
        emit("await F[%d].wait()" % a[0], "print(%s, \"got F%d\")" % (w, a[0]))
    elif k == "lock":
        emit("async with L[%d]:" % a[0])
        emit("    print(%s, \"in L%d\", L[%d].locked())" % (w, a[0], a[0]))
        render_body(who, s.body, depth + 1, lines)
        emit("print(%s, \"out L%d\", L[%d].locked())" % (w, a[0], a[0]))
    elif k == "locked":
        emit("print(%s, \"L%d locked\", L[%d].locked())" % (w, a[0], a[0]))
    elif k == "spawn":
        emit("T[%r] = asyncio.create_task(%s())" % (a[0], a[0]), "print(%s, \"spawned %s\")" % (w, a[0]))
    elif k == "watchdog":
        emit("T[%r] = asyncio.create_task(wd(%r, asyncio.current_task(), %d))" % (a[0], who, a[1]))
    elif k == "await":
        emit("try:",
             "    print(%s, \"awaited %s\", await %s)" % (w, item_label(a[0]), item_src(a[0])),
             "except Exception as e:",
             "    print(%s, \"awaited %s\", repr(e))" % (w, item_label(a[0])))
    elif k == "cancel":
        emit("print(%s, \"cancel %s\", T[%r].cancel())" % (w, a[0], a[0]))
    elif k == "done":
        emit("print(%s, \"%s done\", T[%r].done())" % (w, a[0], a[0]))
    elif k == "cancel_self":
        emit("try:",
             "    asyncio.current_task().cancel()",
             "except RuntimeError as e:",
             "    print(%s, \"cancel self\", repr(e))" % w)
    elif k == "gather":
        items, rex = a
        operands = [item_src(i) for i in items] + (["return_exceptions=True"] if rex else [])
        emit("try:",
             "    print(%s, \"gather\", await asyncio.gather(%s))" % (w, ", ".join(operands)),
             "except Exception as e:",
             "    print(%s, \"gather\", repr(e))" % w)
    elif k == "wait_for":
        item, slot, unit = a
        if slot is None:
            call = "asyncio.wait_for(%s, None)" % item_src(item)
        elif unit == "ms":
            call = "asyncio.wait_for_ms(%s, ms(%d))" % (item_src(item), slot)
        else:
            call = "asyncio.wait_for(%s, ms(%d) / 1000)" % (item_src(item), slot)
        emit("try:",
             "    print(%s, \"wait_for %s\", await %s)" % (w, item_label(item), call),
             "except Exception as e:",
             "    print(%s, \"wait_for %s\", repr(e))" % (w, item_label(item)))
    elif k == "catch":
        action = a[0]
        emit("try:")
        render_body(who, s.body, depth + 1, lines)
        if not s.body:
            emit("    pass")
        emit("except asyncio.CancelledError as e:",
             "    print(%s, \"caught\", repr(e))" % w)
        if action == "raise":
            emit("    raise")
        elif action == "return":
            emit("    return -1")
    elif k == "raise":
        emit("raise ValueError(%d)" % a[0])
    elif k == "return":
        emit("return %d" % a[0])
    else:
        raise ValueError("unknown statement kind %r" % k)


# ---- pruning --------------------------------------------------------------------


def started(s):
    """The task functions a statement starts (spawns or runs as a coroutine)."""
    if s.kind == "spawn":
        return [s.args[0]]
    if s.kind in ("await", "wait_for") and s.args[0][0] == "new":
        return [s.args[0][1]]
    if s.kind == "gather":
        return [i[1] for i in s.args[0] if i[0] == "new"]
    return []


def handles_used(s):
    if s.kind in ("cancel", "done"):
        return [s.args[0]]
    if s.kind in ("await", "wait_for") and s.args[0][0] == "task":
        return [s.args[0][1]]
    if s.kind == "gather":
        return [i[1] for i in s.args[0] if i[0] == "task"]
    return []


def prune(prog):
    """Drop, until nothing changes, task functions that nothing starts and
    statements that use a task handle that nothing creates."""
    while True:
        changed = False
        starts, spawns = set(), set()
        for _, body in prog.all_bodies():
            for s in body:
                starts.update(started(s))
                if s.kind == "spawn":
                    spawns.add(s.args[0])
        for name in list(prog.funcs):
            if name not in starts:
                del prog.funcs[name]
                changed = True
        for _, body in prog.all_bodies():
            for s in list(body):
                if s.kind == "gather":
                    items = [i for i in s.args[0] if i[1] in (prog.funcs if i[0] == "new" else spawns)]
                    if items != s.args[0]:
                        s.args[0] = items
                        changed = True
                elif any(h not in spawns for h in handles_used(s)) or \
                        any(n not in prog.funcs for n in started(s)):
                    body.remove(s)
                    changed = True
        if not changed:
            return prog


def copy_program(prog):
    def cs(s):
        return Stmt(s.kind, *[list(x) if isinstance(x, list) else x for x in s.args],
                    body=None if s.body is None else [cs(b) for b in s.body])

    return Program({n: Func(n, [cs(s) for s in f.body]) for n, f in prog.funcs.items()},
                   [Func(m.name, [cs(s) for s in m.body]) for m in prog.mains],
                   prog.nevents, prog.nlocks, prog.nflags, set(prog.features))


# ---- generation -----------------------------------------------------------------


class Gen:
    def __init__(self, seed, features=FEATURES, max_funcs=7, max_stmts=40):
        self.r = random.Random(seed)
        self.features = set(features)
        self.used = set()
        self.funcs = {}
        self.max_funcs = max_funcs
        self.budget = max_stmts
        self.nevents = self.r.randint(1, 2)
        self.nlocks = self.r.randint(1, 2)
        self.nflags = 1
        self.flag_waiter = {}    # flag -> the only function that waits on it
        self.serial = 0

    def on(self, feature):
        return feature in self.features

    def new_func(self, handles, depth):
        self.serial += 1
        name = "f%d" % self.serial
        self.funcs[name] = None        # reserved: counts against max_funcs
        self.funcs[name] = Func(name, self.body(name, handles, depth + 1, last=True))
        return name

    def can_start(self, depth):
        return len(self.funcs) < self.max_funcs and depth < 4

    def operand(self, who, handles, depth):
        """A new coroutine (a task function made for it) or a known handle."""
        if handles and (self.r.random() < 0.4 or not self.can_start(depth)):
            return ("task", self.r.choice(handles))
        return ("new", self.new_func(list(handles), depth))

    def operands(self, who, handles, depth):
        """A gather's: each task once (MicroPython refuses a task given twice,
        but only after it made the gather's callback the first one's, which
        then fails when that task ends: its fault, not a behaviour)."""
        out = []
        for _ in range(self.r.randint(1, 3)):
            op = self.operand(who, handles, depth)
            if op not in out:
                out.append(op)
        return out

    def body(self, who, handles, depth, last=False, inner=0):
        if who.startswith("main") and inner == 0:
            n = self.r.randint(4, 10)
        else:
            n = self.r.randint(1, 5 if inner == 0 else 3)
        out = []
        for _ in range(n):
            if self.budget <= 0:
                break
            s = self.stmt(who, handles, depth, inner)
            if s is not None:
                out.append(s)
                self.budget -= 1
        if last:
            x = self.r.random()
            if x < 0.2 and self.on("raise"):
                self.used.add("raise")
                out.append(Stmt("raise", self.r.randint(1, 99)))
            elif x < 0.6:
                out.append(Stmt("return", self.r.randint(1, 99)))
        return out

    def stmt(self, who, handles, depth, inner):
        r = self.r
        choices = []
        weights = []

        def add(feature, weight, make):
            if self.on(feature):
                choices.append((feature, make))
                weights.append(weight)

        add("sleep", 5, lambda: Stmt("sleep", None))
        add("sleep0", 4, lambda: Stmt("sleep0"))
        add("event", 2, lambda: Stmt("set", r.randrange(self.nevents)))
        add("event", 1, lambda: Stmt("clear", r.randrange(self.nevents)))
        # A main task waiting on an Event or a flag often waits for ever
        # (the watchdog ends it): tasks wait more.
        main = who.startswith("main")
        add("event", 0.2 if main else 2, lambda: Stmt("wait", r.randrange(self.nevents)))
        add("flag", 1, lambda: Stmt("fset", r.randrange(self.nflags)))
        if self.flag_waiter.get(0, who) == who:
            add("flag", 0 if main else 1, lambda: self.fwait(who))
        if inner < 2:
            add("lock", 2, lambda: Stmt("lock", r.randrange(self.nlocks),
                                        body=self.body(who, handles, depth, inner=inner + 1)))
            add("catch", 2, lambda: Stmt("catch", r.choice(("raise", "pass", "return")),
                                         body=self.body(who, handles, depth, inner=inner + 1)))
        add("lock", 1, lambda: Stmt("locked", r.randrange(self.nlocks)))
        if self.can_start(depth):
            add("spawn", 4, lambda: self.spawn(handles, depth))
            add("await", 1, lambda: Stmt("await", ("new", self.new_func(list(handles), depth))))
        if handles:
            add("await", 2, lambda: Stmt("await", ("task", r.choice(handles))))
            add("cancel", 3, lambda: Stmt("cancel", r.choice(handles)))
            add("cancel", 1, lambda: Stmt("done", r.choice(handles)))
        if handles or self.can_start(depth):
            add("gather", 2, lambda: Stmt("gather", self.operands(who, handles, depth), r.random() < 0.5))
            add("wait_for", 2, lambda: Stmt("wait_for", self.operand(who, handles, depth),
                                            None if r.random() < 0.15 else "slot",
                                            r.choice(("ms", "s"))))
        add("cancel_self", 0.2, lambda: Stmt("cancel_self"))
        if not choices:
            return None
        feature, make = r.choices(choices, weights)[0]
        self.used.add(feature)
        return make()

    def set_what_is_waited_on(self, main):
        """Every Event and flag waited on is set somewhere (in the first
        main task, if nowhere else)."""
        waited, set_ = set(), set()
        bodies = [f.body for f in self.funcs.values()] + [main.body]
        while bodies:
            for s in bodies.pop():
                if s.kind in ("wait", "fwait"):
                    waited.add((s.kind == "fwait", s.args[0]))
                elif s.kind in ("set", "fset"):
                    set_.add((s.kind == "fset", s.args[0]))
                if s.body is not None:
                    bodies.append(s.body)
        for flag, i in sorted(waited - set_):
            at = self.r.randint(1, len(main.body))
            main.body.insert(at, Stmt("fset" if flag else "set", i))

    def fwait(self, who):
        self.flag_waiter[0] = who
        return Stmt("fwait", 0)

    def spawn(self, handles, depth):
        name = self.new_func(list(handles), depth)
        handles.append(name)
        return Stmt("spawn", name)

    def assign_slots(self, funcs, first):
        """Give each timed statement its own slot, from `first` on; each
        function's timers come in increasing order. Returns the next free slot."""
        timed = {}

        def walk(name, body):      # in the order they run
            for s in body:
                if s.timed():
                    timed.setdefault(name, []).append(s)
                if s.body is not None:
                    walk(name, s.body)

        for f in funcs:
            walk(f.name, f.body)
        # A main task's last sleep ("end") comes after every other timer.
        ends = [s for f in funcs for s in f.body if s.kind == "sleep" and s.args[0] == "end"]
        for stmts in timed.values():
            stmts[:] = [s for s in stmts if s not in ends]
        n = sum(len(v) for v in timed.values())
        span = n + self.r.randint(0, max(1, n // 2))
        slots = self.r.sample(range(first, first + span), n)
        for s in ends:
            s.args[0] = first + span
            span += 1
        i = 0
        for name, stmts in timed.items():
            mine = sorted(slots[i:i + len(stmts)])
            i += len(stmts)
            for s, k in zip(stmts, mine):
                if s.kind == "sleep":
                    s.args[0] = k
                else:
                    s.args[1] = k
        return first + span


def generate(seed, features=FEATURES):
    g = Gen(seed, features)
    runs = 2 if g.on("run2") and g.r.random() < 0.5 else 1
    if runs == 2:
        g.used.add("run2")
    mains = []
    slot = 1
    handles = []     # the second main may use the tasks the first one made
    for i in range(runs):
        name = "main%d" % (i + 1)
        before = set(g.funcs)
        g.budget = g.r.randint(12, 30)
        body = g.body(name, handles, 0, last=True)
        if g.on("sleep") and g.r.random() < 0.6:
            # Most mains wait for their tasks to get on before they end.
            at = len(body) - (1 if body and body[-1].kind in ("return", "raise") else 0)
            body.insert(at, Stmt("sleep", "end"))
        mine = [m for n, m in g.funcs.items() if n not in before]
        main = Func(name, body)
        slot = g.assign_slots(mine + [main], slot)
        main.body.insert(0, Stmt("watchdog", "wd%d" % (i + 1), slot))
        slot += WATCHDOG_SLOTS + 1
        mains.append(main)
    g.set_what_is_waited_on(mains[0])
    return prune(Program(g.funcs, mains, g.nevents, g.nlocks, g.nflags, g.used))


if __name__ == "__main__":
    import sys
    print(generate(int(sys.argv[1]) if len(sys.argv) > 1 else 0).render())
