"""Structured logs: every record is one JSON line; every request gets one record."""

import itertools
import json
import logging
import re
import time
import traceback
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
    """One JSON object per line; a traceback stays inside its record's `exc_info` field,
    as its frames and the exception's type: an exception's message may quote a value."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        kind, _error, trace = ei
        frames = "".join(traceback.format_tb(trace))
        return f"Traceback (most recent call last):\n{frames}{getattr(kind, '__name__', kind)}"

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


class NoClientData(logging.Filter):
    """Keeps what a client sent out of every log line, at every level.

    Connexion logs each problem it answers (`%r` of the exception, whose detail may quote a
    rejected value) and, at debug, whole request parts; the request log already records
    each answer's status, so its lines below ERROR are dropped. An exception another
    library passes as an argument is logged by its type only (ours word their own
    errors). SQLAlchemy's statement log carries parameters, so it is held at WARNING (and
    engines hide parameters in error text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("connexion") and record.levelno < logging.ERROR:
            return False
        if (
            not record.name.startswith(OWN_LOGGERS)
            and isinstance(record.args, tuple)
            and any(isinstance(arg, BaseException) for arg in record.args)
        ):
            record.args = tuple(
                type(arg).__name__ if isinstance(arg, BaseException) else arg for arg in record.args
            )
        return True


OWN_LOGGERS = ("service", "db")
QUIET_LOGGERS = ("sqlalchemy", "httpcore")  # statements with parameters; wire-level chatter


def logging_config(level: str) -> dict[str, Any]:
    """A `logging.config.dictConfig` for the server: everything, uvicorn's own loggers
    included, as JSON on stderr. Uvicorn's access log is replaced by `RequestLog`."""
    handler = {
        "class": "logging.StreamHandler",
        "formatter": "json",
        "stream": "ext://sys.stderr",
        "filters": ["no_client_data"],
    }
    loggers: dict[str, Any] = {
        name: {"handlers": [], "propagate": True}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    }
    loggers.update({name: {"level": "WARNING"} for name in QUIET_LOGGERS})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"no_client_data": {"()": NoClientData}},
        "handlers": {"default": handler},
        "root": {"handlers": ["default"], "level": level.upper()},
        "loggers": loggers,
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
