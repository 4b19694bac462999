# A greenhouse controller, written as for a board: a heartbeat LED, the
# soil's moisture read every 10 minutes (a failing read is retried after
# 5 s), and a pump that waters for 30 s an hour after it last watered, or
# at once when the soil reads dry or the button is pressed.
#
# On a board (MicroPython v1.21 and later), main() drives real pins. On a
# desktop, test_greenhouse.py runs it against fake pins on the virtual
# clock: a day of its schedule takes milliseconds.
try:
    import uasyncio.v3 as asyncio   # CPython, with this package
except ImportError:
    import asyncio                  # the board

HEARTBEAT_MS = 1000
READ_EVERY = 600        # seconds between soil readings
RETRY_AFTER = 5         # seconds before a failed reading is tried again
WATER_EVERY = 3600      # seconds from the end of one watering to the next
WATER_FOR = 30          # seconds the pump runs
DRY = 300               # a reading below this waters at once


class Greenhouse:
    """led and pump: machine.Pin-like (value()); soil: read() -> int,
    raising OSError when the sensor does not answer."""

    def __init__(self, led, pump, soil):
        self.led, self.pump, self.soil = led, pump, soil
        self.readings = []
        self.read_errors = 0
        self.waterings = 0
        self.water_now = asyncio.Event()   # the button, or a dry reading

    def press_button(self):
        self.water_now.set()

    async def heartbeat(self):
        while True:
            self.led.value(not self.led.value())
            await asyncio.sleep_ms(HEARTBEAT_MS)

    async def watch_soil(self):
        while True:
            try:
                level = self.soil.read()
            except OSError:
                self.read_errors += 1
                await asyncio.sleep(RETRY_AFTER)
                continue
            self.readings.append(level)
            if level < DRY:
                self.water_now.set()
            await asyncio.sleep(READ_EVERY)

    async def water(self):
        while True:
            try:
                await asyncio.wait_for(self.water_now.wait(), WATER_EVERY)
            except asyncio.TimeoutError:
                pass
            self.pump.value(1)
            try:
                await asyncio.sleep(WATER_FOR)
            finally:
                self.pump.value(0)   # never left on, even when cancelled
            self.water_now.clear()   # a press while watering asked for this one
            self.waterings += 1

    async def run(self):
        await asyncio.gather(self.heartbeat(), self.watch_soil(), self.water())


def main():
    from machine import ADC, Pin

    class Soil:
        def __init__(self, adc):
            self.adc = adc

        def read(self):
            return self.adc.read_u16() >> 6   # 0..1023

    greenhouse = Greenhouse(Pin("LED", Pin.OUT), Pin(15, Pin.OUT, value=0), Soil(ADC(26)))
    asyncio.run(greenhouse.run())


if __name__ == "__main__":
    main()
