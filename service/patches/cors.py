"""Starlette's CORS middleware, corrected.

- By default, Starlette's `CORSMiddleware` with `allow_credentials` adds
  `Access-Control-Allow-Credentials: true` to every answer that has an `Origin` header,
  preflights included, whether the origin is allowed or not (starlette #2560, closed as
  harmless: a browser ignores it without `Access-Control-Allow-Origin`); we override it
  because a disallowed origin should be told nothing it could mistake for a grant. Pinned
  by: tests/api/test_operations.py (a disallowed origin never gets it). Can go when:
  Starlette sends the header to allowed origins only.
"""

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import Message, Send

ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"


class AllowedOriginsOnlyCors(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        allowed = self.is_allowed_origin(request_headers["origin"])
        if not allowed and ALLOW_CREDENTIALS in response.headers:
            del response.headers[ALLOW_CREDENTIALS]
        return response

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        origin = request_headers.get("origin")
        if origin is None or self.is_allowed_origin(origin):
            await super().send(message, send, request_headers)
            return

        async def without_credentials(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if ALLOW_CREDENTIALS in headers:
                    del headers[ALLOW_CREDENTIALS]
            await send(message)

        await super().send(message, without_credentials, request_headers)
