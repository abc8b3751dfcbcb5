"""Every error the server answers is JSON ``{"error": {"message", "type"}}`` in OpenAI's shape.

``ApiError`` is raised by the endpoints; ``install(app)`` turns it, request validation (malformed
JSON, wrong types), a ``UserError`` from a predictor and any unexpected exception into that
shape, so one bad request never takes the server down.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from rnnkit.errors import UserError

_TYPES = {400: "invalid_request_error", 404: "not_found_error", 405: "invalid_request_error",
          408: "timeout_error", 413: "invalid_request_error", 429: "rate_limit_error",
          503: "server_error"}


class ApiError(Exception):
    """A request the server refuses, with its HTTP status and one sentence."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error",
                 headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.headers = headers


def error_body(message: str, type: str) -> dict:
    return {"error": {"message": message, "type": type}}


def error_response(status: int, message: str, type: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type or _TYPES.get(status, "invalid_request_error")),
                        status_code=status, headers=headers)


def _where(loc: tuple) -> str:
    # ("body", "texts", 0) -> "texts[0]"; the "body"/"query" prefix says nothing to a client
    parts = [p for p in loc if p not in ("body", "query", "path", "form")]
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the request body"


def validation_message(errors: list[dict]) -> str:
    """One sentence for pydantic's list of errors: the first one, naming the field."""
    if not errors:
        return "the request is not valid."
    first = errors[0]
    if first.get("type") == "json_invalid":
        reason = first.get("ctx", {}).get("error", "")
        return f"the request body is not valid JSON ({reason})." if reason else \
            "the request body is not valid JSON."
    if tuple(first.get("loc", ())) == ("body",) and first.get("type") in (
            "model_attributes_type", "dict_type"):
        return "the request body must be a JSON object (sent as application/json)."
    msg = str(first.get("msg", "is not valid"))
    msg = msg[0].lower() + msg[1:] if msg else msg
    if first.get("type") == "missing":
        return f"{_where(tuple(first.get('loc', ())))} is required but missing."
    more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
    return f"{_where(tuple(first.get('loc', ())))}: {msg}{more}."


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the JSON shape."""

    @app.exception_handler(ApiError)
    async def _api(request: Request, exc: ApiError):
        return error_response(exc.status, exc.message, exc.type, exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error_response(400, validation_message(list(exc.errors())))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException):
        message = exc.detail if isinstance(exc.detail, str) else "the request failed."
        if exc.status_code == 404 and message == "Not Found":
            message = f"there is no endpoint {request.url.path}; see GET /v1/models and /docs."
        elif exc.status_code == 405:
            message = f"{request.url.path} does not take {request.method} requests."
        return error_response(exc.status_code, message, headers=exc.headers)

    @app.exception_handler(UserError)
    async def _user(request: Request, exc: UserError):
        return error_response(400, str(exc))

    # Starlette logs the traceback (it re-raises after this reply) and the server goes on
    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        return error_response(500, f"internal error: {type(exc).__name__}: {exc}", "server_error")

