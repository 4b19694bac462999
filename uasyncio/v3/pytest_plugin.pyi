# Type stubs of uasyncio.v3.pytest_plugin: its one public name is the
# fixture (the hooks are pytest's to call).
from typing import Iterator

import pytest

from uasyncio.v3 import Loop

__all__ = ["uasyncio_loop"]

def uasyncio_loop(request: pytest.FixtureRequest) -> Iterator[Loop]: ...
