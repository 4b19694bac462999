# Blinking LEDs, a button and an interrupt, as one writes it for a board:
# each LED is a task, the "button" is an Event, and the "interrupt" comes from
# another thread (on a board: an IRQ handler) through a ThreadSafeFlag.
# Run it with:  python3 -m uasyncio.v3 examples/v3/blink.py
import _thread
import time

import uasyncio as asyncio
from micropython import const

FAST_MS = const(50)
SLOW_MS = const(120)


class LED:
    def __init__(self, name):
        self.name = name
        self.state = 0
        self.toggles = 0

    def toggle(self):
        self.state ^= 1
        self.toggles += 1


async def blink(led, period_ms, stop):
    while not stop.is_set():
        led.toggle()
        await asyncio.sleep_ms(period_ms)


async def button(pressed):
    await asyncio.sleep_ms(300)   # someone presses it after a while
    print("button pressed")
    pressed.set()


def irq_thread(flag, count):
    # On a board this is a pin interrupt; ThreadSafeFlag.set() is safe there.
    for _ in range(count):
        time.sleep_ms(40)
        flag.set()


async def irq_handler(flag, count):
    for i in range(count):
        await flag.wait()
        print("interrupt", i)


async def main():
    stop = asyncio.Event()
    leds = [LED("red"), LED("green")]
    tasks = [asyncio.create_task(blink(leds[0], FAST_MS, stop)),
             asyncio.create_task(blink(leds[1], SLOW_MS, stop))]
    flag = asyncio.ThreadSafeFlag()
    irqs = asyncio.create_task(irq_handler(flag, 3))
    _thread.start_new_thread(irq_thread, (flag, 3))
    await button(stop)          # the button stops the blinking
    await asyncio.gather(*tasks)
    await irqs
    for led in leds:
        print(led.name, "blinked", "yes" if led.toggles >= 2 else "no")
    print("done")


asyncio.run(main())
