#!/usr/bin/env python3
"""The benchmark servers written once against the asyncio API (asyncio.run,
start_server, readline, write + drain), run on CPython's asyncio, on uvloop,
or on uasyncio.v3 (the same code).

    python3 asyncio_server.py echo|http PORT [--loop asyncio|uvloop|v3] [--cpu N] [--backlog N]
                              [--stats-port N]
"""

import common

args = common.setup(__doc__.split("\n\n")[0], [
    (("--loop",), dict(choices=("asyncio", "uvloop", "v3"), default="asyncio",
                       help="event loop (default asyncio; v3: uasyncio.v3)")),
])

if args.loop == "v3":
    import uasyncio.v3 as asyncio
else:
    import asyncio  # noqa: E402

RESPONSE = common.RESPONSE
errors = common.Errors()


async def echo(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            writer.write(line)
            await writer.drain()
    except OSError as e:
        errors.report("echo", e)
    writer.close()
    await writer.wait_closed()


async def http(reader, writer):
    try:
        if await reader.readline():                # the request line
            while True:                            # headers, up to the blank line
                line = await reader.readline()
                if not line or line == b"\r\n" or line == b"\n":
                    break
            writer.write(RESPONSE)
            await writer.drain()
        writer.close()
        await writer.wait_closed()
    except OSError as e:
        errors.report("http", e)
        writer.close()


async def stats(reader, writer):
    try:
        writer.write(common.mem_stats(errors))
        await writer.drain()
    except OSError:
        pass
    writer.close()
    await writer.wait_closed()


async def main():
    server = await asyncio.start_server(echo if args.mode == "echo" else http,
                                        common.HOST, args.port, backlog=args.backlog)
    if args.stats_port is not None:
        await asyncio.start_server(stats, common.HOST, args.stats_port)
    async with server:
        await asyncio.Event().wait()   # serve until killed


if args.loop == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
