"""HTTP connections: what a client that connects and sends nothing (or too little) costs.

uvicorn's h11 protocol has no timeout for a request head that never arrives, and counts
every open connection against `limit_concurrency`: 200 idle sockets made every later request
a 503 (finding 5 in docs/security.md). This subclass adds two bounds, chosen over switching
servers in docs/decisions/0006-request-head-timeout-in-uvicorn.md:

- a request head must arrive in full within `head_timeout` seconds of the connection
  opening or of the previous response, or the connection is closed (a trickling head is
  cut off too: data arriving does not restart the clock);
- when open connections reach 90 % of the limit, the connections that wait for a head
  (never used, or idle between keep-alive requests) are closed, oldest first, so a new
  request finds room; a connection with a request in flight is never closed for this.

Can go when uvicorn bounds the time a request head may take and closes idle connections
near its limit by itself."""

import asyncio
import contextlib
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

DEFAULT_HEAD_TIMEOUT = 10.0
ROOM_FRACTION = 0.9  # closing idle connections starts at this share of the limit


class GuardedH11Protocol(H11Protocol):
    def __init__(self, *args: Any, head_timeout: float = DEFAULT_HEAD_TIMEOUT, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self.waiting_since = 0.0  # when it began waiting for a head

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()
        self._make_room()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.waiting_for_head():
            self._cancel_head_timer()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.waiting_for_head():
            self._await_head()

    def waiting_for_head(self) -> bool:
        """No request in flight: the next one's head has not (fully) arrived."""
        return self.conn.their_state is h11.IDLE and (
            self.cycle is None or self.cycle.response_complete
        )

    def _await_head(self) -> None:
        self._cancel_head_timer()
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
            # If the state machine has already ended, close the transport anyway.
            with contextlib.suppress(h11.LocalProtocolError):
                self.conn.send(h11.ConnectionClosed())
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
            if c is not self and isinstance(c, GuardedH11Protocol) and c.waiting_for_head()
        ]
        for connection in sorted(idle, key=lambda c: c.waiting_since)[:excess]:
            connection.close_idle()
