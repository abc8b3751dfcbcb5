"""Batched generation: one loop per language model steps every active request together.

A request's prompt is read by ``Engine.submit`` (the stepper's ``prefill``, in the caller's
thread), then its rows join the loop between two steps. Each step samples one token per row with
that row's own settings and random generator, hands the new text to the row's callback, and calls
``stepper.step`` once for all rows that go on. A row ends at ``max_tokens``, at a stop string
(its text is cut before it, and never sent past it while streaming), or when cancelled.

A row that keeps its state for a session ends with the state after exactly the text it returned:
after ``max_tokens`` the last token is fed with the others' next step; at a stop string the
state is the one from before the stop string began (tokens a cut splits go to ``pending``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rnnkit.export.sampling import sample_next


@dataclass
class Result:
    """How a row ended: ``finish_reason`` "length", "stop", "cancelled" or "error"."""

    text: str
    finish_reason: str
    tokens: int  # generated
    state: object = None  # kept rows: after `text`, with `pending` still to feed
    logits: np.ndarray | None = None
    pending: list[int] = field(default_factory=list)
    fed: int = 0  # tokens in `state` since the request's starting state
    error: str | None = None


@dataclass
class Job:
    """One sequence to generate (one choice of a request)."""

    on_text: Callable[[str], None]  # each new piece of text, from the engine's thread
    on_done: Callable[[Result], None]
    max_tokens: int = 16
    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    rng: np.random.Generator = field(default_factory=np.random.default_rng)
    stop: tuple[str, ...] = ()
    keep_state: bool = False  # the caller stores the final state in a session
    cancelled: bool = False

    def cancel(self) -> None:
        """Stop at the next step (the client went away); ``on_done`` gets "cancelled"."""
        self.cancelled = True


class _Row:
    def __init__(self, job: Job, stepper, logits: np.ndarray, state, prompt_fed: int):
        self.job, self.stepper = job, stepper
        self.logits, self.state = logits, state
        self.decoder = stepper.stream_decoder()
        self.text, self.sent, self.generated = "", 0, 0
        self.fed = prompt_fed  # tokens in self.state since the request's starting state
        self.token = 0
        self.ending: str | None = None  # finish once the last token has been fed
        self.done = False
        self.longest = max((len(s) for s in job.stop), default=0)
        # (text length, tokens fed, state, logits) at recent token boundaries, to cut a kept
        # state back to where a stop string began
        self.marks = deque([(0, self.fed, state, logits)]) if job.keep_state and job.stop \
            else None

    def take(self, token: int) -> bool:
        """Handle the next token's text; True when the row needs a step."""
        job = self.job
        self.token = token
        self.generated += 1
        last = self.generated == job.max_tokens
        piece = self.decoder.feed(token) + (self.decoder.flush() if last else "")
        if self._add(piece):
            return False
        if not last:
            return True
        if job.keep_state:
            self.ending = "length"
            return True
        return self._finish("length")

    def advance(self, logits: np.ndarray, state) -> None:
        self.logits, self.state = logits, state
        self.fed += 1
        if self.marks is not None:
            self.marks.append((len(self.text), self.fed, state, logits))
            while len(self.marks) > 1 and self.marks[1][0] <= len(self.text) - self.longest:
                self.marks.popleft()
        if self.ending:
            self._finish(self.ending)

    def _add(self, piece: str) -> bool:
        """Append generated text, send what can no longer be part of a stop string; True when
        a stop string ended the row."""
        if not piece:
            return False
        start = max(0, len(self.text) - self.longest + 1)
        self.text += piece
        found = [i for i in (self.text.find(s, start) for s in self.job.stop) if i >= 0]
        if found:
            cut = min(found)
            self._send(cut)
            self.text = self.text[:cut]
            self._finish("stop")
            return True
        held = max((k for s in self.job.stop for k in range(1, len(s))
                    if self.text.endswith(s[:k])), default=0)
        self._send(len(self.text) - held)
        return False

    def _send(self, end: int) -> None:
        if end > self.sent:
            piece, self.sent = self.text[self.sent : end], end
            self.job.on_text(piece)

    def _finish(self, reason: str, error: str | None = None) -> bool:
        if self.done:
            return False
        result = Result(self.text, reason, self.generated, error=error)
        if self.job.keep_state and reason in ("length", "stop"):
            result.state, result.logits, result.fed = self.state, self.logits, self.fed
            if reason == "stop" and self.marks is not None:
                length, fed, state, logits = max(
                    (m for m in self.marks if m[0] <= len(self.text)), key=lambda m: m[0])
                tail = self.text[length:]
                result.state, result.logits, result.fed = state, logits, fed
                result.pending = self.stepper.encode(tail) if tail else []
        self.done = True
        self.job.on_done(result)
        return False

    def fail(self, reason: str, error: str | None = None) -> None:
        self._finish(reason, error)


