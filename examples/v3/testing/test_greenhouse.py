"""greenhouse.py's tests, on uasyncio.v3's virtual clock: days of its
schedule run in milliseconds, in order, with the time of every pin change
known to the millisecond.

    python3 -m pytest examples/v3/testing        # the package installed
    python3 -m pytest -p uasyncio.v3.pytest_plugin examples/v3/testing   # a source tree
"""
import pytest

import uasyncio.v3 as asyncio
from greenhouse import DRY, READ_EVERY, RETRY_AFTER, WATER_EVERY, WATER_FOR, Greenhouse

HOUR = 3600
virtual = pytest.mark.uasyncio(virtual_clock=True, timeout=3 * 24 * HOUR)


class Pin:
    """machine.Pin's value(), keeping each change with the (virtual) second
    it happened at."""

    def __init__(self):
        self.state = 0
        self.changes = []

    def value(self, v=None):
        if v is None:
            return self.state
        if int(v) != self.state:
            self.state = int(v)
            self.changes.append((asyncio.get_event_loop().time() / 1000, self.state))


class Soil:
    """A moisture sensor reading the given levels in turn (an exception in
    the list is raised), then `rest` for ever."""

    def __init__(self, levels=(), rest=500):
        self.levels, self.rest = list(levels), rest

    def read(self):
        level = self.levels.pop(0) if self.levels else self.rest
        if isinstance(level, Exception):
            raise level
        return level


@pytest.fixture
async def start():
    """start(soil) runs a Greenhouse (fake pins, that soil) as a task; at
    the end of the test it is stopped, its pump checked off."""
    running = []

    async def start(soil=None):
        gh = Greenhouse(Pin(), Pin(), soil or Soil())
        running.append((gh, asyncio.create_task(gh.run())))
        await asyncio.sleep(0)
        return gh

    yield start
    for gh, task in running:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert gh.pump.state == 0


def on_times(pin):
    return [t for t, v in pin.changes if v == 1]


@virtual
async def test_it_waters_an_hour_after_each_watering_for_two_days(start):
    gh = await start()
    for day in range(2):          # (one sleep waits at most 6.2 days, as on a board)
        await asyncio.sleep(24 * HOUR)
    cycle = WATER_EVERY + WATER_FOR
    expected = [cycle * k + WATER_EVERY for k in range(2 * 24 * HOUR // cycle)]
    assert on_times(gh.pump) == expected
    assert gh.pump.changes[1] == (WATER_EVERY + WATER_FOR, 0)
    assert gh.waterings == len(expected) == 47


@virtual
async def test_the_soil_is_read_every_ten_minutes(start):
    gh = await start(Soil([510, 505, 500]))
    await asyncio.sleep(24 * HOUR - 1)
    assert len(gh.readings) == 24 * HOUR // READ_EVERY
    assert gh.readings[:4] == [510, 505, 500, 500]


@virtual
async def test_a_dry_reading_waters_at_once(start):
    gh = await start(Soil([400, 250]))    # the second reading, at 10 minutes, is dry
    await asyncio.sleep(2 * HOUR)
    assert on_times(gh.pump) == [READ_EVERY, READ_EVERY + WATER_FOR + WATER_EVERY]
    assert gh.readings[1] < DRY


@virtual
async def test_a_failing_sensor_is_read_again_after_five_seconds(start):
    gh = await start(Soil([OSError("no answer"), OSError("no answer"), 480]))
    await asyncio.sleep(2 * RETRY_AFTER - 0.001)
    assert gh.read_errors == 2 and gh.readings == []
    await asyncio.sleep(0.001)
    assert gh.readings == [480]


@virtual
async def test_the_button_waters_now_but_not_twice(start):
    gh = await start()
    await asyncio.sleep(100)
    gh.press_button()
    gh.press_button()
    await asyncio.sleep(10)
    gh.press_button()        # while watering: taken as done by this watering
    await asyncio.sleep(60)
    assert gh.pump.changes == [(100, 1), (100 + WATER_FOR, 0)]


@virtual
async def test_the_heartbeat_blinks_every_second(start):
    gh = await start()
    await asyncio.sleep(10.5)
    assert len(gh.led.changes) == 11
    assert gh.led.changes[:3] == [(0, 1), (1, 0), (2, 1)]


@virtual
async def test_stopping_while_watering_turns_the_pump_off(start):
    gh = await start(Soil([100]))
    await asyncio.sleep(WATER_FOR / 2)
    assert gh.pump.state == 1
    # The fixture cancels it at the end, and checks the pump is off.
