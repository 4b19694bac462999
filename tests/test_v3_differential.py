"""Random v3 programs (tests/conformance/gen.py: tasks, sleeps, Event, Lock,
ThreadSafeFlag, gather, wait_for, cancellation, exceptions, run() twice)
print on uasyncio.v3 what they print on MicroPython.

The reference is MicroPython's unix port, MICROPYTHON=path (the Makefile
points it at ../shared/micropython/micropython when that exists). Without
it these tests skip, except under CI (CI=true), where they fail.
UA_DIFF_SEEDS picks the programs ("0-59", "3,17,40-45"). A failing seed's
program, minimized: tests/conformance/differ.py minimize SEED.
"""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "conformance"))

import differ  # noqa: E402
import gen  # noqa: E402

SEEDS = differ.parse_seeds(os.environ.get("UA_DIFF_SEEDS", "0-119"))


@pytest.fixture(scope="module")
def reference():
    path = differ.reference_path()
    if path and os.path.isfile(path):
        return path
    why = "MICROPYTHON=%s: not a file" % path if path else \
        "MICROPYTHON is not set (MicroPython's unix port, e.g. %s)" % differ.DEFAULT_REFERENCE
    if path or os.environ.get("CI") == "true":
        pytest.fail(why)
    pytest.skip(why)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_program_prints_what_micropython_prints(reference, seed):
    prog = gen.generate(seed)
    found = differ.differs(prog, reference)
    assert found is None, differ.report(seed, prog, found)


def test_exception_reprs_are_compared_without_micropythons_comma():
    assert differ.normalise("x [ValueError(2,), KeyError('a',)] RuntimeError(\"can't\",) (1,) E(1, 2)") == \
        "x [ValueError(2), KeyError('a')] RuntimeError(\"can't\") (1,) E(1, 2)"


def test_generated_programs_are_the_same_for_a_seed_and_well_formed():
    for seed in range(40):
        src = gen.generate(seed).render()
        assert src == gen.generate(seed).render()
        compile(src, "prog.py", "exec")


def test_minimizing_keeps_programs_well_formed():
    # Every candidate the minimizer tries still compiles and starts only
    # task functions it defines.
    prog = gen.generate(7)
    for cand in differ.candidates(prog):
        cand = gen.prune(cand)
        src = cand.render()
        compile(src, "prog.py", "exec")
        for _, body in cand.all_bodies():
            for s in body:
                assert all(n in cand.funcs for n in gen.started(s))
