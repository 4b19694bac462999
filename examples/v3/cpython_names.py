"""CPython-style asyncio code on uasyncio.v3 (fully annotated: checked with
mypy --strict against the package's stubs): a small service that serves
lines with start_server/serve_forever, answers each through a blocking
function run in a thread (run_in_executor, to_thread), fetches "sensors" in
a TaskGroup under a timeout, and uses wait, as_completed, shield,
ensure_future, task names and all_tasks. Prints what it did and exits.

    python3 examples/v3/cpython_names.py

It imports uasyncio.v3 by name (so that mypy reads the package's stubs);
under `python3 -m uasyncio.v3`, `import asyncio` would name the same module.
"""
import os
import sys
import sysconfig
import time

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
if os.path.exists(os.path.join(ROOT, "uasyncio", "_uasyncio" + sysconfig.get_config_var("EXT_SUFFIX"))):
    # this folder's build first, if made for this Python
    sys.path.insert(0, ROOT)
import uasyncio.v3 as asyncio  # noqa: E402


def total(numbers: list[int], start: int = 0) -> int:
    """A plain function for to_thread."""
    return sum(numbers, start)


def blocking_upper(line: bytes) -> bytes:
    """What a library without async gives: it blocks its thread."""
    time.sleep(0.001)
    return line.upper()


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    loop = asyncio.get_running_loop()
    while line := await reader.readline():
        writer.write(await loop.run_in_executor(None, blocking_upper, line))
        await writer.drain()
    writer.close()
    await writer.wait_closed()


async def sensor(name: str, ms: int) -> str:
    await asyncio.sleep_ms(ms)
    if name == "broken":
        raise OSError("no answer from " + name)
    return "%s=%d" % (name, ms)


async def read_sensors() -> list[str]:
    async with asyncio.timeout(5):
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(sensor(n, ms), name=n) for n, ms in (("temp", 20), ("light", 10))]
    return [t.get_name() + ":" + t.result() for t in tasks]


async def failing_group() -> str:
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(sensor("broken", 5))
            tg.create_task(sensor("slow", 10_000))
    except Exception as eg:   # an ExceptionGroup (3.11+: the builtin)
        return "group failed: %s" % [str(e) for e in getattr(eg, "exceptions", [eg])]
    return "group ended"


async def main() -> None:
    server = await asyncio.start_server(handle, "127.0.0.1", 0, start_serving=False)
    port = server.sockets[0].getsockname()[1]
    serving = asyncio.create_task(server.serve_forever(), name="server")
    await asyncio.sleep(0)   # it starts listening when it first runs
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1024)
    for word in (b"hello\n", b"world\n"):
        writer.write(word)
        await writer.drain()
        print("server says", (await reader.readline()).decode().strip())
    writer.close()
    await writer.wait_closed()

    print("thread:", await asyncio.to_thread(total, [1, 2, 3], start=4))
    print("sensors:", await read_sensors())
    print(await failing_group())
    try:
        async with asyncio.timeout(0.01):
            await sensor("slow", 10_000)
    except TimeoutError:
        print("timeout: too slow")

    tasks = [asyncio.ensure_future(sensor(n, ms)) for n, ms in (("a", 30), ("b", 10), ("c", 20))]
    done, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    print("wait: first done", [t.result() for t in done], "pending", len(pending))
    print("as_completed:", [await aw for aw in asyncio.as_completed(pending)])
    shielded = asyncio.create_task(sensor("kept", 20))
    try:
        await asyncio.wait_for(asyncio.shield(shielded), 0.005)
    except asyncio.TimeoutError:
        print("shield: the wait timed out, the task goes on:", await shielded)

    print("tasks left:", sorted(t.get_name() for t in asyncio.all_tasks() if t is not asyncio.current_task()))
    server.close()
    try:
        await serving
    except asyncio.CancelledError:
        print("server closed, serving:", server.is_serving())


asyncio.run(main())
