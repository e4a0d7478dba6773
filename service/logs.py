"""Structured logs: every record is one JSON line; every request gets one record."""

import itertools
import json
import logging
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
# A client's id is echoed and logged, so only a short, plain one is taken as is.
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
access_log = logging.getLogger("service.access")


class JsonFormatter(logging.Formatter):
    """One JSON object per line; a traceback stays inside its record's `exc_info` field."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            **getattr(record, "fields", {}),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server: everything, uvicorn's own loggers
    included, as JSON on stderr. Uvicorn's access log is replaced by `RequestLog`."""
    handler = {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }


class RequestLog:
    """Log one line per request and echo its request id. Only the route's template and
    the verified user are logged, never headers, so no token reaches a log line."""

    def __init__(self, app: ASGIApp, routes: dict[str, str]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(Headers(scope=scope).get(REQUEST_ID_HEADER, ""))
        extensions = scope.setdefault("extensions", {})
        started = time.perf_counter()
        status = 500  # what the client gets if nothing is sent at all

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            fields = {
                **self._route(extensions),
                "method": scope["method"],
                "status": status,
                "duration_ms": round((time.perf_counter() - started) * 1000, 1),
                "request_id": request_id,
            }
            access_log.info("request", extra={"fields": fields})

    def _route(self, extensions: dict[str, Any]) -> dict[str, Any]:
        # The template, not the path: a path is client input and names the user.
        operation = extensions.get("connexion_routing", {}).get("operation_id")
        return {
            "path": self.routes.get(operation),
            "user_id": extensions.get("connexion_context", {}).get("user"),
        }


# A request id must be unique, not secret: a random prefix per process and a counter,
# instead of uuid4's system call on every request.
_PROCESS_PREFIX = uuid.uuid4().hex[:12]
_sequence = itertools.count(1)


def _request_id(sent: str) -> str:
    return sent if _SAFE_REQUEST_ID.fullmatch(sent) else f"{_PROCESS_PREFIX}-{next(_sequence):x}"
