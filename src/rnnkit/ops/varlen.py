"""Variable-length batches at the cost of their real tokens: sort by length, run time in
segments, and drop the sequences that have ended from each segment on.

One layer and direction at a time (``run_layers`` calls it): the sequences are sorted longest
first, so at any step the ones still running are a prefix of the batch, and the segment
[t0, t1) runs only that prefix, from the state carried out of the segment before. The reverse
direction first reverses each sequence within its own length (``time_reverse``), so that every
sequence starts at step 0 and the same segments apply.

- ``exact=True`` (a kernel that knows no lengths, such as torch's fused LSTM on padded input):
  a segment ends at every distinct length, so no sequence ends inside one and the state carried
  out is each finished sequence's final state. On the CPU this is what makes torch's oneDNN
  kernels usable for variable lengths: its packed-sequence kernel ran 3.6x (GRU) to 6x (LSTM)
  slower than the padded batch here, at a mean length of 54% of the longest (hidden 128-256).
- ``exact=False`` (a kernel that takes lengths, such as the scan): a few segments whose
  boundaries are picked to leave the least padded work, each segment masking within itself.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# where segments measured faster than the kernels' own handling of lengths (benchmarks/gpu.py
# measures CUDA both ways)
DEVICES = ("cpu",)
# torch's fused kernels: below this hidden size its packed kernel was as fast (1 CPU thread,
# forward + backward: segments 1.1-1.2x packed at hidden 16-32, 0.8x at 64, 0.4x at 128)
MIN_FUSED_HIDDEN = 64
# at most this many segments when the kernel takes lengths: each one costs its own calls
MAX_SEGMENTS = 6


def time_reverse(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence within its own length (dim 0 is time, dim 1 batch); an involution."""
    if lengths is None:
        return x.flip(0)
    steps = torch.arange(x.shape[0], device=x.device).unsqueeze(1)
    last = lengths.to(x.device).unsqueeze(0) - 1
    index = torch.where(steps <= last, last - steps, steps)
    return x.gather(0, index.view(*index.shape, *[1] * (x.dim() - 2)).expand_as(x))


def segment_ends(lengths: list[int], *, exact: bool, max_segments: int = MAX_SEGMENTS
                 ) -> list[int]:
    """The ends of the time segments for lengths sorted longest first: every distinct length
    when ``exact``, else the ``max_segments`` distinct lengths that minimise the padded work
    (sum over segments of its steps times the sequences running at its start)."""
    ends = sorted(set(lengths))
    if exact or len(ends) <= max_segments:
        return ends
    # running(t): how many sequences are longer than t (lengths are sorted, longest first)
    def running(t):
        return sum(1 for n in lengths if n > t)

    # best[k][j]: least work covering steps up to ends[j] with k segments (the last ends there)
    starts = [0] + ends
    inf = float("inf")
    best = [[inf] * len(ends) for _ in range(max_segments + 1)]
    back = [[-1] * len(ends) for _ in range(max_segments + 1)]
    for j, end in enumerate(ends):
        best[1][j] = end * running(0)
    for k in range(2, max_segments + 1):
        for j in range(len(ends)):
            for i in range(j):
                cost = best[k - 1][i] + (ends[j] - starts[i + 1]) * running(starts[i + 1])
                if cost < best[k][j]:
                    best[k][j], back[k][j] = cost, i
    k = min(range(1, max_segments + 1), key=lambda k: best[k][-1])
    chosen, j = [], len(ends) - 1
    while j >= 0 and k >= 1:
        chosen.append(ends[j])
        j, k = back[k][j], k - 1
    return sorted(chosen)


def run_by_length(run, x: Tensor, state: tuple | None, lengths: Tensor, reverse: bool, *,
                  exact: bool) -> tuple[Tensor, tuple]:
    """One layer and direction over the time-major padded ``x`` (T, batch, features) with
    ``lengths`` (CPU int64): ``(outputs (T, batch, out) zero past each end, final state tuple of
    (batch, *) taken at each end)``. ``run(x, state, lengths) -> (y, final)`` runs one segment
    forwards from ``state`` (a tuple of (n, *), or None for zeros); it gets ``lengths`` None when
    ``exact``, and each sequence's length within the segment otherwise."""
    steps, batch = x.shape[0], x.shape[1]
    order = torch.argsort(lengths, descending=True, stable=True)
    sorted_lengths = lengths[order]
    index = order.to(x.device)
    x = x.index_select(1, index)
    if reverse:
        x = time_reverse(x, sorted_lengths)
    if state is not None:
        state = tuple(s.index_select(0, index) for s in state)
    as_list = sorted_lengths.tolist()
    ends = segment_ends(as_list, exact=exact)
    # split once: slicing x per segment would make backward write a zero tensor of x's size
    # for each segment
    sizes = [end - start for start, end in zip([0] + ends[:-1], ends, strict=True)]
    parts = x[: ends[-1]].split(sizes)
    outputs, finished = [], []  # finished: final states, the shortest sequences first
    start, running = 0, batch
    for end, part in zip(ends, parts, strict=True):
        within = None if exact else (sorted_lengths[:running] - start).clamp(max=end - start)
        carry = None if state is None else tuple(s[:running] for s in state)
        y, state = run(part[:, :running], carry, within)
        outputs.append(F.pad(y, (0, 0, 0, batch - running)))
        still = sum(1 for n in as_list if n > end)
        finished.append(tuple(s[still:running] for s in state))
        state = tuple(s[:still] for s in state)
        start, running = end, still
    y = torch.cat(outputs)
    if start < steps:
        y = F.pad(y, (0, 0, 0, 0, 0, steps - start))
    if reverse:
        y = time_reverse(y, sorted_lengths)
    final = tuple(torch.cat(parts[::-1]) for parts in zip(*finished, strict=True))
    unsort = torch.argsort(order).to(x.device)
    return y.index_select(1, unsort), tuple(f.index_select(0, unsort) for f in final)
