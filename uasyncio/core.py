"""uasyncio.core: the scheduler (all of it in C, uasyncio._uasyncio)."""
from uasyncio._uasyncio import (  # noqa: F401
    CancelledError,
    EventLoop,
    IORead,
    IOReadDone,
    IOWrite,
    IOWriteDone,
    SleepMs,
    StopLoop,
    SysCall,
    SysCall1,
    TimeoutError,
    Task,
    cancel,
    coroutine,
    ensure_future,
    get_event_loop,
    set_debug,
    sleep,
    sleep_ms,
    ticks_add,
    ticks_diff,
    ticks_ms,
    wait_for,
    wait_for_ms,
)

__all__ = [
    "CancelledError", "EventLoop", "IORead", "IOReadDone", "IOWrite", "IOWriteDone",
    "SleepMs", "StopLoop", "SysCall", "SysCall1", "TimeoutError", "Task", "cancel",
    "coroutine", "ensure_future", "get_event_loop", "set_debug", "sleep", "sleep_ms",
    "ticks_add", "ticks_diff", "ticks_ms", "wait_for", "wait_for_ms",
]
