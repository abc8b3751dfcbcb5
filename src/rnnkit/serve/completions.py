"""``POST /v1/completions`` in OpenAI's completions schema, with server-sent events, and sessions
that keep the recurrent state between requests (``session_id``, ``DELETE /v1/sessions/{id}``).

Every choice is a row of its model's generation engine, so concurrent requests share each step.
A session's next request feeds only its new prompt: the state after the previous reply (prompt
and generated text, cut at a stop string) is kept, so a continuation costs the same after 100 or
100,000 tokens of history. A cancelled or failed request leaves its session as it was.

Prompt characters the model's vocabulary lacks are read as its unknown symbol (or left out by a
run saved before it had one, ``rnnkit.data.tokenizers``); ``usage.unknown_chars`` (an extension,
present when there were some) counts them.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from dataclasses import dataclass, field

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from rnnkit.serve.errors import ApiError, error_body
from rnnkit.serve.generation import Engine, Job, Result
from rnnkit.serve.limits import check_texts, inflight
from rnnkit.serve.models import Served, ServerState, get_model
from rnnkit.serve.sessions import Session, SessionBusy

router = APIRouter()

_SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_STOPS = 4  # as OpenAI
# OpenAI fields this server accepts at their neutral value only, and ones it ignores
_NEUTRAL = {"echo": False, "logprobs": None, "best_of": 1, "presence_penalty": 0,
            "frequency_penalty": 0, "logit_bias": {}, "suffix": None}
_IGNORED = ("user", "stream_options")


class CompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str
    prompt: str | list[str]
    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int | None = None  # extension
    seed: int | None = None
    n: int = 1
    stop: str | list[str] | None = None
    stream: bool = False
    session_id: str | None = None  # extension


def _check(body: CompletionRequest, state: ServerState) -> tuple[list[str], tuple[str, ...]]:
    """The prompts and stop strings, or a 400 naming the first setting out of range."""
    for key, value in (body.model_extra or {}).items():
        if key in _IGNORED or (key in _NEUTRAL and value in (None, _NEUTRAL[key])):
            continue
        raise ApiError(400, f"{key}={json.dumps(value)} is not supported by this server" if
                       key in _NEUTRAL else f"unknown field {key!r} in the request.")
    limits = state.limits
    prompts = [body.prompt] if isinstance(body.prompt, str) else body.prompt
    check_texts(prompts, limits, "prompt")
    stops = (body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ())
    problems = [
        (not 0 <= body.max_tokens <= limits.max_tokens,
         f"max_tokens must be 0 to {limits.max_tokens} (this server's limit), got "
         f"{body.max_tokens}"),
        (body.temperature < 0, f"temperature must be zero (greedy) or more, got "
                               f"{body.temperature}"),
        (not 0 < body.top_p <= 1, f"top_p must be in (0, 1], got {body.top_p}"),
        (body.top_k is not None and body.top_k < 1, f"top_k must be at least 1, got "
                                                    f"{body.top_k}"),
        (body.seed is not None and body.seed < 0, f"seed must be zero or more, got {body.seed}"),
        (body.n < 1, f"n must be at least 1, got {body.n}"),
        (body.n * len(prompts) > limits.max_texts,
         f"n times the number of prompts is {body.n * len(prompts)}, more than the limit of "
         f"{limits.max_texts} choices per request"),
        (len(stops) > MAX_STOPS, f"stop takes at most {MAX_STOPS} strings, got {len(stops)}"),
        (any(not s for s in stops), "a stop string is empty"),
        (body.session_id is not None and not _SESSION_ID.fullmatch(body.session_id),
         "session_id must be 1 to 128 letters, digits or ._:-"),
        (body.session_id is not None and (body.n != 1 or len(prompts) != 1),
         "a request with a session_id takes one prompt and n = 1"),
    ]
    for bad, message in problems:
        if bad:
            raise ApiError(400, message + ".")
    return prompts, stops


def engine_of(state: ServerState, served: Served) -> Engine:
    """The generation engine of a served language model, made on its first request."""
    key = ("generation", served.name)
    if key not in state.extras:
        state.extras[key] = Engine(served.stepper)
    return state.extras[key]


def shutdown(state: ServerState) -> None:
    """Stop every generation engine (their rows end as cancelled)."""
    for key, engine in list(state.extras.items()):
        if isinstance(key, tuple) and key[0] == "generation":
            engine.close()


@dataclass
class _Call:
    """One request's rows, their events (from the engine's thread) and its cleanup."""

    state: ServerState
    served: Served
    session: Session | None
    queue: asyncio.Queue
    jobs: list[Job] = field(default_factory=list)
    results: dict[int, Result] = field(default_factory=dict)
    slot: inflight | None = None
    closed: bool = False

    def job(self, index: int, body: CompletionRequest, stops, rng) -> Job:
        loop = asyncio.get_running_loop()
        metrics, model = self.state.metrics, self.served.name

        def done(result: Result) -> None:
            metrics.tokens(model, result.tokens)
            loop.call_soon_threadsafe(self.queue.put_nowait, (index, result))

        job = Job(on_text=lambda piece: loop.call_soon_threadsafe(
                      self.queue.put_nowait, (index, piece)),
                  on_done=done, max_tokens=body.max_tokens, temperature=body.temperature,
                  top_k=body.top_k, top_p=body.top_p, rng=rng, stop=stops,
                  keep_state=self.session is not None)
        self.jobs.append(job)
        return job

    async def events(self, timeout: float):
        """(index, piece) and (index, Result) until every row has ended; after ``timeout``
        seconds the rows are cancelled and ApiError 408 raised."""
        deadline = time.monotonic() + timeout
        while len(self.results) < len(self.jobs):
            try:
                index, item = await asyncio.wait_for(self.queue.get(),
                                                     max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:  # not the builtin TimeoutError before Python 3.11
                self.close()
                raise ApiError(408, f"the request took longer than the limit of {timeout:g} s "
                                    "(--request-timeout).", "timeout_error") from None
            if isinstance(item, Result):
                self.results[index] = item
                self._keep(item)
            yield index, item

    def _keep(self, result: Result) -> None:
        session = self.session
        if session is None or result.state is None:
            return
        tokens = session.tokens - len(session.pending) + result.fed + len(result.pending)
        self.state.sessions.save(session, result.state, result.logits, result.pending, tokens,
                                 self.served.stepper.state_nbytes(result.state))
        self.session = None
        self.state.metrics.sessions(len(self.state.sessions))

    def close(self) -> None:
        """Cancel what is still running, give the session and the slot back (idempotent)."""
        if self.closed:
            return
        self.closed = True
        for job in self.jobs:
            job.cancel()
        if self.session is not None:
            self.state.sessions.release(self.session)
            self.session = None
        if self.slot is not None:
            self.slot.exit()


@router.post("/v1/completions")
async def completions(body: CompletionRequest, request: Request):
    state: ServerState = request.app.state.rnnkit
    served = get_model(state, body.model, "textgen")
    prompts, stops = _check(body, state)
    stepper = served.stepper
    encoded = [stepper.encode(p) for p in prompts]  # a UserError (400) before anything runs
    unknown = sum(sum(stepper.tokenizer.unknown(p).values()) for p in prompts)
    slot = inflight(state).enter()
    call = _Call(state, served, None, asyncio.Queue(), slot=slot)
    try:
        start_state, logits, feeds = None, None, encoded
        if body.session_id is not None:
            try:
                call.session = state.sessions.open(body.session_id, served.name)
            except SessionBusy as e:
                raise ApiError(409, str(e)) from None
            start_state, logits = call.session.state, call.session.logits
            feeds = [call.session.pending + encoded[0]]
        if logits is None and not all(feeds):
            raise ApiError(400, "the prompt is empty (or has no character the model knows); give "
                                "at least one character to start from.")
        seeds = np.random.SeedSequence(body.seed).spawn(len(prompts) * body.n)
        engine = engine_of(state, served)
        for i, ids in enumerate(feeds):
            jobs = [call.job(k, body, stops, np.random.default_rng(seeds[k]))
                    for k in range(i * body.n, (i + 1) * body.n)]
            await run_in_threadpool(engine.submit, ids, jobs, start_state, logits)
    except BaseException:
        call.close()
        raise
    head = {"id": f"cmpl-{secrets.token_hex(12)}", "object": "text_completion",
            "created": int(time.time()), "model": served.name}
    usage_prompt = sum(len(e) for e in encoded)
    if body.stream:
        return StreamingResponse(_stream(call, head, state.limits.request_timeout_s),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"},
                                 background=BackgroundTask(call.close))
    try:
        texts: dict[int, list[str]] = {i: [] for i in range(len(call.jobs))}
        async for index, item in _watch(call.events(state.limits.request_timeout_s), request):
            if isinstance(item, str):
                texts[index].append(item)
    finally:
        call.close()
    if len(call.results) < len(call.jobs):
        return Response(status_code=499)  # the client went away; nobody reads this
    _raise_failure(call.results)
    choices = [{"index": i, "text": "".join(texts[i]), "logprobs": None,
                "finish_reason": call.results[i].finish_reason} for i in range(len(call.jobs))]
    generated = sum(r.tokens for r in call.results.values())
    reply = {**head, "choices": choices,
             "usage": {"prompt_tokens": usage_prompt, "completion_tokens": generated,
                       "total_tokens": usage_prompt + generated}}
    if unknown:
        reply["usage"]["unknown_chars"] = unknown
    if body.session_id is not None:
        reply["session_id"] = body.session_id
    return reply


async def _watch(events, request: Request):
    """``events``, stopped (and so cancelled) when the client disconnects."""
    pending = asyncio.ensure_future(events.__anext__())
    try:
        while True:
            done, _ = await asyncio.wait([pending], timeout=0.25)
            if not done:
                if await request.is_disconnected():
                    return
                continue
            try:
                yield pending.result()
            except StopAsyncIteration:
                return
            pending = asyncio.ensure_future(events.__anext__())
    finally:
        pending.cancel()


def _raise_failure(results: dict[int, Result]) -> None:
    for result in results.values():
        if result.finish_reason == "error":
            raise ApiError(500, f"generation failed: {result.error}", "server_error")
        if result.finish_reason == "cancelled":
            raise ApiError(503, "the generation was cancelled (the server is shutting down).",
                           "server_error")


def _sse(data: dict | str) -> str:
    return f"data: {data if isinstance(data, str) else json.dumps(data)}\n\n"


async def _stream(call: _Call, head: dict, timeout: float):
    """The SSE body: a chunk per piece of text, one with each choice's finish_reason, then
    ``[DONE]``; a failure after the reply started is an ``error`` event."""
    try:
        async for index, item in call.events(timeout):
            if isinstance(item, str):
                choice = {"index": index, "text": item, "logprobs": None, "finish_reason": None}
            else:
                choice = {"index": index, "text": "", "logprobs": None,
                          "finish_reason": item.finish_reason}
                try:
                    _raise_failure({index: item})
                except ApiError as e:
                    yield _sse(error_body(e.message, e.type))
                    break
            yield _sse({**head, "choices": [choice]})
    except ApiError as e:
        yield _sse(error_body(e.message, e.type))
    finally:
        call.close()
    yield _sse("[DONE]")


@router.delete("/v1/sessions/{session_id}")
async def delete_session(session_id: str, request: Request):
    state: ServerState = request.app.state.rnnkit
    if not state.sessions.delete(session_id):
        raise ApiError(404, f"there is no session {session_id!r} (it may have expired).",
                       "not_found_error")
    state.metrics.sessions(len(state.sessions))
    return {"id": session_id, "object": "session", "deleted": True}
