"""uvicorn's HTTP/1.1 protocol (h11), closing connections the way nginx does.

A server that answers before it has read the whole request (a 413 for a body over the
limit, a 401 before a stranger's body, a 400 for headers too large to parse) and then
closes the socket at once makes the kernel reset the connection: a client still sending
gets ECONNRESET and never reads the answer.  So when a connection is to be closed, this
protocol first finishes writing, half-closes (FIN), and reads and discards what the client
is still sending, for at most `LINGER_SECONDS` and `LINGER_BYTES`, before it closes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

LINGER_SECONDS = 2.0
LINGER_BYTES = 64 * 1024 * 1024


class _LingeringTransport:
    """The connection's transport, with a `close` that lingers; everything else as is."""

    def __init__(self, transport: asyncio.Transport, protocol: LingeringH11Protocol) -> None:
        self._transport = transport
        self._protocol = protocol
        self._lingering = False
        self._discarded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def is_closing(self) -> bool:
        return self._lingering or self._transport.is_closing()

    def close(self) -> None:
        if self._lingering or self._transport.is_closing():
            return
        self._lingering = True
        if not self._transport.can_write_eof():
            self._transport.close()
            return
        try:
            self._transport.write_eof()  # sent once the answer is flushed
        except OSError:  # the client is gone already
            self._transport.close()
            return
        self._protocol.discard_input(self._discard)
        self._transport.resume_reading()
        asyncio.get_running_loop().call_later(LINGER_SECONDS, self._transport.close)

    def _discard(self, data: bytes) -> None:
        self._discarded += len(data)
        if self._discarded > LINGER_BYTES:
            self._transport.close()


class LingeringH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        super().connection_made(_LingeringTransport(transport, self))  # type: ignore[arg-type]

    def discard_input(self, sink: Any) -> None:
        """From now on, what arrives is not a request: hand it to `sink`."""
        self.data_received = sink  # type: ignore[method-assign]

    def eof_received(self) -> None:
        # The client is done sending: nothing more to wait for.
        if isinstance(self.transport, _LingeringTransport) and self.transport.is_closing():
            self.transport._transport.close()
            return
        super().eof_received()
