# Type stubs of uasyncio.websocket (see ../__init__.pyi for the layout).
