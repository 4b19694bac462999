# An HTTP/1.0 client: open_connection, write + drain, readline, read to the end.
# Run it with:  python3 -m uasyncio.v3 examples/v3/http_client.py host port [path]
import sys

import uasyncio as asyncio


async def get(host, port, path):
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(b"GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))
    await writer.drain()
    status = await reader.readline()
    headers = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b""):
            break
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.read(-1)   # to the end of the stream
    writer.close()
    await writer.wait_closed()
    return status, headers, body


async def main():
    host, port = sys.argv[1], int(sys.argv[2])
    path = sys.argv[3] if len(sys.argv) > 3 else "/"
    try:
        status, headers, body = await asyncio.wait_for(get(host, port, path), 10)
    except asyncio.TimeoutError:
        print("timed out")
        return
    print(status.decode().strip())
    print("content-type:", headers.get("content-type"))
    print("body:", len(body), "bytes")
    print(body.decode().strip().splitlines()[0] if body else "")


asyncio.run(main())
