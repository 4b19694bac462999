# A TCP echo server: start_server, readline, write + drain.
# Run it with:  python3 -m uasyncio.v3 examples/v3/echo_server.py [port [clients]]
# (port 0: any free port, printed; after `clients` connections it stops.)
import sys

import uasyncio as asyncio

served = 0


async def echo(reader, writer):
    global served
    peer = writer.get_extra_info("peername")
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line)
        await writer.drain()
    writer.close()
    await writer.wait_closed()
    served += 1
    print("served", served, peer[0])
    if served == limit:
        done.set()


async def main(port):
    server = await asyncio.start_server(echo, "127.0.0.1", port)
    print("listening on", server.socket.getsockname()[1])
    async with server:
        await done.wait()


port = int(sys.argv[1]) if len(sys.argv) > 1 else 8080
limit = int(sys.argv[2]) if len(sys.argv) > 2 else -1
done = asyncio.Event()
asyncio.run(main(port))
print("stopped")
