"""uasyncio.queues: Queue, QueueEmpty, QueueFull (in C)."""
from uasyncio._uasyncio import Queue, QueueEmpty, QueueFull  # noqa: F401

__all__ = ["Queue", "QueueEmpty", "QueueFull"]
