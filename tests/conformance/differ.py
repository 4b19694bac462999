"""Differential testing of uasyncio.v3 against MicroPython.

Each program from gen.py runs on the reference (MICROPYTHON=path to
MicroPython's unix port) and on the package (`python3 -m uasyncio.v3`); their
outputs, with exception reprs normalised (MicroPython prints ValueError(2,)),
must be the same. A difference is confirmed by a second run of both and then
minimized: statements, blocks, task functions and the second run() are
taken away while the difference stays.

    differ.py run SEEDS [--minimize] [--save DIR] [--jobs N]
    differ.py determinism SEEDS        # each program twice on the reference
    differ.py show SEED                # the program
    differ.py minimize SEED [--save DIR]

SEEDS: "0-99", "5", "1,4,9-12". Run from anywhere; the package is the one
this file belongs to (or UA_PKG_DIR's).
"""
import argparse
import concurrent.futures
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import gen  # noqa: E402

DEFAULT_REFERENCE = os.path.join(os.path.dirname(ROOT), "shared", "micropython", "micropython")


def reference_path():
    """MICROPYTHON (made absolute), or None."""
    path = os.environ.get("MICROPYTHON")
    return os.path.abspath(path) if path else None


def reference_env():
    # Without the sanitizer runtime make asan preloads for the package.
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "PYTHONMALLOC")}


def ours_argv():
    return [os.environ.get("UA_DIFF_PYTHON", sys.executable), "-m", "uasyncio.v3"]


def ours_env():
    pkg = os.path.join(ROOT, os.environ.get("UA_PKG_DIR", ""))
    return dict(os.environ, PYTHONPATH=pkg)


# MicroPython's repr of an exception with one argument: Name(arg,).
_ONE_ARG = re.compile(r"\b([A-Za-z_]\w*)\(((?:[^()'\"]|'[^']*'|\"[^\"]*\")*),\)")


def normalise(text):
    prev = None
    while prev != text:
        prev, text = text, _ONE_ARG.sub(r"\1(\2)", text)
    return text


class Outcome:
    def __init__(self, out, rc, err):
        self.out, self.rc, self.err = out, rc, err

    def key(self):
        # A crash (signal, SystemError at exit, ...) differs from a clean exit.
        return normalise(self.out), self.rc == 0


def run_source(argv, source, timeout, env=None):
    with tempfile.TemporaryDirectory(prefix="ua-diff-") as d:
        path = os.path.join(d, "prog.py")
        with open(path, "w") as f:
            f.write(source)
        try:
            p = subprocess.run(argv + ["prog.py"], cwd=d, env=env, capture_output=True, text=True,
                               timeout=timeout, errors="replace")
            return Outcome(p.stdout, p.returncode, p.stderr)
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            return Outcome(out + "TIMEOUT\n", -1, "")   # not a signal: see reference_fault


def timeout_for(prog):
    return prog.duration_ms() / 1000 + 5


def run_both(prog, reference):
    """(reference's Outcome, ours), run at the same time."""
    src = prog.render()
    t = timeout_for(prog)
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        a = ex.submit(run_source, [reference], src, t, reference_env())
        b = ex.submit(run_source, ours_argv(), src, t, ours_env())
        return a.result(), b.result()


def differs(prog, reference, confirm=True, faulted=None):
    """None if both print the same, else (reference, ours) Outcomes. A
    difference must show twice in a row, with the reference printing the
    same both times (a slow moment on a busy machine can move a program
    across a slot). A program the reference faults on counts as the same,
    and goes to the list `faulted` if one is given."""
    a, b = run_both(prog, reference)
    if a.key() != b.key() and reference_fault(a) and faulted is not None:
        faulted.append(prog)
    if a.key() == b.key() or reference_fault(a):
        return None
    if confirm:
        a2, b2 = run_both(prog, reference)
        if a2.key() == b2.key() or a2.key() != a.key():
            return None
    return a, b


def reference_fault(a):
    """A program that trips over a fault of the reference itself, not a
    behaviour to match: a gather that refuses a task ("can't gather") after
    it registered the ones before it leaves them calling into the gather's
    half-made closure when they end (NameError inside the scheduler); a
    task whose exception was raised to its awaiter loses it once the loop
    has looked for an unretrieved exception, so a gather of it gives the
    Task itself as its result ("[<Task>]") and a second await of it kills
    the reference (by a signal)."""
    return "NameError(" in a.out or a.rc < -1 or re.search(r"gather \[[^\n]*<Task>", a.out) is not None


