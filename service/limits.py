"""HTTP limits: how much of a request a client may send, and how slowly."""

import time

import anyio
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.problems import HeadTooLarge, PayloadTooLarge, RequestTimeout

MAX_BODY_BYTES = 64 * 1024
MAX_URL_BYTES = 8 * 1024
MAX_HEADER_BYTES = 16 * 1024


class HeadSizeLimit:
    """414 for a URL, 431 for headers over the limit. The server's own bound
    (service/connections.py) sits just above both together, and closes the connection with
    a bare 400; these answer the heads between with a problem the client can read."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if len(scope.get("raw_path") or b"") + len(scope["query_string"]) > MAX_URL_BYTES:
                raise HeadTooLarge(414, "URI Too Long", f"The URL is over {MAX_URL_BYTES} bytes.")
            if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
                raise HeadTooLarge(
                    431,
                    "Request Header Fields Too Large",
                    f"The headers are over {MAX_HEADER_BYTES} bytes.",
                )
        await self.app(scope, receive, send)


class BodySizeLimit:
    """413 for a body over the limit, counted while it is read and before it is parsed;
    408 for a body that takes too long to arrive, so a slow client cannot hold a request."""

    def __init__(
        self,
        app: ASGIApp,
        timeout_seconds: float,
        max_bytes: int = MAX_BODY_BYTES,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_seconds = timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise PayloadTooLarge(self.max_bytes)
        received = 0
        deadline = time.monotonic() + self.timeout_seconds
        body_complete = False

        async def limited_receive() -> Message:
            nonlocal received, body_complete
            if body_complete:  # later calls wait for the client to disconnect
                return await receive()
            message = await self._receive_by(deadline, receive)
            body_complete = not message.get("more_body", False)
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise PayloadTooLarge(self.max_bytes)
            return message

        await self.app(scope, limited_receive, send)

    async def _receive_by(self, deadline: float, receive: Receive) -> Message:
        try:
            with anyio.fail_after(max(0.0, deadline - time.monotonic())):
                return await receive()
        except TimeoutError:
            raise RequestTimeout(self.timeout_seconds) from None
