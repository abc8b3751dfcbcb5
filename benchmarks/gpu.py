"""GPU speed (issue 17): fused scans, CUDA-graph streaming, variable lengths, Shakespeare per GPU
second; every figure as a ratio against cuDNN measured in the same run.

    python benchmarks/gpu.py                 # everything, about 6 minutes on an H200
    python benchmarks/gpu.py --skip-train    # without the 60-second Shakespeare run
    python benchmarks/gpu.py --smoke         # tiny sizes on any device (the CPU runs the Triton
                                             # kernels in its interpreter): checks the script

Sections (times are medians of CUDA-event timings after warm-up; "x cuDNN" = cuDNN's time over
the row's, so above 1 is faster than cuDNN):
- scan: one layer forward + backward, input = hidden, bf16: cuDNN LSTM, the PyTorch MinGRU scan,
  the fused Triton MinGRU / MinLSTM scans (goal at T=4096 B64 H=1024: >= 10x cuDNN), checked
  against each other first; then the fused kernel alone over a sweep of its block sizes.
- streaming: one step of a 2x1024 LSTM language model per call at batch 1 (and more rows), fp32
  and bf16: cuDNN called per step (torch.nn.LSTM), rnnkit's eager step, the same replayed from a
  CUDA graph (rnnkit.nn.cuda_graphs), and the floor: reading the weights once at the measured
  copy bandwidth (issue goal: graphed <= 20 us at batch 1).
- variable lengths: lengths uniform in [8%, 100%] of T (mean about 54%), forward + backward:
  cuDNN padded (lengths ignored), packed, in length segments (rnnkit.ops.varlen), and the fused
  MinGRU scan padded and with lengths.
- shakespeare: `rnnkit train textgen --config benchmarks/configs/shakespeare_h200.yaml` (60 s
  of training; goal: validation loss <= 1.40), its validation curve. Needs the text: --data, or
  shared/data/text/tinyshakespeare.txt inside or beside the checkout.

Without a CUDA GPU (and without --smoke) it says so in one sentence and exits 0.
``--cpu-varlen`` runs only the variable-length section on the CPU (1 thread, T=256 B=32 H=256).

On the lent H200 (the device tool; only the checkout travels, so copy the text into an ignored
folder and carry it): ``cp ../shared/data/text/tinyshakespeare.txt runs/gpu_data/``, then run,
carrying ``runs/gpu_data``, with timeout_s 560: ``export PYTHONPATH=src PYTHONUNBUFFERED=1;
python3 -m pytest -q -p no:cacheprovider tests/test_triton_scan.py tests/test_cuda_graphs.py
tests/test_varlen.py 2>&1 | tee $OUT/tests.log; python3 benchmarks/gpu.py --data
runs/gpu_data/tinyshakespeare.txt 2>&1 | tee $OUT/gpu.log``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "benchmarks" / "configs" / "shakespeare_h200.yaml"
DATA_PLACES = [ROOT / "shared" / "data" / "text" / "tinyshakespeare.txt",
               ROOT.parent / "shared" / "data" / "text" / "tinyshakespeare.txt"]


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on any device")
    parser.add_argument("--skip-train", action="store_true", help="no Shakespeare run")
    parser.add_argument("--cpu-varlen", action="store_true",
                        help="only the variable-length section, on the CPU (T=256 B=32 H=256)")
    parser.add_argument("--data", type=Path, help="tinyshakespeare.txt")
    parser.add_argument("--config", type=Path, default=CONFIG, help="textgen config file")
    return parser.parse_args()


args = parse_args()
import torch  # noqa: E402

CUDA = torch.cuda.is_available()
if not CUDA and not (args.smoke or args.cpu_varlen):
    print("benchmarks/gpu.py measures CUDA kernels and no CUDA GPU is visible here, so nothing "
          "was measured (--smoke checks the script on this machine).")
    sys.exit(0)
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"  # before triton is imported
DEVICE = torch.device("cuda" if CUDA and not args.cpu_varlen else "cpu")
REPEATS, WARMUP = (1, 1) if args.smoke else (5, 2)

from rnnkit.models.language_model import LanguageModel, LanguageModelConfig  # noqa: E402
from rnnkit.nn import LSTM, minrnn  # noqa: E402
from rnnkit.nn.cuda_graphs import GraphedStep, graphed_step, run_eagerly  # noqa: E402
from rnnkit.ops import varlen  # noqa: E402

try:
    from rnnkit.ops import triton_scan
except ImportError:
    triton_scan = None


def sync():
    if CUDA:
        torch.cuda.synchronize()


def median_ms(fn, repeats=None, warmup=None) -> float:
    repeats, warmup = repeats or REPEATS, WARMUP if warmup is None else warmup
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if DEVICE.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        else:
            t = time.perf_counter()
            fn()
            times.append(1000 * (time.perf_counter() - t))
    return statistics.median(times)


@contextlib.contextmanager
def fused_scan(on: bool):
    """MinGRU / MinLSTM layers with the fused Triton scan on or off, whatever the device."""
    saved = minrnn._use_triton
    minrnn._use_triton = lambda x: on
    try:
        yield
    finally:
        minrnn._use_triton = saved


@contextlib.contextmanager
def segments_on(devices):
    """Variable lengths in length segments on ``devices`` (whatever the hidden size)."""
    saved = varlen.DEVICES, varlen.MIN_FUSED_HIDDEN
    varlen.DEVICES, varlen.MIN_FUSED_HIDDEN = devices, 1
    try:
        yield
    finally:
        varlen.DEVICES, varlen.MIN_FUSED_HIDDEN = saved


def table(header: list[str], rows: list[list]) -> None:
    cells = [header] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for k, r in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    print(flush=True)


def train_step(layer, x, lengths=None):
    """Forward + backward with a fixed output gradient (no loss kernels in the timing)."""
    grad = torch.ones((), dtype=x.dtype, device=x.device)

    def run():
        out, _ = layer(x, None, lengths)
        out.backward(grad.expand_as(out))
    return run


def bandwidth_gbs() -> float:
    """Device-to-device copy bandwidth (read + write), GB/s."""
    n = (1 << 28) if CUDA else (1 << 22)
    a = torch.empty(n, dtype=torch.float32, device=DEVICE)
    b = torch.empty_like(a)
    ms = median_ms(lambda: b.copy_(a), repeats=10)
    return 2 * a.numel() * 4 / ms / 1e6


# -- scan ---------------------------------------------------------------------------------------

def scan_section(sizes, dtype):
    print(f"## scan: one layer forward + backward, input = hidden, {dtype}\n")
    rows = []
    for steps, batch, hidden in sizes:
        torch.manual_seed(0)
        x = torch.randn(steps, batch, hidden, device=DEVICE, dtype=dtype, requires_grad=True)
        lstm = LSTM(hidden, hidden).to(DEVICE, dtype)
        gru = minrnn.MinGRU(hidden, hidden).to(DEVICE, dtype)
        mlstm = minrnn.MinLSTM(hidden, hidden).to(DEVICE, dtype)
        if triton_scan is not None and (steps, batch, hidden) == sizes[0]:
            check_fused(gru, x)
        cudnn = median_ms(train_step(lstm, x))
        with fused_scan(False):
            plain = median_ms(train_step(gru, x))
        fused = fused_l = float("nan")
        if triton_scan is not None:
            with fused_scan(True):
                fused = median_ms(train_step(gru, x))
                fused_l = median_ms(train_step(mlstm, x))
        rows.append([steps, batch, hidden, f"{cudnn:.2f}", f"{plain:.2f} ({cudnn / plain:.2f}x)",
                     f"{fused:.2f} ({cudnn / fused:.1f}x)", f"{fused_l:.2f} ({cudnn / fused_l:.1f}x)"])
    table(["T", "B", "H", "cuDNN LSTM ms", "MinGRU PyTorch scan ms (x cuDNN)",
           "MinGRU fused ms (x cuDNN)", "MinLSTM fused ms (x cuDNN)"], rows)


def check_fused(layer, x):
    """The fused and the PyTorch scans agree on outputs and gradients (relative max error)."""
    results = []
    for on in (False, True):
        layer.zero_grad()
        xx = x.detach().requires_grad_()
        with fused_scan(on):
            out, h_n = layer(xx)
        (out.float().square().mean() + h_n.float().sum()).backward()
        results.append([out, h_n, xx.grad, *[p.grad for p in layer.parameters()]])
    worst = max(((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-12))
                .item() for a, b in zip(results[1], results[0], strict=True))
    print(f"fused vs PyTorch scan, {x.dtype}, outputs / state / gradients: max relative error "
          f"{worst:.2e} ({'ok' if worst < 3e-2 else 'TOO LARGE'})\n")


def kernel_sweep(steps, batch, hidden, dtype, gbs):
    print(f"## fused MinGRU kernel alone (projections given), T={steps} B={batch} H={hidden} "
          f"{dtype}, forward + backward\n")
    proj = torch.randn(steps, batch, 2 * hidden, device=DEVICE, dtype=dtype, requires_grad=True)
    # the least traffic: forward reads 2H and writes H; backward reads 2H and dH, writes 2H
    nbytes = steps * batch * hidden * 8 * proj.element_size()
    rows = []
    for block_t in (16, 32, 64)[: 1 if args.smoke else 3]:
        for block_h in (32, 64, 128)[: 1 if args.smoke else 3]:
            def run(bt=block_t, bh=block_h):
                out, final = triton_scan.ScanFunction.apply(proj, None, None, 2, False, bt, bh)
                out.backward(torch.ones_like(out))
            try:
                ms = median_ms(run)
            except Exception as e:  # a block that does not fit (registers, shared memory)
                rows.append([block_t, block_h, f"failed: {type(e).__name__}", ""])
                continue
            rows.append([block_t, block_h, f"{ms:.3f}", f"{nbytes / ms / 1e6:.0f} "
                         f"({nbytes / ms / 1e6 / gbs:.0%} of copy)"])
    default = triton_scan._block_h(batch, hidden)
    print(f"default blocks: block_t={triton_scan.DEFAULT_BLOCK_T}, block_h={default}")
    table(["block_t", "block_h", "ms", "GB/s on the least traffic"], rows)


# -- streaming ----------------------------------------------------------------------------------

def per_step_us(step, token, state, n) -> float:
    for _ in range(10):
        logits, state = step(token, state)
    sync()
    t = time.perf_counter()
    for _ in range(n):
        logits, state = step(token, state)
    sync()
    return 1e6 * (time.perf_counter() - t) / n


def streaming_section(hidden, layers, batches, n, gbs):
    print(f"## streaming: one step of a {layers}x{hidden} LSTM language model (vocab 65), "
          f"us per step\n")
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        torch.manual_seed(0)
        cfg = LanguageModelConfig(vocab_size=65, arch="lstm", layers=layers, hidden=hidden)
        model = LanguageModel(cfg).to(DEVICE, dtype).eval()
        cudnn_model = LanguageModel(cfg).to(DEVICE, dtype).eval()
        cudnn_model.rnn = torch.nn.LSTM(hidden, hidden, layers, batch_first=True).to(DEVICE,
                                                                                     dtype)
        cudnn_model.load_state_dict(model.state_dict())  # same names and shapes as torch.nn
        weights = sum(p.numel() * p.element_size() for p in model.rnn.parameters())
        floor = 1e6 * weights / (gbs / 2 * 1e9)  # the weights read once (copy counts 2 ways)
        graphed = graphed_step(model) if CUDA else GraphedStep(model, record=run_eagerly)
        with torch.inference_mode():
            token = torch.arange(3, device=DEVICE)
            want, _ = model.step(token, None)
            got, _ = graphed(token, None)
            error = (got.float() - want.float()).abs().max().item()
        print(f"{dtype}: graphed vs eager step, max abs logit difference {error:.2e}")
        for batch in batches:
            token = torch.zeros(batch, dtype=torch.long, device=DEVICE)
            with torch.inference_mode():
                cudnn = per_step_us(cudnn_model.step, token, None, n)
                eager = per_step_us(model.step, token, None, n)
                graph = per_step_us(graphed, token, None, n)
                cudnn_graph = float("nan")
                if CUDA:
                    cudnn_graph = per_step_us(GraphedStep(cudnn_model), token, None, n)
            rows.append([str(dtype).replace("torch.", ""), batch, f"{cudnn:.1f}",
                         f"{cudnn_graph:.1f}", f"{eager:.1f} ({cudnn / eager:.2f}x)",
                         f"{graph:.1f} ({cudnn / graph:.2f}x)", f"{floor:.1f}"])
    print()
    table(["dtype", "batch", "cuDNN per step", "cuDNN graphed", "rnnkit eager (x cuDNN)",
           "rnnkit graphed (x cuDNN)", "floor (weights once)"], rows)


# -- variable lengths ---------------------------------------------------------------------------

def interleaved_ms(fns: dict, repeats=None) -> dict:
    """Medians of ``fns`` timed in turn, one of each per round, so that a machine that slows
    down or speeds up meanwhile affects them alike."""
    for fn in fns.values():
        fn()
    times = {k: [] for k in fns}
    for _ in range(repeats or REPEATS):
        for k, fn in fns.items():
            times[k].append(median_ms(fn, repeats=1, warmup=0))
    return {k: statistics.median(v) for k, v in times.items()}


def varlen_section(steps, batch, hidden, dtype, fused=True):
    # lengths evenly spread from 8% to 100% of T (mean 54%), in random order
    lengths = torch.linspace(0.08 * steps, steps, batch).round().long().clamp(min=1)
    lengths = lengths[torch.randperm(batch, generator=torch.Generator().manual_seed(0))]
    mean = lengths.float().mean().item() / steps
    kernel = "cuDNN" if DEVICE.type == "cuda" else "oneDNN"
    print(f"## variable lengths: T={steps} B={batch} H={hidden} {dtype} on {DEVICE.type}, mean "
          f"length {mean:.0%} of the longest, forward + backward\n")
    torch.manual_seed(0)
    x = torch.randn(steps, batch, hidden, device=DEVICE, dtype=dtype, requires_grad=True)
    lstm = LSTM(hidden, hidden).to(DEVICE, dtype)
    gru = minrnn.MinGRU(hidden, hidden).to(DEVICE, dtype)
    ways = {"packed / masked": (), "in length segments": ("cpu", "cuda")}

    def under(fn, devices=None, fused_on=False):
        def run():
            with fused_scan(fused_on), (contextlib.nullcontext() if devices is None
                                        else segments_on(devices)):
                fn()
        return run

    fns = {f"{kernel} LSTM padded (lengths ignored)": under(train_step(lstm, x))}
    for label, devices in ways.items():
        fns[f"{kernel} LSTM {label}"] = under(train_step(lstm, x, lengths), devices)
    fns["MinGRU PyTorch scan padded"] = under(train_step(gru, x))
    for label, devices in ways.items():
        fns[f"MinGRU PyTorch scan {label}"] = under(train_step(gru, x, lengths), devices)
    if triton_scan is not None and fused:
        fns["MinGRU fused padded"] = under(train_step(gru, x), fused_on=True)
        fns["MinGRU fused with lengths"] = under(train_step(gru, x, lengths), fused_on=True)
    times = interleaved_ms(fns)
    padded = next(iter(times.values()))
    table(["what", "ms", f"/ {kernel} LSTM padded"],
          [[k, f"{ms:.2f}", f"{ms / padded:.2f}"] for k, ms in times.items()])


# -- shakespeare --------------------------------------------------------------------------------

def shakespeare_section(config: Path, data: Path | None, smoke: bool):
    data = data or next((p for p in DATA_PLACES if p.exists()), None)
    if data is None or not data.exists():
        print("## shakespeare: skipped, tinyshakespeare.txt not found (give --data)\n")
        return
    print(f"## shakespeare: rnnkit train textgen --config {config.relative_to(ROOT)}\n")
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["train", "textgen", "--config", str(config), "--data", str(data),
                "--out", str(Path(tmp) / "run"), "--quiet"]
        if smoke:
            argv += ["--max-time", "5s", "--layers", "1", "--hidden", "32", "--embed", "16",
                     "--batch-size", "8", "--seq-len", "32", "--eval-every", "20",
                     "--eval-tokens", "2000", "--device", str(DEVICE), "--precision", "fp32"]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", "import sys; from rnnkit.cli import run; "
                               "sys.exit(run(sys.argv[1:]))", *argv], check=False)
        wall = time.perf_counter() - start
        if done.returncode:
            print(f"training failed with exit code {done.returncode}\n")
            return
        with open(Path(tmp) / "run" / "metrics.csv", newline="") as f:
            curve = [r for r in csv.DictReader(f) if r.get("val_loss")]
    rows = [[r["step"], f"{float(r['time']):.1f}", f"{float(r['val_loss']):.4f}"] for r in curve]
    table(["step", "training s", "val loss (nats/char)"], rows)
    best = min(curve, key=lambda r: float(r["val_loss"]))
    print(f"best validation loss {float(best['val_loss']):.4f} at {float(best['time']):.1f} s "
          f"(goal <= 1.40 within 60 s; for reference, measured elsewhere on an H200: nanoGPT "
          f"1.4735 at 56 s, a plain cuDNN 2x1024 LSTM script 1.4406 at 45 s); wall {wall:.0f} s "
          f"with start-up and evaluations\n")


def main() -> int:
    smoke = args.smoke
    if args.cpu_varlen:
        torch.set_num_threads(1)  # the per-step work is small; a second thread adds contention
        print(f"device: CPU, 1 thread; torch {torch.__version__}\n")
        varlen_section(256, 32, 256, torch.float32, fused=False)
        return 0
    name = torch.cuda.get_device_name() if CUDA else "CPU (smoke run: figures mean nothing)"
    cudnn = torch.backends.cudnn.version() if CUDA else None
    triton = "not installed" if triton_scan is None else triton_scan.triton.__version__
    print(f"device: {name}; torch {torch.__version__}, cuDNN {cudnn}, triton {triton}")
    gbs = bandwidth_gbs()
    print(f"copy bandwidth {gbs:.0f} GB/s (read + write)\n", flush=True)
    began = time.perf_counter()
    dtype = torch.bfloat16
    if smoke:
        scan_section([(40, 2, 16)], dtype)
        if triton_scan is not None:
            kernel_sweep(40, 2, 16, dtype, gbs)
        streaming_section(16, 2, (1, 3), 5, gbs)
        varlen_section(20, 4, 16, torch.float32)
    else:
        scan_section([(4096, 64, 1024), (1024, 64, 1024), (4096, 16, 256)], dtype)
        if triton_scan is not None:
            kernel_sweep(4096, 64, 1024, dtype, gbs)
        streaming_section(1024, 2, (1, 4, 32), 300, gbs)
        varlen_section(1024, 64, 1024, dtype)
    if not args.skip_train:
        shakespeare_section(args.config, args.data, smoke)
    print(f"total {time.perf_counter() - began:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
