# The uasyncio.v3 half of `make demo`, written as one writes for a board today:
# an echo server (start_server, readline, write + drain) with 50 clients
# (open_connection) checking every line, sensors read with gather and
# wait_for_ms (one times out), and a ThreadSafeFlag set from a thread.
# Prints what happened and exits.
# Run it with:  python3 -m uasyncio.v3 examples/v3/demo.py
import _thread
import sys
import time

import uasyncio as asyncio

CLIENTS, LINES = 50, 200


async def echo(reader, writer):
    while line := await reader.readline():
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def client(port, n):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    bad = 0
    for i in range(LINES):
        line = b"client %d line %d\n" % (n, i)
        writer.write(line)
        await writer.drain()
        bad += await reader.readline() != line
    writer.close()
    await writer.wait_closed()
    return bad


async def sensor(delay_ms, value):
    await asyncio.sleep_ms(delay_ms)
    return value


async def read(delay_ms, value):
    try:
        return await asyncio.wait_for_ms(sensor(delay_ms, value), 100)
    except asyncio.TimeoutError:
        return "timeout"


def button(flag):
    time.sleep_ms(50)   # another thread, as an interrupt handler would be
    flag.set()


async def main():
    server = await asyncio.start_server(echo, "127.0.0.1", 0, backlog=CLIENTS)
    port = server.socket.getsockname()[1]
    print("v3 echo server on 127.0.0.1:%d" % port)
    t0 = time.ticks_ms()
    bad = sum(await asyncio.gather(*(client(port, n) for n in range(CLIENTS))))
    ms = max(time.ticks_diff(time.ticks_ms(), t0), 1)
    print("%d echo round trips by %d clients: %.0f/s, %d wrong"
          % (CLIENTS * LINES, CLIENTS, CLIENTS * LINES * 1000 / ms, bad))
    server.close()
    await server.wait_closed()

    readings = await asyncio.gather(read(10, 21.5), read(30, 48), read(500, 1013))
    print("sensors:", readings)

    flag = asyncio.ThreadSafeFlag()
    _thread.start_new_thread(button, (flag,))
    await asyncio.wait_for(flag.wait(), 5)
    print("button pressed (a ThreadSafeFlag set from another thread)")
    return bad == 0 and readings == [21.5, 48, "timeout"]


ok = asyncio.run(main())
print("errors: 0" if ok else "errors: some")
sys.exit(0 if ok else 1)
