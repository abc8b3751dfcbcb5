"""MinGRU / MinLSTM: the parallel scan against the plain loop, step against forward, long sequences,
and bad input."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn.minrnn import MinGRU, MinLSTM
from rnnkit.ops.mingru import mingru, naive_mingru
from rnnkit.ops.minlstm import minlstm, naive_minlstm
from rnnkit.ops.scan import log_space_scan

OPS = {"mingru": (mingru, naive_mingru, 2), "minlstm": (minlstm, naive_minlstm, 3)}
LAYERS = [MinGRU, MinLSTM]


def _grads(outputs, final, tensors):
    """Gradients of a loss that weights every output and the final state differently."""
    gen = torch.Generator().manual_seed(1)
    loss = (outputs * torch.randn(outputs.shape, generator=gen, dtype=outputs.dtype)).sum()
    loss = loss + (final * torch.randn(final.shape, generator=gen, dtype=final.dtype)).sum()
    return torch.autograd.grad(loss, tensors)


def _random_lengths(draw, batch, steps):
    if draw(st.booleans()):
        return None
    lengths = draw(st.lists(st.integers(1, steps), min_size=batch, max_size=batch))
    return torch.tensor(lengths)


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_scan_op_matches_loop(data):
    name = data.draw(st.sampled_from(sorted(OPS)))
    fast, naive, gates = OPS[name]
    steps, batch = data.draw(st.integers(1, 40)), data.draw(st.integers(1, 4))
    features, hidden = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 6))
    layers, bidirectional = data.draw(st.integers(1, 2)), data.draw(st.booleans())
    directions = 1 + bidirectional
    lengths = _random_lengths(data.draw, batch, steps)
    batch_first, with_h0, with_bias = (data.draw(st.booleans()) for _ in range(3))
    chunk, block = data.draw(st.integers(1, 48)), data.draw(st.integers(1, 48))
    gen = torch.Generator().manual_seed(data.draw(st.integers(0, 2**16)))

    def rand(*shape, scale=1.0):
        t = torch.randn(*shape, generator=gen, dtype=torch.float64) * scale
        return t.requires_grad_()

    x = rand(*((batch, steps) if batch_first else (steps, batch)), features)
    weights = []  # w_ih, [b_ih] per layer and direction, as the layers' _flat_weights
    for layer in range(layers):
        for _ in range(directions):
            fan_in = features if layer == 0 else hidden * directions
            weights.append(rand(gates * hidden, fan_in, scale=2.0))
            if with_bias:
                weights.append(rand(gates * hidden))
    h0 = rand(layers * directions, batch, hidden) if with_h0 else None
    tensors = [x, *weights] + ([h0] if with_h0 else [])
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)

    out, final = fast(x, weights, h0, lengths, chunk_size=chunk, block=block, **options)
    ref_out, ref_final = naive(x, weights, h0, lengths, **options)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(final, ref_final)
    for got, want in zip(_grads(out, final, tensors), _grads(ref_out, ref_final, tensors),
                         strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("name", sorted(OPS))
def test_scan_op_takes_a_packed_sequence(name):
    fast, naive, gates = OPS[name]
    torch.manual_seed(0)
    x = torch.randn(6, 3, 2, dtype=torch.float64)
    weights = [torch.randn(gates * 4, 2, dtype=torch.float64), torch.randn(gates * 4,
                                                                           dtype=torch.float64)]
    packed = pack_padded_sequence(x, torch.tensor([6, 2, 4]), enforce_sorted=False)
    padded_out, padded_final = naive(x, weights, None, torch.tensor([6, 2, 4]))
    for op in (fast, naive):
        out, final = op(packed, weights)
        torch.testing.assert_close(pad_packed_sequence(out)[0], padded_out)
        torch.testing.assert_close(final, padded_final)


@settings(max_examples=8, deadline=None)
@given(data=st.data())
def test_layer_scan_matches_loop(data):
    cls = data.draw(st.sampled_from(LAYERS))
    layers, bidirectional, batch_first = (
        data.draw(st.integers(1, 3)), data.draw(st.booleans()), data.draw(st.booleans())
    )
    steps, batch = data.draw(st.integers(1, 17)), data.draw(st.integers(1, 4))
    features, hidden = data.draw(st.integers(1, 9)), data.draw(st.integers(1, 9))
    lengths = _random_lengths(data.draw, batch, steps)
    packed = lengths is not None and data.draw(st.booleans())
    torch.manual_seed(data.draw(st.integers(0, 2**16)))
    kwargs = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                  bias=data.draw(st.booleans()), dtype=torch.float64)
    fast = cls(features, hidden, **kwargs)
    loop = cls(features, hidden, impl="reference", **kwargs)
    loop.load_state_dict(fast.state_dict())
    shape = (batch, steps, features) if batch_first else (steps, batch, features)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(layers * (1 + bidirectional), batch, hidden, dtype=torch.float64,
                     requires_grad=True)

    def run(layer):
        if packed:
            inp = pack_padded_sequence(x, lengths, batch_first=batch_first, enforce_sorted=False)
            out, h_n = layer(inp, h0)
            out = pad_packed_sequence(out, batch_first=batch_first, total_length=steps)[0]
        else:
            out, h_n = layer(x, h0, lengths)
        tensors = [x, h0, *layer.parameters()]
        return out, h_n, _grads(out, h_n, tensors)

    out, h_n, grads = run(fast)
    ref_out, ref_h_n, ref_grads = run(loop)
    torch.testing.assert_close(out, ref_out)
    torch.testing.assert_close(h_n, ref_h_n)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("cls", LAYERS)
def test_variable_lengths_equal_running_each_sequence_alone(cls):
    torch.manual_seed(0)
    layer = cls(3, 5, num_layers=2, bidirectional=True, dtype=torch.float64)
    lengths = torch.tensor([7, 1, 4])
    x = torch.randn(7, 3, 3, dtype=torch.float64)
    h0 = torch.randn(4, 3, 5, dtype=torch.float64)
    out, h_n = layer(x, h0, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone, alone_h = layer(x[:n, b : b + 1], h0[:, b : b + 1])
        torch.testing.assert_close(out[:n, b], alone[:, 0])
        torch.testing.assert_close(h_n[:, b], alone_h[:, 0])
        assert not out[n:, b].any()  # past the end: zero


@pytest.mark.parametrize("name", sorted(OPS))
def test_gradcheck_reference_and_scan(name):
    fast, naive, gates = OPS[name]
    torch.manual_seed(0)
    x = torch.randn(4, 2, 1, dtype=torch.float64, requires_grad=True)
    weights = [torch.randn(gates * 2, 1, dtype=torch.float64, requires_grad=True),
               torch.randn(gates * 2, dtype=torch.float64, requires_grad=True)] * 2
    h0 = torch.randn(2, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([4, 1])

    def both_directions(op, **kw):  # the same weights forward and reverse
        def f(x, weight, bias, h0):
            return op(x, [weight, bias] * 2, h0, lengths, bidirectional=True, **kw)

        return f

    inputs = (x, *weights[:2], h0)
    assert torch.autograd.gradcheck(both_directions(naive), inputs)
    assert torch.autograd.gradcheck(both_directions(fast, chunk_size=2, block=3), inputs,
                                    fast_mode=True)


@pytest.mark.parametrize("cls", LAYERS)
def test_step_equals_forward(cls):
    torch.manual_seed(0)
    layer = cls(4, 6, num_layers=3, dropout=0.3).eval()
    x = torch.randn(13, 2, 4)
    h0 = torch.randn(3, 2, 6)
    out, h_n = layer(x, h0)
    state, ys = h0, []
    for x_t in x:
        y, state = layer.step(x_t, state)
        ys.append(y)
    torch.testing.assert_close(torch.stack(ys), out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(state, h_n, rtol=1e-5, atol=1e-6)
    # Carrying the state across two calls is the same as one call.
    first, h_mid = layer(x[:5], h0)
    second, h_end = layer(x[5:], h_mid)
    torch.testing.assert_close(torch.cat([first, second]), out, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(h_end, h_n, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(OPS))
@pytest.mark.parametrize("scale", [0.5, 8.0])  # 8: saturated gates, decays down to e^-20 a step
def test_long_sequence_stays_finite_and_matches_loop(name, scale):
    fast, naive, gates = OPS[name]
    torch.manual_seed(0)
    steps, batch, hidden = 4096, 2, 4
    x = torch.randn(steps, batch, 3)
    weight = torch.randn(gates * hidden, 3) * scale
    h0 = -5 * torch.rand(batch, hidden)  # negative on purpose: it must never go through a log
    h0 = h0.unsqueeze(0)  # (layers * directions, batch, hidden)
    with torch.no_grad():
        ref_out, ref_final = naive(x.double(), [weight.double()], h0.double())
        out, final = fast(x, [weight], h0)
        assert torch.isfinite(out).all()
        torch.testing.assert_close(out.double(), ref_out, rtol=2e-4, atol=1e-4)
        torch.testing.assert_close(final.double(), ref_final, rtol=2e-4, atol=1e-4)
        # bfloat16 tensors in: the scan runs in float32 and rounds only the result.
        half, _ = fast(x.bfloat16(), [weight.bfloat16()], h0.bfloat16())
        assert half.dtype == torch.bfloat16
        torch.testing.assert_close(half.float(), out, rtol=0.1, atol=0.1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("strongest_decay", [1.0, 200.0])  # the shifted cumsum, logcumsumexp
def test_scan_matches_plain_recurrence(dtype, strongest_decay):
    gen = torch.Generator().manual_seed(0)
    log_a = -strongest_decay * torch.rand(300, 3, 5, generator=gen, dtype=torch.float64)
    log_b = 3 * torch.randn(300, 3, 5, generator=gen, dtype=torch.float64)
    h0 = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    h, want = h0, []
    for a, b in zip(log_a.exp(), log_b.exp(), strict=True):
        h = a * h + b
        want.append(h)
    got = log_space_scan(log_a.to(dtype), log_b.to(dtype), h0.to(dtype), chunk_size=16)
    # float32 logcumsumexp loses ~|log-decay within a chunk| * eps: up to 3200 * 6e-8 here.
    rtol = 3e-4 if dtype == torch.float32 and strongest_decay > 1 else 1e-5
    torch.testing.assert_close(got.double(), torch.stack(want), rtol=rtol, atol=1e-6)


def test_long_sequence_gradients_are_finite():
    torch.manual_seed(0)
    layer = MinGRU(3, 8, num_layers=2, bidirectional=True)
    x = torch.randn(4096, 2, 3, requires_grad=True)
    out, h_n = layer(x, lengths=torch.tensor([4096, 2000]))
    (out.sum() + h_n.sum()).backward()
    assert torch.isfinite(x.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in layer.parameters())


def test_scan_without_initial_state_in_one_chunk():
    log_a = torch.log(torch.tensor([[0.5], [0.25], [1.0]]))
    b = torch.tensor([[2.0], [4.0], [1.0]])
    h = log_space_scan(log_a, b.log())
    torch.testing.assert_close(h, torch.tensor([[2.0], [4.5], [5.5]]))
    h = log_space_scan(log_a, b.log(), torch.tensor([-8.0]), chunk_size=2)
    torch.testing.assert_close(h, torch.tensor([[-2.0], [3.5], [4.5]]))


def test_packed_sequence_sorted_input_and_unbatched_input():
    torch.manual_seed(0)
    layer = MinLSTM(3, 4, num_layers=2)
    x = torch.randn(5, 3, 3)
    lengths = torch.tensor([5, 3, 2])
    out, h_n = layer(x, lengths=lengths)
    packed_out, packed_h = layer(pack_padded_sequence(x, lengths))
    torch.testing.assert_close(pad_packed_sequence(packed_out)[0], out)
    torch.testing.assert_close(packed_h, h_n)
    single, single_h = layer(x[:, 0])
    torch.testing.assert_close(single, out[:, 0])
    torch.testing.assert_close(single_h, h_n[:, 0])


def test_gate_bias_options():
    gru = MinGRU(2, 3, forget_bias=2.0)
    assert torch.equal(gru.bias_ih_l0[:3], torch.full((3,), -2.0))  # 1 - z = sigmoid(2)
    lstm = MinLSTM(2, 3, init="chrono", t_max=50)
    f, i = lstm.bias_ih_l0[:3], lstm.bias_ih_l0[3:6]
    assert torch.equal(i, -f) and (f >= 0).all() and (f <= torch.log(torch.tensor(49.0))).all()


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: m(torch.randn(2, 3, 4, 5)), r"rank 3 .*found shape \(2, 3, 4, 5\)"),
        (lambda m: m(torch.randn(5, 2, 7)), "3 features in its last dimension, found 7"),
        (lambda m: m(torch.randn(5, 2, 3), torch.randn(1, 2, 4)),
         r"\(2, 2, 4\), found \(1, 2, 4\)"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([5, 0])),
         r"between 1 and the sequence length 5, found \[5, 0\]"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([6, 1])),
         r"between 1 and the sequence length 5, found \[6, 1\]"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([5])),
         r"one length per sequence \(2\), found lengths of shape \(1\)"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.tensor([5.0, 1.0])), "integer lengths"),
        (lambda m: m(torch.randn(5, 2, 3), lengths=torch.ones(2, dtype=torch.long,
                                                               device="meta")), "them on meta"),
        (lambda m: m(torch.randn(0, 2, 3)), "at least one time step"),
        (lambda m: m(torch.randn(5, 3), lengths=[5]), "lengths=None with an unbatched"),
    ],
)
def test_bad_input_raises_one_clear_sentence(call, match):
    with pytest.raises(ValueError, match=match):
        call(MinGRU(3, 4, num_layers=2))


def test_bad_step_input_and_options():
    layer = MinLSTM(3, 4)
    with pytest.raises(ValueError, match=r"x_t of shape \(batch, 3\), got \(2, 5\)"):
        layer.step(torch.randn(2, 5))
    with pytest.raises(ValueError, match=r"shape \(1, 2, 4\), got \(2, 4\)"):
        layer.step(torch.randn(2, 3), torch.randn(2, 4))
    with pytest.raises(ValueError, match="unidirectional layer, got bidirectional=True"):
        MinGRU(3, 4, bidirectional=True).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match="'default', 'orthogonal' or 'chrono', got 'xavier'"):
        MinGRU(3, 4, init="xavier")
    with pytest.raises(ValueError, match="impl to be one of fast, reference, found 'scan'"):
        MinGRU(3, 4, impl="scan")
    with pytest.raises(ValueError, match="lengths=None with a PackedSequence, found both"):
        layer(pack_padded_sequence(torch.randn(3, 1, 3), [3]), lengths=[3])
