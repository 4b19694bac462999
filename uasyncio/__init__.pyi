# Type stubs of uasyncio (the package: the scheduler, the loop with I/O,
# streams).
#
# How the stubs are laid out: each public module has its stub beside it, with
# the same name (uasyncio/core.py -> uasyncio/core.pyi; a package's in its
# __init__.pyi, e.g. uasyncio/websocket/__init__.pyi), and uasyncio/py.typed
# marks the whole package, subpackages included, as typed. A new module or
# subpackage (uasyncio.v3, ...) gets its .pyi next to it and nothing else:
# setup.py ships every *.pyi it finds, tests/test_typing.py finds every
# public module, checks that it has a stub naming what it exports (__all__),
# and runs mypy on the typed example programs (examples/typed_*.py).
# Awaitables are typed as _Op[T] from uasyncio.core: they work with both
# `await` and `yield from`, and give T.
import ssl as _ssl
import socket as _socket
from typing import Any, Callable, Iterable

from uasyncio.core import *
from uasyncio.core import EventLoop, _Callback, _Coro, _Op

# A file descriptor, or anything with fileno().
_Pollable = Any

class PollEventLoop(EventLoop):
    def add_reader(self, obj: _Pollable, cb: _Callback | _Coro, *args: Any) -> None: ...
    def add_writer(self, obj: _Pollable, cb: _Callback | _Coro, *args: Any) -> None: ...
    def remove_reader(self, obj: _Pollable) -> bool: ...
    def remove_writer(self, obj: _Pollable) -> bool: ...

class LimitOverrunError(ValueError):
    limit: int

class StreamReader:
    polls: Any
    ios: Any
    limit: int | None
    def __init__(self, polls: Any, ios: Any = None, limit: int | None = None) -> None: ...
    def read(self, n: int = -1) -> _Op[bytes]: ...
    def readline(self) -> _Op[bytes]: ...
    def readexactly(self, n: int) -> _Op[bytes]: ...
    def aclose(self) -> _Op[None]: ...

_Buffer = bytes | bytearray | memoryview | str

class StreamWriter:
    s: Any
    extra: dict[str, Any]
    def __init__(self, s: Any, extra: dict[str, Any] | None) -> None: ...
    def awrite(self, buf: _Buffer, off: int = 0, sz: int = -1) -> _Op[None]: ...
    def awriteiter(self, iterable: Iterable[_Buffer]) -> _Op[None]: ...
    def aclose(self) -> _Op[None]: ...
    def get_extra_info(self, name: str, default: Any = None) -> Any: ...

# What start_server() returns: the listening task, to schedule.
class _Server(_Op[None]):
    socket: _socket.socket | None
    def close(self) -> None: ...

def open_connection(host: str, port: int, ssl: bool | _ssl.SSLContext = False,
                    server_hostname: str | None = None,
                    limit: int | None = None) -> _Op[tuple[StreamReader, StreamWriter]]: ...
def start_server(client_coro: Callable[[StreamReader, StreamWriter], _Coro], host: str, port: int,
                 backlog: int = 10, ssl: _ssl.SSLContext | None = None, limit: int | None = None) -> _Server: ...

__all__ = [
    "CancelledError", "EventLoop", "IORead", "IOReadDone", "IOWrite", "IOWriteDone",
    "SleepMs", "StopLoop", "SysCall", "SysCall1", "TimeoutError", "Task", "cancel",
    "coroutine", "ensure_future", "get_event_loop", "set_debug", "sleep", "sleep_ms",
    "ticks_add", "ticks_diff", "ticks_ms", "wait_for", "wait_for_ms", "TICKS_PERIOD",
    "TICKS_MAX_DELAY", "PollEventLoop", "StreamReader", "StreamWriter", "LimitOverrunError",
    "open_connection", "start_server",
]
