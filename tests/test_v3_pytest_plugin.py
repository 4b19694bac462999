"""The pytest plugin (uasyncio.v3.pytest_plugin), through small suites run by
pytester: marked async tests pass and fail, the virtual clock, timeouts
(virtual and real), tasks left pending and exceptions nobody retrieved,
async fixtures, and pytest-asyncio (strict mode) in the same session."""
import re
import textwrap

import pytest

pytest_plugins = ["pytester"]


def run(pytester, source, *args, ini=None):
    """Run `source` (dedented) as a test module with the plugin; the result."""
    pytester.makepyfile(test_it=textwrap.dedent(source))
    if ini:
        pytester.makeini("[pytest]\n" + textwrap.dedent(ini))
    return pytester.runpytest("-p", "uasyncio.v3.pytest_plugin", *args)


def text(result):
    return "\n".join(result.outlines + result.errlines)


def test_a_marked_async_test_passes_or_fails_on_its_own_v3_loop(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        loops = []

        @pytest.mark.uasyncio
        async def test_passes():
            loops.append(asyncio.get_event_loop())
            await asyncio.sleep_ms(1)
            assert asyncio.current_task() is not None

        @pytest.mark.uasyncio
        async def test_again_on_a_new_loop():
            loop = asyncio.get_event_loop()
            assert type(loop) is asyncio.Loop and loop is not loops[0]

        @pytest.mark.uasyncio
        async def test_fails():
            await asyncio.sleep(0)
            assert 1 + 1 == 3

        @pytest.mark.uasyncio
        async def test_raises():
            async def inner():
                raise KeyError("from a task")
            await asyncio.create_task(inner())
    """)
    r.assert_outcomes(passed=2, failed=2)
    out = text(r)
    assert "assert (1 + 1) == 3" in out
    assert "KeyError: 'from a task'" in out
    assert "pytest_plugin.py" not in out   # its frames are hidden from the tracebacks


def test_the_marker_is_registered(pytester):
    r = run(pytester, """
        import pytest

        @pytest.mark.uasyncio(virtual_clock=True, timeout=5)
        async def test_ok():
            pass
    """, "--strict-markers")
    r.assert_outcomes(passed=1)
    r = pytester.runpytest("-p", "uasyncio.v3.pytest_plugin", "--markers")
    assert "@pytest.mark.uasyncio(virtual_clock=False, timeout=None)" in text(r)


def test_an_hourly_schedule_over_a_virtual_day(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_a_day(uasyncio_loop):
            seen = []

            async def hourly():
                while True:
                    await asyncio.sleep(3600)
                    seen.append(uasyncio_loop.time() // 1000)

            t = asyncio.create_task(hourly())
            await asyncio.sleep(24 * 3600 + 1)
            t.cancel()
            assert seen == [3600 * h for h in range(1, 25)]
            assert uasyncio_loop.time() == (24 * 3600 + 1) * 1000
    """)
    r.assert_outcomes(passed=1)


def test_a_timeout_on_the_virtual_clock_says_where_the_test_waits(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.mark.uasyncio(virtual_clock=True, timeout=90)
        async def test_slow():
            await asyncio.sleep(60)
            await asyncio.sleep(3600)
    """)
    r.assert_outcomes(failed=1)
    out = text(r)
    assert "the test did not end within 90 s of virtual time" in out
    assert re.search(r"it waits at test_it.py:7 in test_slow on <SleepMs 3600000 ms>", out), out


def test_a_timeout_on_the_real_clock(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.mark.uasyncio(timeout=0.2)
        async def test_never_ends():
            await asyncio.Event().wait()
    """)
    r.assert_outcomes(failed=1)
    out = text(r)
    assert "the test did not end within 0.2 s" in out and "of virtual time" not in out
    assert "in test_never_ends on <Wait Event.wait" in out


def test_an_async_fixture_that_does_not_end_is_an_error_saying_where_it_waits(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.fixture
        async def device():
            await asyncio.Event().wait()
            yield

        @pytest.mark.uasyncio(virtual_clock=True, timeout=5)
        async def test_it(device):
            pass
    """)
    r.assert_outcomes(errors=1)
    out = text(r)
    assert "fixture 'device' did not end within 5 s of virtual time" in out
    assert "it waits at test_it.py:6 in device on <Wait Event.wait" in out


def test_a_virtual_test_that_nothing_can_wake_fails_at_once(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_stuck():
            lock = asyncio.Lock()
            await lock.acquire()
            await lock.acquire()
    """)
    r.assert_outcomes(failed=1)
    assert "every task still waits" in text(r)


