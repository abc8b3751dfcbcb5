"""The minGRU / minLSTM scan as one fused Triton kernel each way (forward and backward).

Beside `rnnkit.ops.scan`, whose plain-PyTorch log-space scan is the fast path on the CPU: here the
gates are computed from the projections inside the kernel, and h_t = a_t * h_{t-1} + b_t runs in
linear space in float32 (a_t in (0, 1), so nothing grows: the log-space cancellation of the
PyTorch scan, and its chunk restarts, are not needed). One program owns one sequence and a block
of hidden units and walks time in chunks of `block_t` steps; within a chunk the recurrence is a
`tl.associative_scan` over the (block_t, block_h) tile, and the state carries to the next chunk.
So the projections are read once, the outputs written once, and a sequence's work stops at its own
length: padded steps cost nothing but their zeroed outputs.

Backward runs the adjoint recurrence g_t = dh_t + a_{t+1} g_{t+1} backwards over the chunks. It
needs h_{t-1} in float32, which it recomputes per chunk from the state saved at the chunk's start
(forward keeps only those: T / block_t states per sequence), so bf16 training loses nothing to a
bf16 copy of the states. The reverse direction of a bidirectional layer reads each sequence
backwards from its own last step, without reordering anything in memory.

Importing this module imports triton; `rnnkit.nn.minrnn` does so only for CUDA tensors. Under
``TRITON_INTERPRET=1`` (set before triton is imported) the same kernels run on CPU tensors, which
is how the tests check them without a GPU.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
import triton
import triton.language as tl
from torch import Tensor

from rnnkit.ops._common import recurrence, run_layers

DEFAULT_BLOCK_T = 32


@triton.jit
def _combine(a1, b1, a2, b2):
    # (a1, b1) then (a2, b2): h -> a2 * (a1 * h + b1) + b2
    return a1 * a2, b1 * a2 + b2


@triton.jit
def _pos_g(v):
    """The papers' positive activation g(v) = v + 0.5 for v >= 0, sigmoid(v) below."""
    return tl.where(v >= 0, v + 0.5, tl.sigmoid(v))


@triton.jit
def _softplus(x):
    return tl.maximum(x, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(x)))


@triton.jit
def _load_gates(ptrs, mask, H, GATES: tl.constexpr, WITH_V: tl.constexpr = True):
    """The pre-activations of one tile in float32: (k, k_i, v); k_i is k for minGRU, and v is
    k too when not WITH_V (only the decay is wanted)."""
    k = tl.load(ptrs, mask=mask, other=0.0).to(tl.float32)
    k_i = k
    if GATES == 3:
        k_i = tl.load(ptrs + H, mask=mask, other=0.0).to(tl.float32)
    v = k
    if WITH_V:
        v = tl.load(ptrs + (GATES - 1) * H, mask=mask, other=0.0).to(tl.float32)
    return k, k_i, v


@triton.jit
def _decay(k, k_i, GATES: tl.constexpr):
    """a (the share of the old state kept) and 1 - a, each computed without cancellation.
    minGRU: a = 1 - z = sigmoid(-k); minLSTM: a = f' = sigmoid(d), d = log f - log i."""
    if GATES == 2:
        d = -k
    else:
        d = _softplus(-k_i) - _softplus(-k)
    return tl.sigmoid(d), tl.sigmoid(-d)


@triton.jit
def _terms(ptrs, mask, H, GATES: tl.constexpr):
    """(a, b) of the recurrence for one tile; the identity (1, 0) where masked."""
    k, k_i, v = _load_gates(ptrs, mask, H, GATES)
    a, keep_in = _decay(k, k_i, GATES)
    return tl.where(mask, a, 1.0), tl.where(mask, keep_in * _pos_g(v), 0.0)


