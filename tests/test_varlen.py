"""Variable-length batches run in length segments (rnnkit.ops.varlen): the same outputs, final
states and gradients as the kernels' own handling of lengths, and as each sequence run alone."""

import itertools

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit import ops
from rnnkit.ops import varlen
from rnnkit.ops.varlen import segment_ends

pytestmark = pytest.mark.usefixtures("one_thread")

# name -> (op, gates, input-only weights, extra options)
OPS = {
    "lstm": (ops.lstm, 4, False, {}),
    "lstm-proj": (ops.lstm, 4, False, {}),
    "gru": (ops.gru, 3, False, {}),
    "rnn": (ops.rnn, 1, False, {"nonlinearity": "relu"}),
    "mingru": (ops.mingru, 2, True, {"chunk_size": 4}),
    "minlstm": (ops.minlstm, 3, True, {"chunk_size": 4}),
}


def _weights(name, gates, input_only, features, hidden, layers, directions, gen):
    proj = 3 if name == "lstm-proj" else 0
    out = proj or hidden
    weights = []
    for layer in range(layers):
        for _ in range(directions):
            fan_in = features if layer == 0 else out * directions
            shapes = [(gates * hidden, fan_in), (gates * hidden,)]
            if not input_only:
                shapes = [(gates * hidden, fan_in), (gates * hidden, out), (gates * hidden,),
                          (gates * hidden,)] + ([(proj, hidden)] if proj else [])
            weights += [torch.randn(s, generator=gen, dtype=torch.float64) * 0.7 for s in shapes]
    return weights, out


def _state(name, gates, rows, batch, out, hidden, gen):
    h = torch.randn(rows, batch, out, generator=gen, dtype=torch.float64)
    return (h, torch.randn(rows, batch, hidden, generator=gen, dtype=torch.float64)) \
        if gates == 4 else h


def _run(op, x, weights, h0, lengths, options, packed):
    leaves = [x, *weights] + list(h0 if isinstance(h0, tuple) else (h0,))
    if packed:
        out, final = op(pack_padded_sequence(x, lengths, enforce_sorted=False), weights, h0,
                        **options)
        out = pad_packed_sequence(out, total_length=x.shape[0])[0]
    else:
        out, final = op(x, weights, h0, lengths, **options)
    finals = final if isinstance(final, tuple) else (final,)
    gen = torch.Generator().manual_seed(7)
    loss = (out * torch.randn(out.shape, generator=gen, dtype=out.dtype)).sum()
    for f in finals:
        loss = loss + (f * torch.randn(f.shape, generator=gen, dtype=f.dtype)).sum()
    return out, finals, torch.autograd.grad(loss, leaves)


@pytest.mark.parametrize("packed", [False, True], ids=["lengths", "packed"])
@pytest.mark.parametrize("name", sorted(OPS))
def test_segments_give_the_unsegmented_result(name, packed, monkeypatch):
    op, gates, input_only, extra = OPS[name]
    monkeypatch.setattr(varlen, "MIN_FUSED_HIDDEN", 1)
    calls = []
    run = varlen.run_by_length
    monkeypatch.setattr(varlen, "run_by_length", lambda *a, **k: calls.append(1) or run(*a, **k))
    gen = torch.Generator().manual_seed(len(name))
    steps, batch, features, hidden, layers = 11, 5, 3, 4, 2
    weights, out_size = _weights(name, gates, input_only, features, hidden, layers, 2, gen)
    weights = [w.requires_grad_() for w in weights]
    x = torch.randn(steps, batch, features, generator=gen, dtype=torch.float64,
                    requires_grad=True)
    h0 = _state(name, gates, 2 * layers, batch, out_size, hidden, gen)
    h0 = tuple(h.requires_grad_() for h in h0) if isinstance(h0, tuple) else h0.requires_grad_()
    lengths = torch.tensor([4, 11, 1, 7, 4])  # unsorted, repeated, one of length 1
    options = dict(num_layers=layers, bidirectional=True, **extra)
    segmented = _run(op, x, weights, h0, lengths, options, packed)
    assert len(calls) == 2 * layers  # each layer and direction ran in segments
    monkeypatch.setattr(varlen, "DEVICES", ())
    whole = _run(op, x, weights, h0, lengths, options, packed)
    for got, want in zip(itertools.chain(segmented[:1], *segmented[1:]),
                         itertools.chain(whole[:1], *whole[1:]), strict=True):
        torch.testing.assert_close(got, want)
    assert not segmented[0][4:, 0].any() and not segmented[0][1:, 2].any()  # zero past the end


@pytest.mark.parametrize("name", ["lstm", "mingru"])
def test_segments_equal_each_sequence_run_alone(name, monkeypatch):
    op, gates, input_only, extra = OPS[name]
    monkeypatch.setattr(varlen, "MIN_FUSED_HIDDEN", 1)
    gen = torch.Generator().manual_seed(3)
    weights, out_size = _weights(name, gates, input_only, 2, 3, 1, 1, gen)
    x = torch.randn(9, 4, 2, generator=gen, dtype=torch.float64)
    lengths = torch.tensor([9, 2, 5, 3])
    out, final = op(x, weights, None, lengths, **extra)
    finals = final if isinstance(final, tuple) else (final,)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_final = op(x[:n, b : b + 1], weights, None, None, **extra)
        torch.testing.assert_close(out[:n, b], alone[:, 0])
        alone_finals = alone_final if isinstance(alone_final, tuple) else (alone_final,)
        for f, a in zip(finals, alone_finals, strict=True):
            torch.testing.assert_close(f[:, b], a[:, 0])


def _work(lengths, ends):
    starts = [0] + ends[:-1]
    return sum((e - s) * sum(1 for n in lengths if n > s) for s, e in zip(starts, ends, strict=True))


def test_small_fused_layers_keep_the_packed_kernel(monkeypatch):
    calls = []
    run = varlen.run_by_length
    monkeypatch.setattr(varlen, "run_by_length", lambda *a, **k: calls.append(1) or run(*a, **k))
    weights, _ = _weights("gru", 3, False, 2, varlen.MIN_FUSED_HIDDEN - 1, 1, 1,
                          torch.Generator().manual_seed(0))
    ops.gru(torch.randn(5, 2, 2, dtype=torch.float64), weights, None, torch.tensor([5, 2]))
    assert not calls


def test_segment_ends_are_every_length_or_the_least_padded_work():
    lengths = [20, 17, 9, 9, 8, 3, 2, 1]
    assert segment_ends(lengths, exact=True) == [1, 2, 3, 8, 9, 17, 20]
    ends = segment_ends(lengths, exact=False, max_segments=3)
    assert ends[-1] == 20 and len(ends) <= 3
    # no choice of at most 3 ends among the lengths leaves less padded work
    distinct = sorted(set(lengths))[:-1]
    best = min(_work(lengths, sorted(c) + [20]) for k in range(3)
               for c in itertools.combinations(distinct, k))
    assert _work(lengths, ends) == best
    assert segment_ends([5, 5, 2], exact=False) == [2, 5]
