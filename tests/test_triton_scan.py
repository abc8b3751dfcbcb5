"""The fused Triton scan (rnnkit.ops.triton_scan) against the plain loop: outputs, final states and
gradients, odd lengths, variable lengths, initial state, both directions, bf16 and fp32.

On a machine without CUDA the kernels run in Triton's interpreter: TRITON_INTERPRET=1 must be set
before the kernels are defined (and stays set while they run), so this module sets it before
importing them; nothing else in the suite uses triton. Skipped without triton.
"""

import os

import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from rnnkit.nn import minrnn
from rnnkit.ops import naive_mingru, naive_minlstm

CUDA = torch.cuda.is_available()
DEVICE = "cuda" if CUDA else "cpu"
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")
from rnnkit.ops import triton_scan  # noqa: E402

if not CUDA and type(triton_scan._scan_fwd).__name__ != "InterpretedFunction":
    pytest.skip("rnnkit.ops.triton_scan was imported earlier without TRITON_INTERPRET=1",
                allow_module_level=True)

pytestmark = [
    pytest.mark.usefixtures("one_thread"),
    # the interpreter's numpy exp overflows to inf inside sigmoid, which is the right limit
    pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
]

OPS = {"mingru": (triton_scan.triton_mingru, naive_mingru, 2),
       "minlstm": (triton_scan.triton_minlstm, naive_minlstm, 3)}

# (steps, batch, features, hidden, layers, bidirectional, lengths, with h0, batch_first, block_t)
CASES = [
    pytest.param((37, 3, 5, 20, 1, True, [37, 5, 20], True, False, 16), id="bidir-lengths-h0"),
    pytest.param((70, 2, 4, 7, 2, False, None, False, True, 32), id="2-layers-odd-T"),
    pytest.param((1, 1, 3, 3, 1, False, None, True, False, 16), id="one-step"),
    pytest.param((16, 2, 3, 5, 1, True, [16, 1], False, False, 16), id="length-1-full-chunk"),
]


def _weights(gates, features, hidden, layers, directions, gen):
    weights = []
    for layer in range(layers):
        for _ in range(directions):
            fan_in = features if layer == 0 else hidden * directions
            weights.append(torch.randn(gates * hidden, fan_in, generator=gen, dtype=torch.float64)
                           * 2)
            weights.append(torch.randn(gates * hidden, generator=gen, dtype=torch.float64))
    return weights


def _loss(out, final, gen):
    """Every output and the final state weighted differently."""
    w_out = torch.randn(out.shape, generator=gen, dtype=torch.float64).to(out.device)
    w_final = torch.randn(final.shape, generator=gen, dtype=torch.float64).to(final.device)
    return (out.double() * w_out).sum() + (final.double() * w_final).sum()


def _compare(name, case, dtype, rtol, atol):
    steps, batch, features, hidden, layers, bidirectional, lengths, with_h0, batch_first, block = case
    fused, naive, gates = OPS[name]
    directions = 1 + bidirectional
    gen = torch.Generator().manual_seed(steps * 31 + hidden)
    shape = (batch, steps, features) if batch_first else (steps, batch, features)
    # the reference runs in float64 on the values the fused op sees (rounded to its dtype)
    x = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype).double()
    weights = [w.to(dtype).double() for w in
               _weights(gates, features, hidden, layers, directions, gen)]
    h0 = (torch.randn(layers * directions, batch, hidden, generator=gen, dtype=torch.float64)
          .to(dtype).double() if with_h0 else None)
    lengths = None if lengths is None else torch.tensor(lengths)
    options = dict(num_layers=layers, bidirectional=bidirectional, batch_first=batch_first)

    ref_inputs = [t.requires_grad_() for t in [x, *weights] + ([h0] if with_h0 else [])]
    ref_out, ref_final = naive(x, weights, h0, lengths, **options)
    ref_grads = torch.autograd.grad(_loss(ref_out, ref_final, torch.Generator().manual_seed(1)),
                                    ref_inputs)

    inputs = [t.detach().to(DEVICE, dtype).requires_grad_() for t in ref_inputs]
    x_d, weights_d = inputs[0], inputs[1 : 1 + len(weights)]
    h0_d = inputs[-1] if with_h0 else None
    out, final = fused(x_d, weights_d, h0_d, lengths, block_t=block, **options)
    assert out.dtype == final.dtype == dtype
    grads = torch.autograd.grad(_loss(out, final, torch.Generator().manual_seed(1)), inputs)

    def close(got, want):
        torch.testing.assert_close(got.double().cpu(), want.detach(), rtol=rtol, atol=atol)

    close(out, ref_out)
    close(final, ref_final)
    for got, want in zip(grads, ref_grads, strict=True):
        # gradients are summed over many terms: compare relative to their own scale
        close(got / want.abs().max(), want / want.abs().max())


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("name", sorted(OPS))
def test_fused_scan_matches_the_loop_in_float32(name, case):
    _compare(name, case, torch.float32, 1e-4, 1e-4)