@triton.jit
def _scan_fwd(proj, h0, lengths, out, final, starts, T, B, H,
              s_pt, s_pb, s_ot, s_ob,
              GATES: tl.constexpr, BT: tl.constexpr, BH: tl.constexpr, REVERSE: tl.constexpr,
              HAS_H0: tl.constexpr, HAS_LEN: tl.constexpr):
    cols = tl.program_id(0) * BH + tl.arange(0, BH)
    b = tl.program_id(1)
    rows = tl.arange(0, BT)
    col_ok = cols < H
    steps = tl.load(lengths + b) if HAS_LEN else T
    if HAS_H0:
        carry = tl.load(h0 + b * H + cols, mask=col_ok, other=0.0).to(tl.float32)
    else:
        carry = tl.zeros([BH], dtype=tl.float32)
    for c in range(0, tl.cdiv(steps, BT)):
        t = c * BT + rows
        pos = (steps - 1 - t) if REVERSE else t
        mask = (t < steps)[:, None] & col_ok[None, :]
        pos = pos.to(tl.int64)[:, None]
        a, bb = _terms(proj + pos * s_pt + b * s_pb + cols[None, :], mask, H, GATES)
        tl.store(starts + (c * B + b) * H + cols, carry, mask=col_ok)
        decay, local = tl.associative_scan((a, bb), 0, _combine)
        h = decay * carry[None, :] + local
        tl.store(out + pos * s_ot + b * s_ob + cols[None, :], h.to(out.dtype.element_ty),
                 mask=mask)
        # masked rows are the identity, so the tile's last row is the state at the last step
        carry = tl.sum(tl.where(rows[:, None] == BT - 1, h, 0.0), axis=0)
    tl.store(final + b * H + cols, carry.to(final.dtype.element_ty), mask=col_ok)


@triton.jit
def _scan_bwd(proj, starts, lengths, d_out, d_final, d_proj, d_h0, T, B, H,
              s_pt, s_pb, s_dt, s_db,
              GATES: tl.constexpr, BT: tl.constexpr, BH: tl.constexpr, REVERSE: tl.constexpr,
              HAS_LEN: tl.constexpr):
    cols = tl.program_id(0) * BH + tl.arange(0, BH)
    b = tl.program_id(1)
    rows = tl.arange(0, BT)
    col_ok = cols < H
    steps = tl.load(lengths + b) if HAS_LEN else T
    base = proj + b * s_pb + cols[None, :]
    g_next = tl.zeros([BH], dtype=tl.float32)  # the gradient of the state after this chunk
    a_first = tl.zeros([BH], dtype=tl.float32)
    n_chunks = tl.cdiv(steps, BT)
    for i in range(0, n_chunks):
        c = n_chunks - 1 - i
        t = c * BT + rows
        pos = (steps - 1 - t) if REVERSE else t
        prev = (steps - t) if REVERSE else t - 1
        nxt = (steps - 2 - t) if REVERSE else t + 1
        ok = t < steps
        mask = ok[:, None] & col_ok[None, :]
        pos64 = pos.to(tl.int64)[:, None]
        k, k_i, v = _load_gates(base + pos64 * s_pt, mask, H, GATES)
        a, keep_in = _decay(k, k_i, GATES)
        # h_{t-1} from the state at the chunk's start: scan the terms shifted by one step
        prev_mask = ((rows >= 1) & ok)[:, None] & col_ok[None, :]
        a_p, b_p = _terms(base + prev.to(tl.int64)[:, None] * s_pt, prev_mask, H, GATES)
        start = tl.load(starts + (c * B + b) * H + cols, mask=col_ok, other=0.0)
        decay, local = tl.associative_scan((a_p, b_p), 0, _combine)
        h_prev = decay * start[None, :] + local
        # the coefficient a_{t+1} of the adjoint recurrence; 0 after the last step
        next_mask = (t + 1 < steps)[:, None] & col_ok[None, :]
        k_n, k_in, _ = _load_gates(base + nxt.to(tl.int64)[:, None] * s_pt, next_mask, H, GATES,
                                   False)
        a_n, _ = _decay(k_n, k_in, GATES)
        a_n = tl.where(next_mask, a_n, 0.0)
        dh = tl.load(d_out + pos64 * s_dt + b * s_db + cols[None, :], mask=mask,
                     other=0.0).to(tl.float32)
        d_last = tl.load(d_final + b * H + cols, mask=col_ok, other=0.0).to(tl.float32)
        dh += tl.where((t == steps - 1)[:, None], d_last[None, :], 0.0)
        carry, local_g = tl.associative_scan((a_n, dh), 0, _combine, reverse=True)
        g = local_g + carry * g_next[None, :]
        g_next = tl.sum(tl.where(rows[:, None] == 0, g, 0.0), axis=0)
        a_first = tl.sum(tl.where(rows[:, None] == 0, a, 0.0), axis=0)
        act = _pos_g(v)
        d_act = tl.where(v >= 0, 1.0, act * (1.0 - act))
        # d/dd of a * h_prev + (1 - a) * g(v) with a = sigmoid(d) is a (1 - a) (h_prev - g(v))
        dd = g * a * keep_in * (h_prev - act)
        if GATES == 2:
            dk = -dd  # d = -k
        else:
            dk = dd * tl.sigmoid(-k)  # d = softplus(-k_i) - softplus(-k_f)
            dk_i = -dd * tl.sigmoid(-k_i)
        dv = g * keep_in * d_act
        grad = d_proj + pos64 * (B * GATES * H) + b * (GATES * H) + cols[None, :]
        ty = d_proj.dtype.element_ty
        tl.store(grad, dk.to(ty), mask=mask)
        if GATES == 2:
            tl.store(grad + H, dv.to(ty), mask=mask)
        else:
            tl.store(grad + H, dk_i.to(ty), mask=mask)
            tl.store(grad + 2 * H, dv.to(ty), mask=mask)
    # after the first chunk: dL/dh0 = a_0 * g_0
    tl.store(d_h0 + b * H + cols, a_first * g_next, mask=col_ok)


