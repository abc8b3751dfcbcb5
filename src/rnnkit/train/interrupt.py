"""Ctrl-C during training: the first asks the loop to save a checkpoint after the current step and
stop; a second one quits at once."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class CtrlC:
    """A SIGINT handler for the duration of a fit. ``requested`` turns True at the first Ctrl-C
    (``on_first`` is called, e.g. to say so); a second raises KeyboardInterrupt. Only the main
    thread can install a handler: elsewhere ``installed`` stays False and Ctrl-C raises as usual.
    """

    def __init__(self, on_first: Callable[[], None]) -> None:
        self.on_first = on_first
        self.requested = False
        self.installed = False
        self._old: Any = None

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return

        def handler(signum: int, frame: Any) -> None:
            if self.requested:  # second Ctrl-C: leave now
                raise KeyboardInterrupt
            self.requested = True
            self.on_first()

        self._old = signal.signal(signal.SIGINT, handler)
        self.installed = True

    def remove(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self._old)
            self.installed = False
