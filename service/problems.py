"""The errors handlers raise. Each is an RFC 7807 problem with a readable `detail`."""

from connexion.exceptions import ProblemException, Unauthorized

RETRY_AFTER_SECONDS = 5


class UnprocessableEntity(ProblemException):
    """`errors`, when given, lists every violation (the contract's `Violation`)."""

    def __init__(self, detail: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(
            status=422,
            title="Unprocessable Entity",
            detail=detail,
            ext={"errors": errors} if errors else None,
        )


class NotFound(ProblemException):
    def __init__(self, detail: str) -> None:
        super().__init__(status=404, title="Not Found", detail=detail)


class ForbiddenUser(ProblemException):
    def __init__(self) -> None:
        super().__init__(
            status=403, title="Forbidden", detail="The token does not belong to this user."
        )


class QuotaExceeded(ProblemException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status=409,
            title="Conflict",
            detail=f"This user already has {limit} tasks, the most allowed "
            "(MAX_TASKS_PER_USER); delete some before creating more.",
        )


class PayloadTooLarge(ProblemException):
    def __init__(self, limit: int) -> None:
        super().__init__(
            status=413,
            title="Payload Too Large",
            detail=f"The request body is larger than {limit} bytes.",
        )


class HeadTooLarge(ProblemException):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(status=status, title=title, detail=detail)


class RequestTimeout(ProblemException):
    def __init__(self, seconds: float) -> None:
        super().__init__(
            status=408,
            title="Request Timeout",
            detail=f"The request body did not arrive within {seconds:g} seconds.",
            headers={"Connection": "close"},
        )


class ServiceUnavailable(ProblemException):
    def __init__(self, detail: str = "The database is unavailable; please retry shortly.") -> None:
        super().__init__(
            status=503,
            title="Service Unavailable",
            detail=detail,
            headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


class InvalidToken(Unauthorized):
    """A token was presented but cannot be accepted (RFC 6750 `invalid_token`)."""

    def __init__(self, reason: str) -> None:
        super().__init__(detail=reason)
        self.headers = {
            "WWW-Authenticate": f'Bearer error="invalid_token", error_description="{reason}"'
        }


class PreconditionFailed(ProblemException):
    """412: If-Match named no current version; the answer carries the current ETag."""

    def __init__(self, detail: str, etag: str) -> None:
        super().__init__(
            status=412, title="Precondition Failed", detail=detail, headers={"ETag": etag}
        )


class PreconditionRequired(ProblemException):
    def __init__(self) -> None:
        super().__init__(
            status=428,
            title="Precondition Required",
            detail="This server requires an If-Match header on writes: read the task's ETag "
            "(getTask) and send it as If-Match.",
        )


class Conflict(ProblemException):
    def __init__(self, detail: str) -> None:
        super().__init__(status=409, title="Conflict", detail=detail)


class Gone(ProblemException):
    def __init__(self, detail: str) -> None:
        super().__init__(status=410, title="Gone", detail=detail)
