"""A language model's streaming step replayed from CUDA graphs, one per batch-size bucket.

At batch 1 a recurrent step is a handful of small kernels, and launching them from Python costs
more than running them. Capturing the step once in a CUDA graph and replaying it removes the
launches. A graph fixes its tensors' addresses and shapes, so each bucket (1, 2, 4, 8, 16, 32
rows) has its own static buffers: the token, the state (updated in place by the graph), and the
logits. A batch of n rows runs in the smallest bucket that holds it, the rows past n padding
that is computed and ignored (every row of a step is independent of the others); more than 32
rows run eagerly.

`GraphedStep(model)(token, state)` has ``model.step``'s signature and results, with one
difference: the logits and the state it returns are views of the bucket's buffers, valid until
its next call; callers clone what they keep (the server's stepper does). Passing back the state
it just returned (what generation does) skips copying it in. `graphed_step(model)` keeps one per
model and builds a new one when the weights change, since a graph reads the weights (and the
fused copies `rnnkit.nn.streaming` makes of them) from where they were at capture.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Callable

import torch
from torch import Tensor, nn

BUCKETS = (1, 2, 4, 8, 16, 32)

# model -> its GraphedStep; kept outside the model so copies and pickles skip it
_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def bucket_for(rows: int, buckets: tuple[int, ...] = BUCKETS) -> int | None:
    """The smallest bucket that holds ``rows``, or None when none does."""
    return next((b for b in sorted(buckets) if b >= rows), None)


def _map(state, fn):
    return tuple(fn(s) for s in state) if isinstance(state, tuple) else fn(state)


def _parts(state) -> tuple:
    return state if isinstance(state, tuple) else (state,)


def capture_cuda(fn: Callable[[], Tensor], pool) -> tuple[Callable[[], None], Tensor]:
    """Record ``fn`` (which reads and writes only static tensors) in a CUDA graph: the replay and
    the tensor it refreshes. Warm-up runs on a side stream first, as capture requires."""
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(2):
            fn()
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        out = fn()
    return graph.replay, out


def run_eagerly(fn: Callable[[], Tensor], pool) -> tuple[Callable[[], None], Tensor]:
    """The same contract without a graph: each replay runs ``fn`` and copies its result into
    the static output (what the CPU tests of the bucketing use)."""
    out = fn()
    return (lambda: out.copy_(fn())), out


class _Slot:
    """One bucket's static token, state and logits, and the replay that refreshes them."""

    def __init__(self, model: nn.Module, rows: int, record, pool):
        device = next(model.parameters()).device
        self.token = torch.zeros(rows, dtype=torch.long, device=device)
        _, fresh = model.step(self.token, None)  # the state's structure, dtypes and shapes
        self.state = _map(fresh, torch.zeros_like)

        def step() -> Tensor:
            logits, new = model.step(self.token, self.state)
            for static, part in zip(_parts(self.state), _parts(new), strict=True):
                static.copy_(part)
            return logits

        self.replay, self.logits = record(step, pool)
        self.last = None  # the state views handed out last


class GraphedStep:
    """``model.step`` (token (n,), state) -> (logits (n, vocab), state) from per-bucket graphs."""

    def __init__(self, model: nn.Module, buckets: tuple[int, ...] = BUCKETS,
                 record=capture_cuda):
        self.model = model
        self.buckets = tuple(sorted(buckets))
        self.key = weights_key(model)
        self._record = record
        self._slots: dict[int, _Slot] = {}
        self._pool = torch.cuda.graph_pool_handle() if record is capture_cuda else None
        self._lock = threading.Lock()  # one step at a time: the buffers are shared
        self._failed = False

    @torch.inference_mode()
    def __call__(self, token: Tensor, state=None):
        rows = bucket_for(token.shape[0], self.buckets)
        if rows is None or self._failed:
            return self.model.step(token, state)
        with self._lock:
            slot = self._slot(rows)
            if slot is None:
                return self.model.step(token, state)
            n = token.shape[0]
            slot.token[:n].copy_(token)
            if state is None:
                for static in _parts(slot.state):
                    static[:, :n].zero_()
            elif state is not slot.last:
                for static, part in zip(_parts(slot.state), _parts(state), strict=True):
                    static[:, :n].copy_(part)
            slot.replay()
            slot.last = _map(slot.state, lambda s: s[:, :n])
            return slot.logits[:n], slot.last

    def _slot(self, rows: int) -> _Slot | None:
        slot = self._slots.get(rows)
        if slot is None:
            try:
                slot = self._slots[rows] = _Slot(self.model, rows, self._record, self._pool)
            except RuntimeError as e:  # an op that cannot be captured: stay eager, say so once
                self._failed = True
                warnings.warn(f"streaming steps run without CUDA graphs: capture failed ({e})",
                              stacklevel=3)
                return None
        return slot


def weights_key(model: nn.Module) -> tuple:
    """Where the weights are and how often they changed in place; inference-mode tensors have
    no version counter, and only their address counts."""
    key = []
    for p in model.parameters():
        try:
            key.append((p.data_ptr(), p._version))
        except RuntimeError:
            key.append((p.data_ptr(), None))
    return tuple(key)


def graphed_step(model) -> GraphedStep | None:
    """The model's GraphedStep for its current weights, or None where graphs do not apply (not a
    module on CUDA, or in training mode, where dropout would be frozen into the graph)."""
    if not isinstance(model, nn.Module):
        return None
    param = next(model.parameters(), None)
    if param is None or param.device.type != "cuda" or model.training:
        return None
    graphed = _CACHE.get(model)
    if graphed is None or graphed.key != weights_key(model):
        graphed = _CACHE[model] = GraphedStep(model)
    return graphed
