"""uasyncio.v3: today's MicroPython asyncio (v1.28's API), on the same C
event loop as uasyncio 2.0.

    import uasyncio.v3 as asyncio

Everything here is C (uasyncio._uasyncio._v3); this file only re-exports it.
"""
from uasyncio._uasyncio import _v3

CancelledError = _v3.CancelledError
TimeoutError = _v3.TimeoutError
InvalidStateError = _v3.InvalidStateError
Task = _v3.Task
Loop = _v3.Loop
run = _v3.run
run_until_complete = _v3.run_until_complete
create_task = _v3.create_task
current_task = _v3.current_task
sleep = _v3.sleep
sleep_ms = _v3.sleep_ms
wait_for = _v3.wait_for
wait_for_ms = _v3.wait_for_ms
gather = _v3.gather
get_event_loop = _v3.get_event_loop
new_event_loop = _v3.new_event_loop
Event = _v3.Event
ThreadSafeFlag = _v3.ThreadSafeFlag
Lock = _v3.Lock
Semaphore = _v3.Semaphore
BoundedSemaphore = _v3.BoundedSemaphore
Queue = _v3.Queue
Wait = _v3.Wait
QueueEmpty = _v3.QueueEmpty
QueueFull = _v3.QueueFull

# CPython asyncio's names beyond MicroPython's (docs/v3.md, "CPython's names").
get_running_loop = _v3.get_running_loop
ensure_future = _v3.ensure_future
iscoroutine = _v3.iscoroutine
iscoroutinefunction = _v3.iscoroutinefunction
all_tasks = _v3.all_tasks
to_thread = _v3.to_thread
wrap_future = _v3.wrap_future
Timeout = _v3.Timeout
timeout = _v3.timeout
timeout_at = _v3.timeout_at
TaskGroup = _v3.TaskGroup
shield = _v3.shield
wait = _v3.wait
as_completed = _v3.as_completed
FIRST_COMPLETED = _v3.FIRST_COMPLETED
FIRST_EXCEPTION = _v3.FIRST_EXCEPTION
ALL_COMPLETED = _v3.ALL_COMPLETED

from uasyncio.v3.stream import *  # noqa: E402,F401,F403  Stream, Server, open_connection, start_server

__version__ = (3, 0, 0)
