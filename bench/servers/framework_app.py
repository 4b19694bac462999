#!/usr/bin/env python3
"""An HTTP/1.1 application of the kind small web frameworks run (microdot's
shape): the request line and headers parsed in Python, a router with path
parameters, `async def` handlers called directly and plain `def` handlers
through the loop's default executor (`run_in_executor(None, ...)`), and
keep-alive when the client asks for it. Written against the asyncio API,
run on CPython's asyncio, on uvloop, or on uasyncio.v3 (the same code).

    python3 framework_app.py http PORT [--loop asyncio|uvloop|v3] [--cpu N] [--backlog N]

Routes: GET /hello/<name> (async def), GET /sync/hello/<name> (def), both
answering "Hello, <name>!"; anything else: 404.
"""

import inspect

import common

args = common.setup(__doc__.split("\n\n")[0], [
    (("--loop",), dict(choices=("asyncio", "uvloop", "v3"), default="asyncio",
                       help="event loop (default asyncio; v3: uasyncio.v3)")),
])

if args.loop == "v3":
    import uasyncio.v3 as asyncio
else:
    import asyncio  # noqa: E402

errors = common.Errors()
REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 500: "Internal Server Error"}


class Request:
    __slots__ = ("method", "path", "query", "version", "headers", "body", "params")

    @classmethod
    async def read(cls, reader):
        """The next request on the connection, or None at its end."""
        line = await reader.readline()
        if not line:
            return None
        req = cls()
        try:
            method, target, version = line.decode("latin-1").split()
        except ValueError:
            raise ValueError("bad request line %r" % line) from None
        req.method, req.version = method, version
        req.path, _, req.query = target.partition("?")
        req.headers = {}
        while True:
            line = await reader.readline()
            if not line or line == b"\r\n" or line == b"\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            req.headers[name.strip().lower()] = value.strip()
        n = int(req.headers.get("content-length", 0))
        req.body = await reader.readexactly(n) if n else b""
        req.params = {}
        return req

    def keep_alive(self):
        conn = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.1":
            return conn != "close"
        return conn == "keep-alive"


class App:
    def __init__(self):
        self.routes = []   # (method, path segments, handler, is async def)

    def route(self, path, method="GET"):
        def add(handler):
            self.routes.append((method, path.strip("/").split("/"), handler,
                                inspect.iscoroutinefunction(handler)))
            return handler
        return add

    def match(self, req):
        parts = req.path.strip("/").split("/")
        for method, pattern, handler, is_async in self.routes:
            if method != req.method or len(pattern) != len(parts):
                continue
            params = {}
            for want, got in zip(pattern, parts):
                if want.startswith("<") and want.endswith(">"):
                    params[want[1:-1]] = got
                elif want != got:
                    break
            else:
                req.params = params
                return handler, is_async
        return None, False

    async def dispatch(self, req):
        handler, is_async = self.match(req)
        if handler is None:
            return 404, "Not found"
        if is_async:
            return 200, await handler(req)
        # A plain function: off the loop's thread, as CPython frameworks do.
        loop = asyncio.get_running_loop()
        return 200, await loop.run_in_executor(None, handler, req)

    async def serve(self, reader, writer):
        try:
            while True:
                try:
                    req = await Request.read(reader)
                except ValueError:
                    writer.write(response("HTTP/1.0", 400, "Bad request", False))
                    await writer.drain()
                    break
                if req is None:
                    break
                try:
                    status, text = await self.dispatch(req)
                except Exception as e:   # a failing handler answers 500, as frameworks do
                    errors.report("handler", e)
                    status, text = 500, "Internal server error"
                keep = req.keep_alive()
                writer.write(response(req.version, status, text, keep))
                await writer.drain()
                if not keep:
                    break
        except OSError as e:
            errors.report("connection", e)
        writer.close()
        await writer.wait_closed()


def response(version, status, text, keep):
    body = text.encode()
    head = "%s %d %s\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: %d\r\n%s\r\n" % (
        version, status, REASONS[status], len(body), "Connection: keep-alive\r\n" if keep else "")
    return head.encode() + body


app = App()


@app.route("/hello/<name>")
async def hello(req):
    return "Hello, %s!" % req.params["name"]


@app.route("/sync/hello/<name>")
def sync_hello(req):
    return "Hello, %s!" % req.params["name"]


async def main():
    server = await asyncio.start_server(app.serve, common.HOST, args.port, backlog=args.backlog)
    async with server:
        await asyncio.Event().wait()   # serve until killed


if args.loop == "uvloop":
    import uvloop
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
asyncio.run(main())