def test_a_virtual_test_that_never_waits_meets_the_real_time_limit(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_spins():
            while True:
                await asyncio.sleep(0)
    """, ini="uasyncio_timeout = 0.3")
    r.assert_outcomes(failed=1)
    assert "did not end within 0.3 s of real time" in text(r)


def test_tasks_left_pending_fail_the_test_and_are_named(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        async def forever(ev):
            await ev.wait()

        @pytest.mark.uasyncio
        async def test_leaves_one():
            asyncio.create_task(forever(asyncio.Event()))
            await asyncio.sleep(0)

        @pytest.mark.uasyncio
        async def test_cleans_up():
            t = asyncio.create_task(forever(asyncio.Event()))
            await asyncio.sleep(0)
            t.cancel()
    """)
    r.assert_outcomes(passed=1, failed=1)
    out = text(r)
    assert "the test left 1 task pending:" in out
    assert re.search(r"<Task pending coro=<coroutine object forever .*> at test_it.py:5 in forever "
                     r"on <Wait Event.wait", out), out
    assert "test_cleans_up" not in out.split("short test summary")[0]


def test_an_exception_nobody_retrieved_fails_the_test(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        async def boom():
            raise ValueError("nobody heard")

        @pytest.mark.uasyncio
        async def test_ignores_its_task():
            asyncio.create_task(boom())
            await asyncio.sleep(0)

        @pytest.mark.uasyncio
        async def test_the_task_ends_as_the_test_does():
            asyncio.create_task(boom())

        @pytest.mark.uasyncio
        async def test_awaits_it():
            with pytest.raises(ValueError):
                await asyncio.create_task(boom())
    """)
    r.assert_outcomes(passed=1, failed=2)
    out = text(r)
    assert out.count("1 exception reached the loop's exception handler during the test:") == 2, out
    assert "Task exception wasn't retrieved" in out and "ValueError: nobody heard" in out


def test_async_fixtures_run_on_the_test_loop_and_tear_down_in_order(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        log = []

        @pytest.fixture
        async def value():
            await asyncio.sleep(0)
            log.append("value")
            return 42

        @pytest.fixture
        async def server(value):
            loop = asyncio.get_event_loop()
            stop = asyncio.Event()

            async def serve():
                await stop.wait()
                log.append("served")

            t = asyncio.create_task(serve())
            log.append("server up")
            yield loop, value
            stop.set()
            await t
            log.append("server down")

        @pytest.mark.uasyncio
        async def test_uses_them(server, uasyncio_loop):
            loop, value = server
            assert loop is asyncio.get_event_loop() is uasyncio_loop
            assert value == 42
            log.append("test")

        class TestInAClass:
            @pytest.fixture
            async def mine(self):
                return self

            @pytest.mark.uasyncio
            async def test_method(self, mine):
                assert mine is self

        def test_order():
            assert log == ["value", "server up", "test", "served", "server down"]
    """)
    r.assert_outcomes(passed=3)


def test_an_async_fixture_in_a_virtual_test_sees_the_virtual_clock(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.fixture
        async def an_hour_later():
            await asyncio.sleep(3600)
            yield asyncio.get_event_loop().time()
            await asyncio.sleep(3600)

        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_it(an_hour_later, uasyncio_loop):
            assert an_hour_later == 3600_000
            await asyncio.sleep(60)
            assert uasyncio_loop.time() == 3660_000
    """)
    r.assert_outcomes(passed=1)


def test_what_a_fixture_leaves_behind_is_a_teardown_error(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.fixture
        async def sloppy():
            yield
            asyncio.create_task(asyncio.Event().wait())

        @pytest.mark.uasyncio
        async def test_fine(sloppy):
            pass
    """)
    r.assert_outcomes(passed=1, errors=1)
    assert "the test and its fixtures left 1 task pending:" in text(r)


