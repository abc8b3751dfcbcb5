"""The linear recurrence h_t = a_t * h_{t-1} + b_t over time, solved in parallel in log space.

Shared by minGRU and minLSTM (Feng et al. 2024, "Were RNNs all we needed?"), whose decay
a_t in (0, 1) and input term b_t > 0 depend on x_t only, so every h_t is a prefix sum:
    h_t = A_t * h_0 + A_t * sum_{s<=t} b_s / A_s,      A_t = a_1 * ... * a_t,
computed as log A_t = cumsum(log a) and the sum as exp(log A_t + logcumsumexp(log b - log A)).
The initial state may be negative, so it is never put through a log: it enters only as A_t * h_0.

For long sequences log A_t grows like -t, and log A_t + logcumsumexp(...) cancels two large
numbers, losing about |log A_t| * eps of relative precision. The scan therefore runs in chunks:
the prefix sums restart at each chunk, and a short loop over the T / chunk_size chunk boundaries
carries the state across (again as A_t * carry, so the carry may have any sign).

Within a chunk, logcumsumexp(u) is evaluated as m + log(cumsum(exp(u - m))) with m the chunk's
maximum whenever the chunk's total decay is small enough for that to be exact to float precision
(the usual case); torch.logcumsumexp, several times slower on CPU, handles the rest.

Time is dimension 0. Vectors and states may have any trailing shape. `run_scan` runs the scan
as a multi-layer, bidirectional recurrence (`rnnkit.ops._common.recurrence` gives it the other
ops' signature).
"""

import math
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.ops import varlen
from rnnkit.ops._common import recurrence, run_layers, run_loop
from rnnkit.ops.varlen import time_reverse

DEFAULT_CHUNK = 32
DEFAULT_BLOCK = 512

# Half-precision prefix sums over a chunk would lose all accuracy; the scan runs in float32.
_UPCAST = (torch.float16, torch.bfloat16)


def log_space_scan(
    log_a: Tensor, log_b: Tensor, h0: Tensor | None = None, *, chunk_size: int = DEFAULT_CHUNK
) -> Tensor:
    """Return h_t for every t, given log a_t, log b_t of shape (T, ...) and h0 of shape (...)."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}.")
    dtype = log_a.dtype
    if dtype in _UPCAST:
        log_a, log_b = log_a.float(), log_b.float()
        h0 = None if h0 is None else h0.float()
    steps = log_a.shape[0]
    chunk = min(chunk_size, steps)
    n_chunks = -(-steps // chunk)
    pad = n_chunks * chunk - steps
    if pad:
        # Zeros (a = b = 1) after the end: finite, and nothing before the end depends on them.
        widths = [0, 0] * (log_a.dim() - 1) + [0, pad]
        log_a, log_b = F.pad(log_a, widths), F.pad(log_b, widths)
    rest = log_a.shape[1:]
    log_a = log_a.reshape(n_chunks, chunk, *rest)
    log_b = log_b.reshape(n_chunks, chunk, *rest)

    cum_log_a = _chunk_cumsum(log_a)
    u = log_b - cum_log_a
    if (cum_log_a[:, -1] >= -_safe_decay(u.dtype)).all():
        # logcumsumexp(u) = m + log cumsum exp(u - m), m the chunk's maximum: several times faster
        # than torch.logcumsumexp. A term that underflows adds at most e^(decay - log tiny) * max b
        # to a state, under 1e-16 * max b while the chunk's total log-decay is under the bound.
        m = u.amax(dim=1, keepdim=True).detach()
        from_zero = torch.exp(cum_log_a + m) * _chunk_cumsum(torch.exp(u - m))
    else:
        from_zero = torch.exp(cum_log_a + torch.logcumsumexp(u, dim=1))
    if n_chunks == 1 and h0 is None:
        h = from_zero
    else:
        decay = torch.exp(cum_log_a)
        carry = torch.zeros_like(from_zero[0, 0]) if h0 is None else h0.expand(rest)
        carries = []
        # Unbinding the chunk ends once keeps backward from writing a full-size zero tensor per
        # chunk, as indexing inside the loop would.
        for end_decay, end_value in zip(
            decay[:, -1].unbind(0), from_zero[:, -1].unbind(0), strict=True
        ):
            carries.append(carry)
            carry = end_decay * carry + end_value
        h = torch.addcmul(from_zero, decay, torch.stack(carries).unsqueeze(1))
    h = h.reshape(n_chunks * chunk, *rest)[:steps]
    return h.to(dtype)


def _chunk_cumsum(x: Tensor) -> Tensor:
    """cumsum over dim 1 of (chunks, chunk, ...) as one matrix product with a lower-triangular
    matrix of ones: on CPU several times faster than torch.cumsum over a middle dimension."""
    chunk = x.shape[1]
    ones = torch.ones(chunk, chunk, dtype=x.dtype, device=x.device).tril()
    return torch.matmul(ones, x.reshape(x.shape[0], chunk, -1)).view(x.shape)


def _safe_decay(dtype: torch.dtype) -> float:
    """The largest total log-decay within a chunk for the shifted-cumsum form (50 in float32)."""
    return -math.log(torch.finfo(dtype).tiny) - 37


def log_g(v: Tensor) -> Tensor:
    """log g(v) for the paper's positive activation g(v) = v + 0.5 if v >= 0 else sigmoid(v)."""
    # log(v + 0.5) = log1p(2v) - log 2 = log1p(2v) + logsigmoid(0): one expression for both
    # branches, cheaper than torch.where and its backward.
    return torch.log1p(2 * F.relu(v)) + F.logsigmoid(v.clamp(max=0))


