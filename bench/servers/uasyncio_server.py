#!/usr/bin/env python3
"""The benchmark servers on uasyncio streams (start_server, readline, awrite).

    python3 uasyncio_server.py echo|http PORT [--cpu N] [--backlog N] [--stats-port N]

Written the way uasyncio 2.0 programs are: schedule start_server() on the
loop and run_forever().
"""

import common

args = common.setup(__doc__.split("\n\n")[0])

import uasyncio  # noqa: E402  (after setup(): the in-tree build comes first)

RESPONSE = common.RESPONSE
errors = common.Errors()


async def echo(reader, writer):
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            await writer.awrite(line)
    except OSError as e:
        errors.report("echo", e)
    await writer.aclose()


async def http(reader, writer):
    try:
        if await reader.readline():                # the request line
            while True:                            # headers, up to the blank line
                line = await reader.readline()
                if not line or line == b"\r\n" or line == b"\n":
                    break
            await writer.awrite(RESPONSE)
    except OSError as e:
        errors.report("http", e)
    await writer.aclose()


async def stats(reader, writer):
    try:
        await writer.awrite(common.mem_stats(errors))
    except OSError:
        pass
    await writer.aclose()


loop = uasyncio.get_event_loop()
loop.create_task(uasyncio.start_server(echo if args.mode == "echo" else http,
                                       common.HOST, args.port, backlog=args.backlog))
if args.stats_port is not None:
    loop.create_task(uasyncio.start_server(stats, common.HOST, args.stats_port))
loop.run_forever()