# ---- minimizing -------------------------------------------------------------


def candidates(prog):
    """Smaller programs: each a copy of prog with one thing taken away."""
    # The second run() as a whole.
    if len(prog.mains) > 1:
        for i in range(len(prog.mains)):
            p = gen.copy_program(prog)
            del p.mains[i]
            yield p
    # A task function, with everything that starts it.
    for name in list(prog.funcs):
        p = gen.copy_program(prog)
        del p.funcs[name]
        yield p
    # Each statement (but the watchdog); each block replaced by its body;
    # each operand of a gather.
    bodies = [b for _, b in prog.all_bodies()]
    for bi, body in enumerate(bodies):
        for si, s in enumerate(body):
            if s.kind == "watchdog":
                continue
            for unwrap in ((False, True) if s.body is not None else (False,)):
                p = gen.copy_program(prog)
                copy = [b for _, b in p.all_bodies()][bi]
                copy[si:si + 1] = copy[si].body if unwrap else []
                yield p
            if s.kind == "gather" and len(s.args[0]) > 1:
                for oi in range(len(s.args[0])):
                    p = gen.copy_program(prog)
                    del [b for _, b in p.all_bodies()][bi][si].args[0][oi]
                    yield p


def compact_slots(prog):
    """The same program with its slots renumbered 1, 2, ... in order."""
    p = gen.copy_program(prog)
    order = {k: i + 1 for i, k in enumerate(p.slots())}
    for _, body in p.all_bodies():
        for s in body:
            if s.kind == "sleep":
                s.args[0] = order[s.args[0]]
            elif s.kind == "wait_for" and s.args[1] is not None:
                s.args[1] = order[s.args[1]]
            elif s.kind == "watchdog":
                s.args[1] = order[s.args[1]]
    return p


def size(prog):
    return sum(len(b) for _, b in prog.all_bodies()) + len(prog.funcs) + len(prog.mains)


def minimize(prog, reference, log=None, jobs=2):
    """The smallest program found (greedy, to a fixed point) that still
    differs; with its (reference, ours) outcomes."""
    found = differs(prog, reference)
    if found is None:
        return None
    cand = compact_slots(prog)
    d = differs(cand, reference, confirm=False)
    if d is not None:
        prog, found = cand, d
    # Candidates in order, biggest cuts first, `jobs` at a time (the first
    # that still differs wins); after a cut, on from the same place in the
    # new list; passes until one changes nothing. Confirmed at the end.
    start, changed = 0, False
    with concurrent.futures.ThreadPoolExecutor(jobs) as ex:
        while True:
            cands = [(i, c) for i, c in enumerate(gen.prune(c) for c in candidates(prog))
                     if i >= start and size(c) < size(prog)]
            hit = None
            for b in range(0, len(cands), jobs):
                batch = cands[b:b + jobs]
                results = ex.map(lambda ic: differs(ic[1], reference, confirm=False), batch)
                hit = next(((i, c, d) for (i, c), d in zip(batch, results) if d is not None), None)
                if hit:
                    break
            if hit:
                start, prog, found = hit
                changed = True
                if log:
                    log("  smaller: %d" % size(prog))
            elif changed:
                start, changed = 0, False
            else:
                break
    confirmed = differs(prog, reference)
    return prog, confirmed or found


# ---- reports ----------------------------------------------------------------


def first_difference(a, b):
    al, bl = normalise(a.out).splitlines(), normalise(b.out).splitlines()
    for i in range(max(len(al), len(bl))):
        x = al[i] if i < len(al) else "<end>"
        y = bl[i] if i < len(bl) else "<end>"
        if x != y:
            return i + 1, x, y
    return None, "exit %d" % a.rc, "exit %d" % b.rc


