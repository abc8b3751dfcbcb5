"""MinGRU parallel scan against the MinGRU sequential loop (the reference), on CPU.

Both are the same `rnnkit.nn.MinGRU` layer with the same weights: `impl="fast"` runs the chunked
log-space scan, `impl="reference"` the plain loop over time steps (`naive_mingru`). Training is
forward + backward of a loss on every output; forward-only runs under torch.no_grad(). The two
are timed interleaved (loop, scan, loop, scan, ...) and each figure is the median of the repeats;
the ratio is loop time / scan time. Run: python benchmarks/scan.py [--quick]
"""

import argparse
import platform
import statistics
import subprocess
import time

import torch

from rnnkit.nn.minrnn import MinGRU

# (batch, input, hidden): the size asked for, where the per-step work is large enough that a CPU
# loop is compute-bound, and a small one where the loop is bound by per-step overhead.
SIZES = [(16, 256, 256), (4, 64, 64)]
TARGET = {("train", 1024): ">= 5x"}


def _time(layer: MinGRU, x: torch.Tensor, train: bool) -> float:
    start = time.perf_counter()
    if train:
        out, h_n = layer(x)
        (out.square().mean() + h_n.sum()).backward()
    else:
        with torch.no_grad():
            layer(x)
    return time.perf_counter() - start


def bench_scan(quick: bool = False, on_row=None) -> list[dict]:
    """One row per (mode, T): median loop and scan times in ms and their ratio; `on_row(row)` is
    called as each row is measured."""
    lengths = [256, 1024] if quick else [256, 1024, 4096]
    rows = []
    for batch, features, hidden in SIZES:
        torch.manual_seed(0)
        scan = MinGRU(features, hidden)
        loop = MinGRU(features, hidden, impl="reference")
        loop.load_state_dict(scan.state_dict())
        for mode in ("train", "forward"):
            for steps in lengths:
                repeats = 1 if quick else (3 if steps == 4096 else 5)
                x = torch.randn(steps, batch, features, requires_grad=mode == "train")
                _time(scan, x, mode == "train")  # warm-up (allocator, thread pool)
                loop_times, scan_times = [], []
                for _ in range(repeats):
                    loop_times.append(_time(loop, x, mode == "train"))
                    scan_times.append(_time(scan, x, mode == "train"))
                loop_ms = 1000 * statistics.median(loop_times)
                scan_ms = 1000 * statistics.median(scan_times)
                rows.append({
                    "benchmark": f"MinGRU {mode}",
                    "T": steps,
                    "batch": batch,
                    "input": features,
                    "hidden": hidden,
                    "loop_ms": round(loop_ms, 1),
                    "scan_ms": round(scan_ms, 1),
                    "ratio": round(loop_ms / scan_ms, 1),
                    "target": TARGET.get((mode, steps), "(reported)"),
                })
                if on_row:
                    on_row(rows[-1])
    return rows


def machine() -> str:
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                  if line.startswith("Model name")), platform.processor() or "unknown cpu")
    return (f"{model}, {torch.get_num_threads()} threads, torch {torch.__version__}, "
            f"python {platform.python_version()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="T in {256, 1024}, one repeat")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {machine()}")
    print("one layer, float32; medians of interleaved repeats\n")
    columns = ["benchmark", "T", "batch", "hidden", "loop_ms", "scan_ms", "ratio", "target"]
    header = ["benchmark", "T", "batch", "input = hidden", "loop (ms)", "scan (ms)",
              "loop / scan", "target"]
    widths = [16, 5, 5, 14, 10, 10, 11, 10]

    def show(row) -> None:
        cells = row if isinstance(row, list) else [
            str(row[c]) + ("x" if c == "ratio" else "") for c in columns]
        print("| " + " | ".join(v.ljust(w) for v, w in zip(cells, widths, strict=True)) + " |",
              flush=True)

    show(header)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    bench_scan(args.quick, on_row=show)


if __name__ == "__main__":
    main()
