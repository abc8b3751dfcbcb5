"""The fused-kernel ops against their plain-loop references: outputs, final states, gradients."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.nn.utils.rnn import pack_padded_sequence

from rnnkit import ops

OPS = {
    "lstm": (ops.lstm, ops.naive_lstm, 4, {}),
    "gru": (ops.gru, ops.naive_gru, 3, {}),
    "rnn_tanh": (ops.rnn, ops.naive_rnn, 1, {"nonlinearity": "tanh"}),
    "rnn_relu": (ops.rnn, ops.naive_rnn, 1, {"nonlinearity": "relu"}),
}


pytestmark = pytest.mark.usefixtures("one_thread")


def make_weights(gates, input_size, hidden, num_layers, directions, bias, proj, dtype):
    out = proj or hidden
    weights = []
    for layer in range(num_layers):
        for _ in range(directions):
            fan_in = input_size if layer == 0 else out * directions
            weights += [
                torch.randn(gates * hidden, fan_in, dtype=dtype) * 0.5,
                torch.randn(gates * hidden, out, dtype=dtype) * 0.5,
            ]
            if bias:
                weights += [torch.randn(gates * hidden, dtype=dtype) * 0.5 for _ in range(2)]
            if proj:
                weights.append(torch.randn(proj, hidden, dtype=dtype) * 0.5)
    return [w.requires_grad_() for w in weights]


@st.composite
def cases(draw):
    name = draw(st.sampled_from(sorted(OPS)))
    hidden = draw(st.integers(1, 33))
    return {
        "name": name,
        "input_size": draw(st.integers(1, 33)),
        "hidden": hidden,
        "num_layers": draw(st.integers(1, 3)),
        "bidirectional": draw(st.booleans()),
        "batch_first": draw(st.booleans()),
        "bias": draw(st.booleans()),
        "proj": draw(st.integers(0, hidden - 1)) if name == "lstm" else 0,
        "batch": draw(st.integers(1, 4)),
        "steps": draw(st.integers(1, 6)),
        "variable": draw(st.booleans()),
        "with_state": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**16)),
    }


def run_case(c, dtype=torch.float64):
    torch.manual_seed(c["seed"])
    fast, naive, gates, extra = OPS[c["name"]]
    directions = 2 if c["bidirectional"] else 1
    weights = make_weights(
        gates,
        c["input_size"],
        c["hidden"],
        c["num_layers"],
        directions,
        c["bias"],
        c["proj"],
        dtype,
    )
    b, t = c["batch"], c["steps"]
    x = torch.randn(*((b, t) if c["batch_first"] else (t, b)), c["input_size"], dtype=dtype)
    x.requires_grad_()
    lengths = torch.randint(1, t + 1, (b,)) if c["variable"] else None
    state = None
    if c["with_state"]:
        rows = c["num_layers"] * directions
        h = torch.randn(rows, b, c["proj"] or c["hidden"], dtype=dtype, requires_grad=True)
        state = (
            (h, torch.randn(rows, b, c["hidden"], dtype=dtype, requires_grad=True))
            if gates == 4
            else h
        )
    opts = {
        "num_layers": c["num_layers"],
        "bidirectional": c["bidirectional"],
        "batch_first": c["batch_first"],
        **extra,
    }
    results = []
    for op in (fast, naive):
        out, final = op(x, weights, state, lengths, **opts)
        finals = final if isinstance(final, tuple) else (final,)
        loss = (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).view_as(out)).sum()
        loss = loss + sum((f * f.detach().sin()).sum() for f in finals)
        leaves = [x, *weights, *([] if state is None else (state if gates == 4 else [state]))]
        grads = torch.autograd.grad(loss, leaves, allow_unused=True)
        results.append((out, finals, grads))
    return results, lengths


@settings(max_examples=25, deadline=None)
@given(cases())
def test_fast_op_matches_reference(c):
    (out, finals, grads), (ref_out, ref_finals, ref_grads) = run_case(c)[0]
    torch.testing.assert_close(out, ref_out)
    for f, rf in zip(finals, ref_finals, strict=True):
        torch.testing.assert_close(f, rf)
    for g, rg in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(g if g is not None else torch.zeros_like(rg), rg)


def test_outputs_past_the_end_are_zero_and_state_is_taken_at_each_end():
    torch.manual_seed(0)
    weights = make_weights(3, 3, 4, 2, 2, True, 0, torch.float64)
    x = torch.randn(5, 3, 3, dtype=torch.float64)
    lengths = torch.tensor([5, 2, 1])
    for op in (ops.gru, ops.naive_gru):
        out, h = op(x, weights, None, lengths, num_layers=2, bidirectional=True)
        assert out[2:, 1].abs().max() == 0 and out[1:, 2].abs().max() == 0
        # the sequence of length 2 alone gives the same outputs and final state
        alone, h_alone = op(x[:2, 1:2], weights, None, None, num_layers=2, bidirectional=True)
        torch.testing.assert_close(out[:2, 1:2], alone)
        torch.testing.assert_close(h[:, 1:2], h_alone)


@pytest.mark.parametrize("name", sorted(OPS))
def test_reference_ops_pass_gradcheck(name):
    torch.manual_seed(1)
    _, naive, gates, extra = OPS[name]
    proj = 2 if name == "lstm" else 0
    weights = make_weights(gates, 2, 2, 2, 2, True, proj and 1, torch.float64)
    x = torch.randn(3, 2, 2, dtype=torch.float64, requires_grad=True)
    lengths = torch.tensor([3, 2])
    rows, out_size = 4, proj and 1 or 2
    h0 = torch.randn(rows, 2, out_size, dtype=torch.float64, requires_grad=True)
    c0 = torch.randn(rows, 2, 2, dtype=torch.float64, requires_grad=True)
    if name == "rnn_relu":  # keep pre-activations away from relu's kink
        weights = [w.detach().abs().requires_grad_() for w in weights]
        x = x.detach().abs().requires_grad_()

    def f(x, h0, c0, *weights):
        state = (h0, c0) if gates == 4 else h0
        out, final = naive(
            x, list(weights), state, lengths, num_layers=2, bidirectional=True, **extra
        )
        return (out, *(final if gates == 4 else (final,)))

    assert torch.autograd.gradcheck(f, (x, h0, c0, *weights))


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn_tanh"])
@pytest.mark.parametrize("enforce_sorted", [False, True])
def test_packed_input_gives_packed_output(name, enforce_sorted):
    torch.manual_seed(2)
    fast, naive, gates, extra = OPS[name]
    weights = make_weights(gates, 3, 5, 1, 2, True, 0, torch.float64)
    x = torch.randn(6, 4, 3, dtype=torch.float64)
    lengths = torch.tensor([6, 6, 3, 1] if enforce_sorted else [3, 6, 1, 6])
    packed = pack_padded_sequence(x, lengths, enforce_sorted=enforce_sorted)
    out, final = fast(packed, weights, bidirectional=True, **extra)
    ref_out, ref_final = naive(packed, weights, bidirectional=True, **extra)
    assert isinstance(out, type(packed)) and isinstance(ref_out, type(packed))
    torch.testing.assert_close(out.data, ref_out.data)
    torch.testing.assert_close(final, ref_final)
    padded_out, padded_final = fast(x, weights, None, lengths, bidirectional=True, **extra)
    torch.testing.assert_close(padded_final, final)


@pytest.mark.parametrize(("name", "proj"), [(name, 0) for name in sorted(OPS)] + [("lstm", 2)])
def test_fast_cells_match_reference_cells(name, proj):
    torch.manual_seed(3)
    cells = {
        "lstm": (ops.lstm_cell, ops.naive_lstm_cell),
        "gru": (ops.gru_cell, ops.naive_gru_cell),
        "rnn_tanh": (ops.rnn_cell, ops.naive_rnn_cell),
        "rnn_relu": (ops.rnn_cell, ops.naive_rnn_cell),
    }
    fast, naive = cells[name]
    gates, extra = OPS[name][2], OPS[name][3]
    w = make_weights(gates, 3, 4, 1, 1, True, proj, torch.float64)
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, proj or 4, dtype=torch.float64)
    state = (h, torch.randn(2, 4, dtype=torch.float64)) if gates == 4 else h
    outs = [cell(x, state, *w, **extra) for cell in (fast, naive)]
    flat = [o if isinstance(o, tuple) else (o,) for o in outs]
    torch.testing.assert_close(flat[0], flat[1])
    grads = [torch.autograd.grad(sum(t.sum() for t in f), [x, *w]) for f in flat]
    torch.testing.assert_close(grads[0], grads[1])


@pytest.mark.parametrize("name", ["lstm", "gru", "rnn", "mingru", "minlstm"])
def test_every_op_and_its_reference_share_one_signature(name):
    """f(x, weights, initial_state=None, lengths=None, *, num_layers, bidirectional, dropout,
    training, batch_first) -> (outputs, final_state), for the fast op and its naive_ reference."""
    import inspect

    for op in (getattr(ops, name), getattr(ops, f"naive_{name}")):
        params = inspect.signature(op).parameters
        positional = [(p.name, p.default) for p in params.values()
                      if p.kind is p.POSITIONAL_OR_KEYWORD]
        assert positional == [("x", inspect.Parameter.empty), ("weights", inspect.Parameter.empty),
                              ("initial_state", None), ("lengths", None)]
        keywords = {p.name: p.default for p in params.values() if p.kind is p.KEYWORD_ONLY}
        assert {"num_layers": 1, "bidirectional": False, "dropout": 0.0, "training": False,
                "batch_first": False}.items() <= keywords.items()


@pytest.mark.parametrize("has_bf16", [True, False])
def test_lstm_under_bf16_autocast_runs_on_any_cpu(monkeypatch, has_bf16):
    """Without bf16 support on the CPU torch's fused LSTM fails in bf16; rnnkit's runs it in
    float32 there (exactly the float32 result), packed or padded, and keeps bf16 tensors bf16."""
    import importlib

    lstm_op = importlib.import_module("rnnkit.ops.lstm")  # the module, not the op it exports
    if has_bf16 and not lstm_op._cpu_has_bf16_lstm():
        pytest.skip("this CPU has no bf16 LSTM")
    monkeypatch.setattr(lstm_op, "_cpu_has_bf16_lstm", lambda: has_bf16)
    torch.manual_seed(0)
    weights = make_weights(4, 8, 16, 2, 2, True, None, torch.float32)
    x = torch.randn(3, 5, 8, requires_grad=True)
    lengths = torch.tensor([5, 4, 2])
    ref, ref_state = ops.lstm(x, weights, num_layers=2, bidirectional=True, batch_first=True,
                              lengths=lengths)
    (grad_ref,) = torch.autograd.grad(ref.sum(), x)
    with torch.autocast("cpu", torch.bfloat16):
        out, state = ops.lstm(x, weights, num_layers=2, bidirectional=True, batch_first=True,
                              lengths=lengths)
    (grad,) = torch.autograd.grad(out.float().sum(), x)
    tol = 5e-2 if has_bf16 else 0.0
    torch.testing.assert_close(out.float(), ref, atol=tol, rtol=tol)
    torch.testing.assert_close(state[1].float(), ref_state[1], atol=tol, rtol=tol)
    torch.testing.assert_close(grad, grad_ref, atol=tol * 4, rtol=tol * 4)
    packed = pack_padded_sequence(x.detach().bfloat16(), lengths, batch_first=True)
    out, _ = ops.lstm(packed, [w.bfloat16() for w in weights], num_layers=2, bidirectional=True)
    assert out.data.dtype == torch.bfloat16
    torch.testing.assert_close(out.data.float(), pack_padded_sequence(
        ref.detach(), lengths, batch_first=True).data, atol=0.1, rtol=0.1)
