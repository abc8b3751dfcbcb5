"""MinGRU parallel scan against the MinGRU sequential loop (the reference), on CPU.

Both are the same `rnnkit.nn.MinGRU` layer with the same weights: `parallel=True` runs the chunked
log-space scan, `parallel=False` the plain loop over time steps (`naive_mingru`). Training is
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

BATCH, INPUT, HIDDEN = 16, 256, 256
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


def bench_scan(quick: bool = False) -> list[dict]:
    """One row per (mode, T): median loop and scan times in ms and their ratio."""
    torch.manual_seed(0)
    scan = MinGRU(INPUT, HIDDEN)
    loop = MinGRU(INPUT, HIDDEN, parallel=False)
    loop.load_state_dict(scan.state_dict())
    lengths = [256, 1024] if quick else [256, 1024, 4096]
    rows = []
    for mode in ("train", "forward"):
        for steps in lengths:
            repeats = 1 if quick else (3 if steps == 4096 else 5)
            x = torch.randn(steps, BATCH, INPUT, requires_grad=mode == "train")
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
                "batch": BATCH,
                "input": INPUT,
                "hidden": HIDDEN,
                "loop_ms": round(loop_ms, 1),
                "scan_ms": round(scan_ms, 1),
                "ratio": round(loop_ms / scan_ms, 1),
                "target": TARGET.get((mode, steps), "(reported)"),
            })
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
    print(f"batch {BATCH}, input {INPUT}, hidden {HIDDEN}, one layer, float32; medians of "
          "interleaved repeats\n")
    columns = ["benchmark", "T", "loop_ms", "scan_ms", "ratio", "target"]
    header = ["benchmark", "T", "loop (ms)", "scan (ms)", "loop / scan", "target"]
    rows = [[str(r[c]) + ("x" if c == "ratio" else "") for c in columns]
            for r in bench_scan(args.quick)]
    widths = [max(len(v) for v in col) for col in zip(header, *rows, strict=False)]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


if __name__ == "__main__":
    main()