class Engine:
    """The generation loop of one language model (a daemon thread, started on first use)."""

    def __init__(self, stepper):
        self.stepper = stepper
        self.steps = 0  # stepper.step calls
        self.rows_stepped = 0  # rows over all those calls
        self._incoming: list[_Row] = []
        self._rows: list[_Row] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, ids: list[int], jobs: list[Job], state=None,
               logits: np.ndarray | None = None) -> None:
        """Read ``ids`` after ``state`` (blocking, in this thread) and start one row per job.

        ``ids`` may be empty when ``logits`` (the next token's after ``state``) are given: a
        session continuing without new text.
        """
        if ids:
            logits, state = self.stepper.prefill(ids, state)
        elif logits is None:
            raise ValueError("submit needs prompt tokens or the logits after the state")
        rows = [_Row(job, self.stepper, logits, state, len(ids)) for job in jobs]
        with self._cond:
            if self._closed:
                raise RuntimeError("the generation engine is closed")
            self._incoming.extend(rows)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="rnnkit-generation",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()

    def close(self) -> None:
        """Cancel every row and stop the loop."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not (self._incoming or self._rows or self._closed):
                    self._cond.wait()
                self._rows.extend(self._incoming)
                self._incoming.clear()
                if self._closed:
                    for row in self._rows:
                        row.fail("cancelled")
                    return
            try:
                self._step_once()
            except Exception as e:  # the loop must outlive any one step
                for row in self._rows:
                    row.fail("error", f"{type(e).__name__}: {e}")
            self._rows = [row for row in self._rows if not row.done]

    def _step_once(self) -> None:
        drawing = []
        for row in self._rows:
            if row.job.cancelled:
                row.fail("cancelled")
            elif row.generated == row.job.max_tokens:  # max_tokens 0
                row.fail("length")
            else:
                drawing.append(row)
        going = []
        for row, token in zip(drawing, _sample(drawing), strict=True):
            try:
                if row.take(token):
                    going.append(row)
            except Exception as e:  # a callback whose client is gone must not stop the others
                row.fail("error", f"{type(e).__name__}: {e}")
        if not going:
            return
        try:
            logits, states = self.stepper.step(np.array([r.token for r in going], np.int64),
                                               [r.state for r in going])
        except Exception as e:
            for row in going:
                row.fail("error", f"{type(e).__name__}: {e}")
            return
        self.steps += 1
        self.rows_stepped += len(going)
        for i, row in enumerate(going):
            row.advance(logits[i], states[i])


class _Draws:
    """The uniform draws ``sample_next`` asks its generator for, one from each row's own
    generator, so a group of rows is sampled at once and each row's tokens still follow its
    seed alone."""

    def __init__(self, rngs: list[np.random.Generator]):
        self.rngs = rngs

    def random(self, shape) -> np.ndarray:
        return np.array([rng.random() for rng in self.rngs]).reshape(shape)


def _sample(rows: list[_Row]) -> list[int]:
    """The next token of every row: one ``sample_next`` per group of rows with the same
    settings (the filtering and softmax are most of a step's time for a small model)."""
    groups: dict[tuple, list[int]] = {}
    for i, row in enumerate(rows):
        job = row.job
        groups.setdefault((job.temperature, job.top_k, job.top_p), []).append(i)
    tokens = [0] * len(rows)
    for (temperature, top_k, top_p), members in groups.items():
        logits = np.stack([rows[i].logits for i in members])
        drawn = sample_next(logits, temperature, top_k, top_p,
                            _Draws([rows[i].job.rng for i in members]))
        for i, token in zip(members, drawn.tolist(), strict=True):
            tokens[i] = int(token)
    return tokens
