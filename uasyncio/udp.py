"""uasyncio.udp: socket, recv, recvfrom, sendto, close (in C)."""
from uasyncio._uasyncio import udp_close as close  # noqa: F401
from uasyncio._uasyncio import udp_recv as recv  # noqa: F401
from uasyncio._uasyncio import udp_recvfrom as recvfrom  # noqa: F401
from uasyncio._uasyncio import udp_sendto as sendto  # noqa: F401
from uasyncio._uasyncio import udp_socket as socket  # noqa: F401

__all__ = ["socket", "recv", "recvfrom", "sendto", "close"]
