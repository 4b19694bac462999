#!/usr/bin/env python3
"""The benchmark servers on asyncio streams (start_server, readline,
write + drain), on asyncio's own loop or on uvloop (same code).

    python3 asyncio_server.py echo|http PORT [--loop asyncio|uvloop] [--cpu N] [--backlog N]
                              [--stats-port N]
"""

import common

args = common.setup(__doc__.split("\n\n")[0], [
    (("--loop",), dict(choices=("asyncio", "uvloop"), default="asyncio",
                       help="event loop (default asyncio)")),
])

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


async def main():
    server = await asyncio.start_server(echo if args.mode == "echo" else http,
                                        common.HOST, args.port, backlog=args.backlog)
    if args.stats_port is not None:
        await asyncio.start_server(stats, common.HOST, args.stats_port)
    async with server:
        await server.serve_forever()


if args.loop == "uvloop":
    import uvloop
    loop = uvloop.new_event_loop()
else:
    loop = asyncio.new_event_loop()
asyncio.set_event_loop(loop)
loop.run_until_complete(main())
