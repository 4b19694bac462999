"""An HTTP/1.0 server that answers "Hello" (as uasyncio's own example):
python3 examples/http_server.py [port]      then: curl http://127.0.0.1:8081/"""
import os
import sys
import sysconfig

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio as asyncio  # noqa: E402

RESPONSE = (b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nHello")


async def serve(reader, writer):
    try:
        await reader.readline()                 # request line
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass                                # headers
        await writer.awrite(RESPONSE)
    except OSError:
        pass
    await writer.aclose()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    loop = asyncio.get_event_loop()
    loop.create_task(asyncio.start_server(serve, "127.0.0.1", port, backlog=128))
    print("HTTP server on http://127.0.0.1:%d/" % port)
    loop.run_forever()