def g(v: Tensor) -> Tensor:
    """The paper's positive activation: continuous at 0, where both branches equal 0.5."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def scan_sequence(
    projections: Tensor,
    terms,
    initial_state: Tensor | None,
    lengths: Tensor | None,
    *,
    reverse: bool,
    chunk_size: int,
    block: int = DEFAULT_BLOCK,
) -> tuple[Tensor, Tensor]:
    """Run the scan over a sequence: (outputs (T, batch, hidden), final state (batch, hidden)).

    `projections` (T, batch, ...) are the gate pre-activations in sequence order, and
    `terms(projections)` gives (log a, log b) for any run of time steps. Outputs past each
    sequence's end are zero; the final state is taken at its own last step, and the reverse
    direction starts at each sequence's own last element. Time runs in blocks of `block` steps
    (the state carried across), which keeps every temporary small: past a few tens of MiB each
    new CPU allocation costs page faults, and long sequences ran slower per step without this.
    """
    if reverse:
        projections = time_reverse(projections, lengths)
    carry, blocks = initial_state, []
    for part in projections.split(block):
        h = log_space_scan(*terms(part), carry, chunk_size=chunk_size)
        carry = h[-1]
        blocks.append(h)
    h = blocks[0] if len(blocks) == 1 else torch.cat(blocks)
    if lengths is None:
        final = carry
    else:
        last = (lengths.to(h.device) - 1).view(1, -1, 1).expand(1, *h.shape[1:])
        final = h.gather(0, last).squeeze(0)
    if reverse:
        h = time_reverse(h, lengths)
    if lengths is not None:
        live = torch.arange(h.shape[0], device=h.device).unsqueeze(1) < lengths.to(h.device)
        h = h * live.unsqueeze(2).to(h.dtype)
    return h, final


def run_scan(terms, x, weights, state, lengths, lay, *, dropout, training, batch_first,
             chunk_size: int = DEFAULT_CHUNK, block: int = DEFAULT_BLOCK):
    """A multi-layer recurrence whose every layer and direction is one scan: what `mingru` and
    `minlstm` run (``recurrence(..., zero_state=False)``: state None when none is given, so each
    scan starts from zero without a carry). `terms` maps a direction's projections to
    (log a, log b)."""

    def segment(x, w, s, lengths, reverse=False):
        h, final = scan_sequence(F.linear(x, *w), terms, None if s is None else s[0], lengths,
                                 reverse=reverse, chunk_size=chunk_size, block=block)
        return h, (final,)

    def direction(x, w, s, lengths, reverse):
        if lengths is None or x.device.type not in varlen.DEVICES:
            return segment(x, w, s, lengths, reverse)
        # sequences that have ended drop out of the later segments
        return varlen.run_by_length(lambda x, s, within: segment(x, w, s, within), x, s,
                                    lengths, reverse, exact=False)

    return run_layers(direction, x, weights, state, lengths, lay, dropout=dropout,
                      training=training, batch_first=batch_first)


def scan_ops(name: str, gates: int, terms, cell):
    """The scan op `name` and its reference ``naive_<name>``, the plain loop over
    ``cell(x_t, h, w_ih, [b_ih]) -> h``: how minGRU and minLSTM make theirs."""
    fast = recurrence(
        name, gates, partial(run_scan, terms),
        """Parallel scan over every layer and direction; x may be a PackedSequence. The scan
        restarts its prefix sums every `chunk_size` steps and runs `block` steps at a time.""",
        input_only=True, zero_state=False,
    )
    naive = recurrence(
        f"naive_{name}", gates, partial(run_loop, lambda x_t, s, w: (cell(x_t, s[0], *w),)),
        f"""Reference for `{name}`: the same recurrence one step at a time.""",
        input_only=True,
    )
    return fast, naive
