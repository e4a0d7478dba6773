"""HTTP connections: what a client that connects and sends nothing (or too much, or too
slowly) costs.

uvicorn's httptools protocol parses faster than its h11 one (docs/performance.md), but has
no bound on a request head: httptools itself buffers a header line of any length, and no
timeout applies to a head that never arrives. uvicorn also counts every open connection
against `limit_concurrency`: 200 idle sockets made every later request a 503 (finding 5 in
docs/security.md). This subclass adds three bounds, chosen over switching servers in
docs/decisions/0006-request-head-timeout-in-uvicorn.md:

- a request head larger than `max_head_bytes` is answered 400 and the connection closed,
  counted over the bytes received while the head is incomplete, so the parser's buffers
  never hold more than that plus one read;
- a request head must arrive in full within `head_timeout` seconds of the connection
  opening or of the previous response, or the connection is closed (a trickling head is
  cut off too: data arriving does not restart the clock);
- when open connections reach 90 % of the limit, the connections that wait for a head
  (never used, or idle between keep-alive requests) are closed, oldest first, so a new
  request finds room; a connection with a request in flight is never closed for this.

Can go when uvicorn bounds a request head's size and time and closes idle connections near
its limit by itself."""

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_HEAD_TIMEOUT = 10.0
ROOM_FRACTION = 0.9  # closing idle connections starts at this share of the limit


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(
        self,
        *args: Any,
        max_head_bytes: int,
        head_timeout: float = DEFAULT_HEAD_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_head_bytes = max_head_bytes
        self.head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._awaiting_head = True
        self._head_bytes = 0  # received since the head began to be awaited
        self.waiting_since = 0.0  # when it began waiting for a head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._awaiting_head:
            self._head_bytes += len(data)
        super().data_received(data)
        too_large = self._awaiting_head and self._head_bytes > self.max_head_bytes
        if too_large and not self.transport.is_closing():
            self.send_400_response("Request head too large.")

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._cancel_head_timer()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and not self.pipeline:
            self._await_head()

    def waiting_for_head(self) -> bool:
        """No request in flight: the next one's head has not (fully) arrived."""
        return self._awaiting_head

    def _await_head(self) -> None:
        self._cancel_head_timer()
        self._awaiting_head = True
        self._head_bytes = 0
        self.waiting_since = self.loop.time()
        self._head_timer = self.loop.call_later(self.head_timeout, self._close_if_waiting)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _close_if_waiting(self) -> None:
        self._head_timer = None
        if self.waiting_for_head():
            self.close_idle()

    def close_idle(self) -> None:
        if not self.transport.is_closing():
            self.transport.close()

    def _make_room(self) -> None:
        if self.limit_concurrency is None:
            return
        room = int(self.limit_concurrency * ROOM_FRACTION)
        open_now = [c for c in self.connections if not c.transport.is_closing()]
        excess = len(open_now) - room
        if excess <= 0:
            return
        idle = [
            c
            for c in open_now
            if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c.waiting_for_head()
        ]
        for connection in sorted(idle, key=lambda c: c.waiting_since)[:excess]:
            connection.close_idle()
