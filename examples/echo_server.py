"""A line echo server: python3 examples/echo_server.py [port]"""
import os
import sys
import sysconfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio as asyncio  # noqa: E402


async def echo(reader, writer):
    peer = writer.get_extra_info("peername")
    try:
        while True:
            line = await reader.readline()
            if not line:
                break
            await writer.awrite(line)
    except OSError as e:
        print("connection from %s: %s" % (peer, e))
    await writer.aclose()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    loop = asyncio.get_event_loop()
    loop.create_task(asyncio.start_server(echo, "127.0.0.1", port))
    print("echo server on 127.0.0.1:%d" % port)
    loop.run_forever()