def _block_h(batch: int, hidden: int) -> int:
    """The widest block of hidden units that still gives a few hundred programs (more than the
    SMs of a large GPU), and no wider than the hidden size needs."""
    for block in (64, 32):
        if block <= triton.next_power_of_2(hidden) and batch * triton.cdiv(hidden, block) >= 256:
            return block
    return max(16, min(32, triton.next_power_of_2(hidden)))


def _warps(block_t: int, block_h: int) -> int:
    """Eight tile elements per thread: compiled for sm_90 (ptxas -v), the backward kernel spilled
    registers at 16 (255 registers and up to 500 bytes of spills at 32 x 64 on 4 warps) and used
    about 145 registers, unspilled, at 8; the forward kernel fits either way."""
    return max(1, min(16, block_t * block_h // 256))


class ScanFunction(torch.autograd.Function):
    """(projections (T, batch, gates * hidden), h0 (batch, hidden) or None, lengths (batch,) int32
    on the device or None) -> (outputs (T, batch, hidden), final state (batch, hidden))."""

    @staticmethod
    def forward(ctx, proj, h0, lengths, gates, reverse, block_t, block_h):
        if proj.stride(-1) != 1:
            proj = proj.contiguous()
        steps, batch, width = proj.shape
        hidden = width // gates
        block_h = block_h or _block_h(batch, hidden)
        # padded steps are never written by the kernel
        out = (torch.zeros if lengths is not None else torch.empty)(
            steps, batch, hidden, dtype=proj.dtype, device=proj.device)
        final = proj.new_empty(batch, hidden)
        starts = torch.empty(triton.cdiv(steps, block_t), batch, hidden, dtype=torch.float32,
                             device=proj.device)
        grid = (triton.cdiv(hidden, block_h), batch)
        _scan_fwd[grid](proj, h0 if h0 is not None else final, lengths if lengths is not None
                        else final, out, final, starts, steps, batch, hidden, proj.stride(0),
                        proj.stride(1), out.stride(0), out.stride(1), gates, block_t, block_h,
                        reverse, h0 is not None, lengths is not None,
                        num_warps=_warps(block_t, block_h))
        ctx.save_for_backward(proj, starts, lengths)
        ctx.options = (gates, reverse, block_t, block_h, h0 is not None,
                       None if h0 is None else h0.dtype)
        return out, final

    @staticmethod
    def backward(ctx, d_out, d_final):
        proj, starts, lengths = ctx.saved_tensors
        gates, reverse, block_t, block_h, has_h0, h0_dtype = ctx.options
        steps, batch, width = proj.shape
        hidden = width // gates
        d_final = d_final.contiguous()
        if d_out.stride(-1) != 1:  # e.g. the expanded gradient of a sum
            d_out = d_out.contiguous()
        d_proj = (torch.zeros_like if lengths is not None else torch.empty_like)(
            proj, memory_format=torch.contiguous_format)
        d_h0 = torch.empty(batch, hidden, dtype=torch.float32, device=proj.device)
        grid = (triton.cdiv(hidden, block_h), batch)
        _scan_bwd[grid](proj, starts, lengths if lengths is not None else d_h0, d_out, d_final,
                        d_proj, d_h0, steps, batch, hidden, proj.stride(0), proj.stride(1),
                        d_out.stride(0), d_out.stride(1), gates, block_t, block_h, reverse,
                        lengths is not None, num_warps=_warps(block_t, block_h))
        return d_proj, d_h0.to(h0_dtype) if has_h0 else None, None, None, None, None, None


def fused_scan(proj: Tensor, gates: int, h0: Tensor | None = None, lengths: Tensor | None = None,
               *, reverse: bool = False, block_t: int = DEFAULT_BLOCK_T,
               block_h: int | None = None) -> tuple[Tensor, Tensor]:
    """The scan of one layer and direction from its projections ([k; v] for minGRU, gates=2;
    [k_f; k_i; v] for minLSTM, gates=3), time-major. Outputs past a sequence's end are zero and
    its final state is the one at its own last step; `reverse` reads each sequence backwards from
    there. `block_t` (a power of two) steps per chunk, `block_h` hidden units per program (None:
    picked from the batch and hidden sizes)."""
    if block_t < 1 or block_t & (block_t - 1):
        raise ValueError(f"block_t must be a power of two, got {block_t}")
    if lengths is not None:
        lengths = lengths.to(proj.device, torch.int32)
    return ScanFunction.apply(proj, h0, lengths, gates, reverse, block_t, block_h)


def run_fused_scan(gates, x, weights, state, lengths, lay, *, dropout, training, batch_first,
                   block_t: int = DEFAULT_BLOCK_T):
    """A multi-layer, bidirectional recurrence whose every layer and direction is one fused scan
    (``recurrence(..., zero_state=False)``: state None when none is given)."""

    def direction(x, w, s, lengths, reverse):
        h, final = fused_scan(F.linear(x, *w), gates, None if s is None else s[0], lengths,
                              reverse=reverse, block_t=block_t)
        return h, (final,)

    return run_layers(direction, x, weights, state, lengths, lay, dropout=dropout,
                      training=training, batch_first=batch_first)


_DOC = """{name} with the fused Triton scan (CUDA tensors, or CPU ones under TRITON_INTERPRET=1);
same signature and results as `rnnkit.ops.{name}`; `block_t` steps per chunk."""

triton_mingru = recurrence("triton_mingru", 2, partial(run_fused_scan, 2),
                           _DOC.format(name="mingru"), input_only=True, zero_state=False)
triton_minlstm = recurrence("triton_minlstm", 3, partial(run_fused_scan, 3),
                            _DOC.format(name="minlstm"), input_only=True, zero_state=False)