@pytest.mark.parametrize("name", sorted(OPS))
def test_fused_scan_in_bfloat16(name):
    # the scan runs in float32 inside the kernel; only the inputs and outputs are bf16
    _compare(name, (40, 2, 4, 6, 1, True, [40, 23], True, False, 16), torch.bfloat16, 2e-2, 2e-2)


def test_gradient_of_the_final_state_alone_reaches_the_start():
    gen = torch.Generator().manual_seed(3)
    proj = torch.randn(20, 2, 2 * 4, generator=gen).to(DEVICE).requires_grad_()
    h0 = torch.randn(2, 4, generator=gen).to(DEVICE).requires_grad_()
    _, final = triton_scan.fused_scan(proj, 2, h0, block_t=16)
    final.sum().backward()  # an expanded (stride 0) gradient, outputs unused
    ref_proj = proj.detach().cpu().double().requires_grad_()
    ref_h0 = h0.detach().cpu().double().requires_grad_()
    # the naive op takes inputs, not projections: feed the projections through an identity
    _, ref_final = naive_mingru(ref_proj, [torch.eye(8, dtype=torch.float64)], ref_h0[None])
    ref_final[0].sum().backward()
    torch.testing.assert_close(proj.grad.cpu().double(), ref_proj.grad, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(h0.grad.cpu().double(), ref_h0.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("cls", [minrnn.MinGRU, minrnn.MinLSTM])
def test_layer_dispatches_to_the_fused_scan(cls, monkeypatch):
    """The layer's fast path with the fused scan switched on (as on CUDA) takes a PackedSequence
    and gives the reference layer's outputs, states and gradients."""
    monkeypatch.setattr(minrnn, "_use_triton", lambda x: True)
    torch.manual_seed(0)
    fused = cls(3, 5, num_layers=2, bidirectional=True).to(DEVICE)
    loop = cls(3, 5, num_layers=2, bidirectional=True, impl="reference").to(DEVICE)
    loop.load_state_dict(fused.state_dict())
    x = torch.randn(9, 3, 3, device=DEVICE)
    packed = pack_padded_sequence(x, torch.tensor([9, 4, 6]), enforce_sorted=False)
    results = []
    for layer in (fused, loop):
        out, h_n = layer(packed)
        out = pad_packed_sequence(out, total_length=9)[0]
        (out.square().sum() + h_n.sum()).backward()
        results.append((out, h_n, [p.grad for p in layer.parameters()]))
    (out, h_n, grads), (ref_out, ref_h_n, ref_grads) = results
    torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(h_n, ref_h_n, rtol=1e-4, atol=1e-5)
    for got, want in zip(grads, ref_grads, strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


def test_cpu_tensors_keep_the_pytorch_scan():
    assert not minrnn._use_triton(torch.zeros(2, 2))


def test_block_t_must_be_a_power_of_two():
    with pytest.raises(ValueError, match="power of two"):
        triton_scan.fused_scan(torch.zeros(4, 1, 2, device=DEVICE), 2, block_t=24)


_COMPILE = """
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from rnnkit.ops import triton_scan as ts

def compile(kernel, pointers, constants, warps):
    names = kernel.arg_names
    types = {n: ("constexpr" if n in constants else pointers.get(n, "i32")) for n in names}
    triton.compile(ASTSource(fn=kernel, signature=types, constexprs=constants),
                   target=GPUTarget("cuda", 90, 32), options={"num_warps": warps})

for gates in (2, 3):
    flags = {"GATES": gates, "BT": 32, "BH": 64, "REVERSE": True, "HAS_LEN": True}
    warps = ts._warps(32, 64)
    compile(ts._scan_fwd, {"proj": "*bf16", "h0": "*fp32", "lengths": "*i32", "out": "*bf16",
                           "final": "*bf16", "starts": "*fp32"}, {**flags, "HAS_H0": True}, warps)
    compile(ts._scan_bwd, {"proj": "*bf16", "starts": "*fp32", "lengths": "*i32",
                           "d_out": "*bf16", "d_final": "*bf16", "d_proj": "*bf16",
                           "d_h0": "*fp32"}, flags, warps)
print("compiled")
"""


@pytest.mark.skipif(CUDA, reason="CUDA runs the compiled kernels themselves")
def test_kernels_compile_for_hopper_without_a_gpu():
    """The interpreter runs the kernels as Python; compiling them for sm_90 (Triton's own ptxas,
    no GPU needed) catches what only the compiler rejects. In a subprocess: this one has
    TRITON_INTERPRET set."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", _COMPILE], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "compiled" in done.stdout