def report(seed, prog, found):
    a, b = found
    line, x, y = first_difference(a, b)
    out = ["seed %s: differs at line %s: MicroPython %r, uasyncio.v3 %r" % (seed, line, x, y),
           "--- program", prog.render(),
           "--- MicroPython (exit %d)" % a.rc, normalise(a.out),
           "--- uasyncio.v3 (exit %d)" % b.rc, normalise(b.out)]
    if b.err.strip():
        out += ["--- uasyncio.v3 stderr", b.err]
    return "\n".join(out)


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part:
            lo, hi = part.split("-")
            seeds.extend(range(int(lo), int(hi) + 1))
        elif part.strip():
            seeds.append(int(part))
    return seeds


def need_reference():
    ref = reference_path()
    if not ref or not os.path.isfile(ref):
        sys.exit("differ.py: set MICROPYTHON to MicroPython's unix port (e.g. MICROPYTHON=%s)"
                 % DEFAULT_REFERENCE)
    return ref


def cmd_run(args):
    ref = need_reference()
    failed, faulted = [], []

    def one(seed):
        prog = gen.generate(seed)
        return seed, prog, differs(prog, ref, faulted=faulted)

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        for seed, prog, found in ex.map(one, parse_seeds(args.seeds)):
            if found is None:
                if args.verbose:
                    print("seed %d: same" % seed, flush=True)
                continue
            failed.append(seed)
            if args.minimize:
                m = minimize(prog, ref)
                if m is not None:
                    prog, found = m
            text = report(seed, prog, found)
            print(text if args.verbose or args.minimize else text.splitlines()[0], flush=True)
            if args.save:
                os.makedirs(args.save, exist_ok=True)
                with open(os.path.join(args.save, "seed%d.txt" % seed), "w") as f:
                    f.write(text + "\n")
    n = len(parse_seeds(args.seeds))
    print("%d of %d programs differ%s" % (len(failed), n, (": " + " ".join(map(str, failed))) if failed else ""))
    if faulted:
        print("(%d the reference faulted on: not compared)" % len(faulted))
    return 1 if failed else 0


def cmd_determinism(args):
    """Each program twice on the reference: the features of those that
    print differently (a feature is kept only if it never does)."""
    ref = need_reference()
    used, unstable = {}, {}
    bad = []

    def one(seed):
        prog = gen.generate(seed)
        src, t = prog.render(), timeout_for(prog)
        a = run_source([ref], src, t, reference_env())
        b = run_source([ref], src, t, reference_env())
        return seed, prog, a, b

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        for seed, prog, a, b in ex.map(one, parse_seeds(args.seeds)):
            for f in prog.features:
                used[f] = used.get(f, 0) + 1
            if a.key() != b.key():
                bad.append(seed)
                for f in prog.features:
                    unstable[f] = unstable.get(f, 0) + 1
                print("seed %d: the reference printed differently twice (%s)"
                      % (seed, " ".join(sorted(prog.features))), flush=True)
    for f in gen.FEATURES:
        print("%-12s in %4d programs, %d not deterministic" % (f, used.get(f, 0), unstable.get(f, 0)))
    return 1 if bad else 0


def cmd_show(args):
    print(gen.generate(args.seed).render())
    return 0


def cmd_minimize(args):
    ref = need_reference()
    m = minimize(gen.generate(args.seed), ref, log=lambda s: print(s, file=sys.stderr, flush=True))
    if m is None:
        print("seed %d: same" % args.seed)
        return 0
    text = report(args.seed, *m)
    print(text)
    if args.save:
        os.makedirs(args.save, exist_ok=True)
        with open(os.path.join(args.save, "seed%d.txt" % args.seed), "w") as f:
            f.write(text + "\n")
    return 1


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("run")
    p.add_argument("seeds")
    p.add_argument("--minimize", action="store_true")
    p.add_argument("--save")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("-v", "--verbose", action="store_true")
    p.set_defaults(fn=cmd_run)
    p = sub.add_parser("determinism")
    p.add_argument("seeds")
    p.add_argument("--jobs", type=int, default=1)
    p.set_defaults(fn=cmd_determinism)
    p = sub.add_parser("show")
    p.add_argument("seed", type=int)
    p.set_defaults(fn=cmd_show)
    p = sub.add_parser("minimize")
    p.add_argument("seed", type=int)
    p.add_argument("--save")
    p.set_defaults(fn=cmd_minimize)
    args = ap.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
