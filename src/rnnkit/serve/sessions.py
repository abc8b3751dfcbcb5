"""Sessions: the recurrent state a conversation leaves behind, so its next request feeds only its
new prompt.

Kept in memory, least recently used first out: by count (``max_sessions``) and by the bytes of
all states together (``max_bytes``); a session unused for ``ttl_s`` seconds expires. A session
belongs to the model that made it. States are never written in place (the steppers return new
arrays), so a session's state is its own.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from rnnkit.errors import UserError


@dataclass
class Session:
    id: str
    model: str
    state: object = None  # after the whole history; None before the first request
    logits: np.ndarray | None = None  # the next token's, after the state
    pending: list[int] = field(default_factory=list)  # history tokens not yet in the state
    tokens: int = 0  # history length in tokens (in the state and pending)
    nbytes: int = 0
    last_used: float = 0.0
    busy: bool = False  # a request is generating in it


class SessionBusy(UserError):
    """Another request is generating in the session (the server answers 409)."""


class Sessions:
    """id -> Session, with TTL expiry and LRU eviction by count and by total state bytes."""

    def __init__(self, ttl_s: float, max_sessions: int, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self.max_bytes = max_bytes
        self.clock = clock
        self._items: OrderedDict[str, Session] = OrderedDict()  # least recently used first
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def open(self, sid: str, model: str) -> Session:
        """The session ``sid`` marked busy (a new, empty one if unknown or expired); a
        UserError when it belongs to another model or another request is generating in it."""
        with self._lock:
            self._expire()
            session = self._items.get(sid)
            if session is None:
                session = Session(sid, model, last_used=self.clock())
                self._items[sid] = session
            elif session.model != model:
                raise UserError(f"session {sid!r} belongs to model {session.model!r}, not "
                                f"{model!r}; use a new session_id for another model")
            elif session.busy:
                raise SessionBusy(f"session {sid!r} is busy with another request; send the next "
                                f"one when that reply has finished")
            session.busy = True
            self._touch(session)
            return session

    def save(self, session: Session, state, logits: np.ndarray, pending: list[int],
             tokens: int, nbytes: int) -> None:
        """Store the state after the request that ``open`` returned ``session`` for; ``tokens``:
        the history's length now."""
        with self._lock:
            session.busy = False
            if self._items.get(session.id) is not session:
                return  # deleted while it was generating
            session.state, session.logits, session.pending = state, logits, pending
            session.tokens = tokens
            self._bytes += nbytes - session.nbytes
            session.nbytes = nbytes
            self._touch(session)
            self._evict()

    def release(self, session: Session) -> None:
        """End a request that leaves the session as it was (failed or cancelled)."""
        with self._lock:
            session.busy = False
            if session.state is None and self._items.get(session.id) is session:
                self._drop(session.id)  # nothing was ever stored in it

    def delete(self, sid: str) -> bool:
        with self._lock:
            self._expire()
            if sid not in self._items:
                return False
            self._drop(sid)
            return True

    def _touch(self, session: Session) -> None:
        session.last_used = self.clock()
        self._items.move_to_end(session.id)

    def _drop(self, sid: str) -> None:
        self._bytes -= self._items.pop(sid).nbytes

    def _expire(self) -> None:
        now = self.clock()
        for session in list(self._items.values()):
            if now - session.last_used < self.ttl_s:
                break  # the rest were used more recently
            if not session.busy:
                self._drop(session.id)

    def _evict(self) -> None:
        # the most recent session goes last, even when its state alone is over max_bytes
        for sid in list(self._items):
            if len(self._items) <= self.max_sessions and self._bytes <= self.max_bytes:
                break
            if not self._items[sid].busy:
                self._drop(sid)
