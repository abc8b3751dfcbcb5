"""Classification micro-batches: requests that arrive within a few milliseconds of each other
(or while the model is busy with the previous batch) run as one call of the predictor.

One padded forward pass over many texts costs little more than over one, so under load this
turns many small model calls into few large ones. A request whose texts make the predictor
fail (a ``UserError``) fails alone: the batch is then rerun request by request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rnnkit.errors import UserError


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future = field(repr=False)


class Batcher:
    """Collects ``submit(texts)`` calls and runs them together through ``run(all_texts) ->
    results`` (one result per text, in order), at most ``max_items`` texts per batch."""

    def __init__(self, run: Callable[[list[str]], Awaitable[list[Any]]], window_s: float = 0.0,
                 max_items: int = 256, on_batch: Callable[[int], None] | None = None):
        self.run = run
        self.window_s = window_s
        self.max_items = max_items
        self.on_batch = on_batch
        self.batches = 0  # batches run so far (the tests and the metrics read it)
        self._queue: list[_Pending] = []
        self._worker: asyncio.Task | None = None

    async def submit(self, texts: list[str]) -> list[Any]:
        future = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(list(texts), future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    def _take(self) -> list[_Pending]:
        batch, size = [], 0
        while self._queue and (not batch or size + len(self._queue[0].texts) <= self.max_items):
            item = self._queue.pop(0)
            if item.future.done():  # its client went away while it waited
                continue
            batch.append(item)
            size += len(item.texts)
        return batch

    async def _drain(self) -> None:
        while self._queue:
            await asyncio.sleep(self.window_s)  # let the requests arriving together join
            batch = self._take()
            if batch:
                await self._run_batch(batch)

    async def _run_batch(self, batch: list[_Pending]) -> None:
        texts = [t for item in batch for t in item.texts]
        self.batches += 1
        if self.on_batch is not None:
            self.on_batch(len(texts))
        try:
            results = await self.run(texts)
        except UserError as e:
            if len(batch) == 1:
                _settle(batch[0].future, error=e)
            else:  # find the request at fault; the others still get their answers
                for item in batch:
                    await self._run_batch([item])
            return
        except Exception as e:  # a timeout or a fault of the model: every request shares it
            for item in batch:
                _settle(item.future, error=e)
            return
        start = 0
        for item in batch:
            _settle(item.future, result=results[start:start + len(item.texts)])
            start += len(item.texts)

    def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()


def _settle(future: asyncio.Future, result: Any = None, error: BaseException | None = None):
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
