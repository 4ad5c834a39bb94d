"""The HTTP side of a WebSocket's opening: uvicorn's httptools protocol, leaving nothing behind.

When a request upgrades to a WebSocket, uvicorn hands the connection to the socket's own
protocol (`keepalive.Socket`) and drops the HTTP one. That one and its parser refer to each
other (the parser calls back into it), so it was freed only by the cycle collector, with its
request's headers, buffers and flow control: about two dozen objects a socket, which with
thousands of sockets connecting kept the collector busy while messages waited. Here the
parser is let go once the socket has the connection, and both are freed at once.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class HttpProtocol(HttpToolsProtocol):
    def handle_websocket_upgrade(self) -> None:
        super().handle_websocket_upgrade()
        parser: Any = None  # the connection is the socket's from here on: no more HTTP to parse
        self.parser = parser
