"""Sends lines to the echo server and checks what comes back:
python3 examples/echo_client.py [port] [lines]"""
import os
import sys
import sysconfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio as asyncio  # noqa: E402


async def client(port, lines):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for i in range(lines):
        line = b"line %d\n" % i
        await writer.awrite(line)
        assert await reader.readline() == line
    await writer.aclose()
    return lines


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    lines = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    n = asyncio.get_event_loop().run_until_complete(client(port, lines))
    print("%d lines echoed" % n)
