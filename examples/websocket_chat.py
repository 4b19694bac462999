"""A web page and a WebSocket chat on one port, on uasyncio's own HTTP
handling: GET / serves examples/web/index.html, /ws is the chat (every
message goes to everyone), /echo sends each message back as it came.

    python3 examples/websocket_chat.py [--port 8080]   then open http://127.0.0.1:8080/

With --report, lines the page sends as "REPORT ..." (its ?test=1 self-test)
are printed on stdout, and the port is printed once listening.
"""
import argparse
import os
import sys
import sysconfig

HERE = os.path.dirname(os.path.abspath(__file__))
if os.path.exists(os.path.join(HERE, "..", "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, os.path.join(HERE, ".."))
import uasyncio as asyncio  # noqa: E402
from uasyncio.websocket.server import WSReader, WSWriter  # noqa: E402

PAGE = open(os.path.join(HERE, "web", "index.html"), "rb").read()
clients = set()
report = False


async def chat(ws):
    clients.add(ws)
    try:
        while True:
            msg = await ws.recv()
            if msg is None:
                break
            if isinstance(msg, str) and msg.startswith("REPORT"):
                if report:
                    print(msg, flush=True)
                continue
            for other in list(clients):
                try:
                    await other.send(msg)
                except OSError:
                    clients.discard(other)
    finally:
        clients.discard(ws)


async def echo(ws):
    while True:
        msg = await ws.recv()
        if msg is None:
            break
        await ws.send(msg)


async def serve(reader, writer):
    try:
        request = await reader.readline()
        parts = request.split()
        path = parts[1].decode() if len(parts) > 1 else "/"
        if path in ("/ws", "/echo"):
            ws = await WSReader(reader, writer)
            WSWriter(ws, writer)   # the same object writes
            await (chat(ws) if path == "/ws" else echo(ws))
            await ws.aclose()
            return
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        if path.split("?")[0] == "/":
            head = b"HTTP/1.0 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
            body = PAGE
        else:
            head, body = b"HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n", b"not found\n"
        await writer.awrite(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    except (OSError, ValueError):
        pass
    await writer.aclose()


def main():
    global report
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8080)
    p.add_argument("--report", action="store_true")
    args = p.parse_args()
    report = args.report
    loop = asyncio.get_event_loop()
    server = asyncio.start_server(serve, "127.0.0.1", args.port)
    loop.create_task(server)
    loop.run_until_complete(asyncio.sleep_ms(1))
    print("listening on http://127.0.0.1:%d/" % server.socket.getsockname()[1], flush=True)
    loop.run_forever()


if __name__ == "__main__":
    main()
