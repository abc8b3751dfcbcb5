"""The server's limits (each a ``rnnkit serve`` flag) and the checks that enforce them.

Every limit answers with a 4xx JSON error rather than queueing or reading without bound: the
in-flight cap with 429 and ``Retry-After``, the body size with 413 (checked while the body is
read, so a client cannot stream an endless upload), inputs and batch sizes with 400, the time a
request may take with 408.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from starlette.exceptions import HTTPException

from rnnkit.serve.errors import ApiError, error_body

MB = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What one request (and the server as a whole) may ask for."""

    max_body_bytes: int = 10 * MB
    max_input_chars: int = 20_000  # per text or prompt
    max_texts: int = 256  # texts (or prompts) in one request
    max_tokens: int = 2048  # tokens one completion may ask for
    request_timeout_s: float = 60.0
    max_inflight: int = 64  # requests being worked on before new ones get 429
    session_ttl_s: float = 1800.0
    max_sessions: int = 1000
    max_session_bytes: int = 256 * MB  # recurrent state kept by all sessions together

    def __post_init__(self):
        for name, value in vars(self).items():
            if not value > 0:
                raise ValueError(f"limit {name} must be positive, found {value}")


class inflight:  # noqa: N801 - used like a function: `async with inflight(state):`
    """Hold one of the ``max_inflight`` slots for the block; 429 with ``Retry-After`` when none
    is free. Works as ``with`` and ``async with`` (the count lives on the event loop's thread,
    so there is nothing to await), and by hand (``enter()`` / ``exit()``) for streamed replies
    whose work outlives the endpoint function."""

    def __init__(self, state):  # the app's ServerState (models.py builds on this module)
        self.state = state
        self.held = False

    def enter(self) -> inflight:
        s = self.state
        if s.inflight >= s.limits.max_inflight:
            raise ApiError(429, f"the server is busy: {s.inflight} requests are in flight (the "
                                f"limit is {s.limits.max_inflight}); retry shortly.",
                           "rate_limit_error", {"Retry-After": "1"})
        s.inflight += 1
        self.held = True
        return self

    def exit(self) -> None:
        if self.held:
            self.held = False
            self.state.inflight -= 1

    def __enter__(self) -> inflight:
        return self.enter()

    def __exit__(self, *exc) -> None:
        self.exit()

    async def __aenter__(self) -> inflight:
        return self.enter()

    async def __aexit__(self, *exc) -> None:
        self.exit()


def check_texts(texts: list[str], limits: Limits, what: str = "texts") -> None:
    """400 unless ``texts`` holds 1 to ``max_texts`` texts of at most ``max_input_chars``."""
    if not texts:
        raise ApiError(400, f"{what} is empty; give at least one text.")
    if len(texts) > limits.max_texts:
        raise ApiError(400, f"{what} holds {len(texts)} texts, more than the limit of "
                            f"{limits.max_texts} per request.")
    for i, text in enumerate(texts):
        if len(text) > limits.max_input_chars:
            raise ApiError(400, f"{what}[{i}] is {len(text)} characters long, more than the "
                                f"limit of {limits.max_input_chars}.")


class BodyLimit:
    """ASGI middleware: 413 for a request body over ``max_bytes``, whether it says so in
    ``Content-Length`` or only turns out longer while it is read."""

    def __init__(self, app, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.max_bytes
        message = (f"the request body is larger than the limit of {limit} bytes "
                   f"(--max-body-bytes).")
        length = dict(scope.get("headers", [])).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            return await _reply_413(send, message)
        seen = 0

        async def counting_receive():
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:  # an HTTPException, so FastAPI's body parsing passes it on
                    raise HTTPException(413, message)
            return msg

        await self.app(scope, counting_receive, send)


async def _reply_413(send, message: str) -> None:
    body = json.dumps(error_body(message, "invalid_request_error")).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
