"""uasyncio.websocket: the WebSocket server is in uasyncio.websocket.server."""
