# gather() with timeouts: several sensors read at once, each in its own task;
# a slow one times out without holding up the others.
# Run it with:  python3 -m uasyncio.v3 examples/v3/gather_timeouts.py
import uasyncio as asyncio


async def sensor(name, delay_ms, value):
    await asyncio.sleep_ms(delay_ms)
    if value is None:
        raise ValueError(name + " failed")
    return name, value


async def read_with_timeout(name, delay_ms, value, timeout_ms):
    try:
        return await asyncio.wait_for_ms(sensor(name, delay_ms, value), timeout_ms)
    except asyncio.TimeoutError:
        return name, "timeout"


async def main():
    results = await asyncio.gather(
        read_with_timeout("temperature", 20, 21.5, 200),
        read_with_timeout("humidity", 40, 48, 200),
        read_with_timeout("pressure", 5000, 1013, 100),   # too slow
    )
    for name, value in results:
        print(name, value)

    # return_exceptions: a failing sensor is reported, the rest still arrive.
    results = await asyncio.gather(sensor("light", 10, 300), sensor("wind", 10, None),
                                   return_exceptions=True)
    for r in results:
        print(type(r).__name__ if isinstance(r, Exception) else r)

    # A timeout around the whole gather cancels what is still running.
    try:
        await asyncio.wait_for(asyncio.gather(sensor("a", 10, 1), sensor("b", 5000, 2)), 0.2)
    except asyncio.TimeoutError:
        print("gather timed out")


asyncio.run(main())