def test_tasks_an_async_generator_fixture_stops_are_not_the_tests_leftovers(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.fixture
        async def spawn():
            tasks = []

            def spawn(coro):
                tasks.append(asyncio.create_task(coro))
            yield spawn
            for t in tasks:
                t.cancel()

        @pytest.mark.uasyncio
        async def test_the_fixture_owns_them(spawn):
            spawn(asyncio.Event().wait())
            spawn(asyncio.sleep(60))
            await asyncio.sleep(0)

        @pytest.mark.uasyncio
        async def test_but_not_this_one(spawn):
            spawn(asyncio.sleep(60))
            asyncio.create_task(asyncio.Event().wait())
    """)
    r.assert_outcomes(passed=2, errors=1)
    out = text(r)
    assert "ERROR at teardown of test_but_not_this_one" in out
    assert "the test and its fixtures left 1 task pending:" in out


def test_async_fixture_errors_are_plain_errors(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        @pytest.fixture
        async def broken():
            await asyncio.sleep(0)
            raise OSError("no device")

        @pytest.fixture
        async def twice():
            yield 1
            yield 2

        @pytest.fixture(scope="module")
        async def wide():
            return 1

        @pytest.mark.uasyncio
        async def test_broken(broken):
            pass

        @pytest.mark.uasyncio
        async def test_twice(twice):
            pass

        @pytest.mark.uasyncio
        async def test_wide(wide):
            pass
    """)
    r.assert_outcomes(passed=1, errors=3)
    out = text(r)
    assert "OSError: no device" in out
    assert "async fixture 'twice' yields more than once" in out
    assert "async fixture 'wide' has scope 'module'" in out


def test_the_marker_may_mark_a_whole_module_and_merges_its_options(pytester):
    r = run(pytester, """
        import pytest
        import uasyncio.v3 as asyncio

        pytestmark = pytest.mark.uasyncio(virtual_clock=True)

        @pytest.mark.uasyncio(timeout=7200)
        async def test_both(uasyncio_loop):
            await asyncio.sleep(3600)
            assert uasyncio_loop.time() == 3600_000

        def test_a_plain_function_still_runs():
            assert True
    """)
    r.assert_outcomes(passed=2)


def test_bad_marker_arguments_are_reported(pytester):
    r = run(pytester, """
        import pytest

        @pytest.mark.uasyncio(True)
        async def test_positional():
            pass

        @pytest.mark.uasyncio(virtual=True)
        async def test_unknown():
            pass

        @pytest.mark.uasyncio(timeout=-1)
        async def test_negative():
            pass
    """)
    r.assert_outcomes(errors=3)
    out = text(r)
    assert out.count("takes only the keyword arguments virtual_clock, timeout") == 2
    assert "uasyncio timeout must be a number of seconds > 0, not -1" in out


def test_unmarked_tests_and_fixtures_are_left_alone(pytester):
    r = run(pytester, """
        import pytest

        @pytest.fixture
        async def coro_fixture():
            return 1

        def test_sync_test_gets_the_coroutine_object(coro_fixture):
            assert type(coro_fixture).__name__ == "coroutine"
            coro_fixture.close()
    """)
    r.assert_outcomes(passed=1)


def test_hypothesis_examples_each_run_on_the_loop(pytester):
    r = run(pytester, """
        import pytest
        from hypothesis import given, settings, strategies as st
        import uasyncio.v3 as asyncio

        @settings(max_examples=20, deadline=None)
        @given(st.integers(0, 1000))
        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_sleep_ms(ms):
            loop = asyncio.get_event_loop()
            t0 = loop.time()
            await asyncio.sleep_ms(ms)
            assert loop.time() - t0 == ms
    """)
    r.assert_outcomes(passed=1)


def test_it_coexists_with_pytest_asyncio_in_strict_mode(pytester):
    import pytest_asyncio  # noqa: F401 - a test dependency (scripts/install-deps.sh test)
    r = run(pytester, """
        import asyncio
        import pytest
        import pytest_asyncio
        import uasyncio.v3 as v3

        @pytest_asyncio.fixture
        async def cpython_fixture():
            await asyncio.sleep(0)
            yield asyncio.get_running_loop()

        @pytest.fixture
        async def ours():
            await v3.sleep(0)
            return v3.get_event_loop()

        @pytest.mark.asyncio
        async def test_on_cpython(cpython_fixture):
            assert asyncio.get_running_loop() is cpython_fixture
            await asyncio.sleep(0.001)

        @pytest.mark.uasyncio
        async def test_on_ours(ours):
            assert v3.get_event_loop() is ours
            assert type(ours) is v3.Loop
            await v3.sleep_ms(1)

        @pytest.mark.uasyncio(virtual_clock=True)
        async def test_on_ours_virtual():
            await v3.sleep(3600)

        @pytest.mark.asyncio
        async def test_cpython_again():
            await asyncio.sleep(0)

        @pytest.mark.asyncio
        @pytest.mark.uasyncio
        async def test_both_marks():
            pass
    """, "--asyncio-mode=strict")
    r.assert_outcomes(passed=4, errors=1)
    out = text(r)
    assert re.search(r"asyncio: mode=(Mode\.)?strict", out, re.I), out
    assert "is marked both uasyncio and asyncio" in out
