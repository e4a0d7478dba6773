"""Handlers of `contract.yaml`: each answers with the arguments it was called with."""

from typing import Any

from connexion import NoContent, request
from connexion.lifecycle import ConnexionResponse
from connexion.problem import problem
from starlette.responses import PlainTextResponse

from service.problems import NotFound


def _echo(**arguments: Any) -> dict[str, Any]:
    return {name: [type(value).__name__, repr(value)] for name, value in arguments.items()}


def check_token(token: str) -> dict[str, Any] | None:
    return {"sub": "alice", "scope": ["all"]} if token == "good" else None


def search(
    owner: str,
    item_id: int,
    text: str = "none",
    limit: int = 10,
    ratio: float | None = None,
    flag: bool | None = None,
    tags: list[str] | None = None,
    ids: list[int] | None = None,
    piped: list[str] | None = None,
    fallback: list[str] | None = None,
    user: str | None = None,
    token_info: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return _echo(
        owner=owner,
        item_id=item_id,
        text=text,
        limit=limit,
        ratio=ratio,
        flag=flag,
        tags=tags,
        ids=ids,
        piped=piped,
        fallback=fallback,
        user=user,
        token_info=token_info,
        if_match=request.headers.get("if-match"),
        version=request.headers.get("x-version"),
    )


async def search_async(owner: str, **kwargs: Any) -> tuple[Any, int, dict[str, str]]:
    return _echo(owner=owner, **kwargs), 200, {"Content-Type": "application/json"}


def replace(owner: str, payload: Any) -> tuple[Any, int]:
    return _echo(owner=owner, payload=payload), 201


def patch(owner: str, body: Any = None) -> Any:
    return _echo(owner=owner, body=body)


def ignore_body(owner: str) -> Any:
    return NoContent, 204


def nullable(owner: str, body: Any) -> Any:
    return _echo(owner=owner, body=body)


def form(owner: str, body: Any) -> Any:
    return _echo(owner=owner, body=body)


def answer(owner: str, kind: str, context_: Any) -> Any:
    answers: dict[str, Any] = {
        "none": lambda: (NoContent, 204),
        "text": lambda: "plain text",
        "list": lambda: [1, 2, {"three": None}],
        "dict": lambda: {"context": sorted(context_)},
        "headers": lambda: ({"a": 1}, 202, {"X-Extra": "yes", "Content-Type": "application/json"}),
        "response": lambda: PlainTextResponse("as is", status_code=203),
        "connexion": lambda: ConnexionResponse(
            status_code=200, body=b"raw", content_type="text/plain"
        ),
        "problem": lambda: problem(409, "Conflict", "it clashes"),
    }
    if kind == "raise":
        raise NotFound("no such thing")
    if kind == "crash":
        raise RuntimeError("boom")
    return answers[kind]()
