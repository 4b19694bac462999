"""uasyncio.synchro: Lock (in C)."""
from uasyncio._uasyncio import Lock  # noqa: F401

__all__ = ["Lock"]
