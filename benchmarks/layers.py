"""Recurrent layer benchmarks on the CPU, each figure a ratio against a baseline timed in the same
run (interleaved repeats, medians).

    .venv/bin/python benchmarks/layers.py [--quick] [--threads N]

- forward+backward of rnnkit LSTM/GRU against torch.nn (batch 32, input = hidden = 256):
  target ratio <= 1.05;
- the plain-loop reference against the fast path (reported);
- streaming: a 2-layer LSTM (input = hidden = 512, batch 1) through ``step`` against torch.nn.LSTM
  called one step at a time: target >= 5x and >= 2,500 steps/s in float32; bfloat16 reported;
  and against its floor, the time to read the weights once (one ``sum`` over the same bytes, for
  the float32 and the bf16 weights): a step reads every weight, so it cannot be faster (target
  >= 50%);
- bf16 autocast against float32 for training (forward+backward, batch 32, 256 wide, T=256):
  rnnkit's LSTM, GRU and MinGRU / MinLSTM scans, and torch.nn.LSTM (reported: the gain depends
  on the processor's matrix units, which the header's flags name);
- the MinGRU scan rows from ``benchmarks/scan.py`` (``bench_scan()``).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import os
import statistics
import time
from pathlib import Path

import torch

import rnnkit.nn as rn
from rnnkit import hardware


class Rows(list):
    """Table rows, each also printed as it lands so a long run shows progress."""

    def append(self, row) -> None:
        print("  " + " | ".join(map(str, row)), flush=True)
        super().append(row)


def interleaved(fns: dict, repeats: int, inner: int = 1) -> dict[str, float]:
    """Median seconds per call of each function; they take turns in every repeat, in an order
    reversed every other repeat so neither always runs first."""
    for fn in fns.values():  # warm-up (oneDNN primitives, caches)
        fn()
    times = {name: [] for name in fns}
    for repeat in range(repeats):
        order = list(fns.items())
        for name, fn in order[::-1] if repeat % 2 else order:
            start = time.perf_counter()
            for _ in range(inner):
                fn()
            times[name].append((time.perf_counter() - start) / inner)
    return {name: statistics.median(ts) for name, ts in times.items()}


def train_step(layer, x):
    def run():
        layer.zero_grad(set_to_none=True)
        out, _ = layer(x)
        out.sum().backward()

    return run


def bench_training(steps_list, repeats, rows):
    """fwd+bwd against torch.nn; ``repeats`` maps T to its number of repeats."""
    for arch, ours_cls, torch_cls in (
        ("LSTM", rn.LSTM, torch.nn.LSTM),
        ("GRU", rn.GRU, torch.nn.GRU),
    ):
        for steps in steps_list:
            torch.manual_seed(0)
            ours, theirs = ours_cls(256, 256), torch_cls(256, 256)
            theirs.load_state_dict(ours.state_dict())
            x = torch.randn(steps, 32, 256)
            t = interleaved(
                {"torch": train_step(theirs, x), "ours": train_step(ours, x)}, repeats[steps]
            )
            rows.append(
                (
                    f"{arch} fwd+bwd T={steps}",
                    "torch.nn",
                    f"{t['torch'] * 1e3:.1f} ms",
                    f"{t['ours'] * 1e3:.1f} ms",
                    f"{t['ours'] / t['torch']:.3f}",
                    "<= 1.05",
                )
            )


def autocast_step(layer, x):
    run = train_step(layer, x)

    def under_bf16():
        with torch.autocast("cpu", torch.bfloat16):
            run()

    return under_bf16


def bench_bf16_training(steps, repeats, rows):
    """The same layer's fwd+bwd in float32 and under bf16 autocast (float32 weights)."""
    for name, cls in (("LSTM", rn.LSTM), ("GRU", rn.GRU), ("MinGRU scan", rn.MinGRU),
                      ("MinLSTM scan", rn.MinLSTM), ("torch.nn.LSTM", torch.nn.LSTM)):
        torch.manual_seed(0)
        layer = cls(256, 256)
        x = torch.randn(steps, 32, 256)
        t = interleaved({"fp32": train_step(layer, x), "bf16": autocast_step(layer, x)}, repeats)
        rows.append((f"{name} fwd+bwd T={steps} bf16", "same layer fp32",
                     f"{t['fp32'] * 1e3:.1f} ms", f"{t['bf16'] * 1e3:.1f} ms",
                     f"{t['fp32'] / t['bf16']:.2f}x faster", "(reported)"))


def bench_reference(steps_list, repeats, rows):
    for arch, cls in (("LSTM", rn.LSTM), ("GRU", rn.GRU)):
        for steps in steps_list:
            torch.manual_seed(0)
            fast, ref = cls(256, 256), cls(256, 256, impl="reference")
            ref.load_state_dict(fast.state_dict())
            x = torch.randn(steps, 32, 256)
            t = interleaved({"fast": train_step(fast, x), "ref": train_step(ref, x)}, repeats)
            rows.append(
                (
                    f"{arch} reference loop T={steps}",
                    "fast path",
                    f"{t['fast'] * 1e3:.1f} ms",
                    f"{t['ref'] * 1e3:.1f} ms",
                    f"{t['ref'] / t['fast']:.2f}",
                    "(reported)",
                )
            )


def bench_streaming(repeats, inner, rows):
    torch.manual_seed(0)
    theirs = torch.nn.LSTM(512, 512, 2)
    ours = rn.LSTM(512, 512, 2)
    ours.load_state_dict(theirs.state_dict())
    low = rn.LSTM(512, 512, 2).to(torch.bfloat16)
    low.load_state_dict(ours.state_dict())
    x = torch.randn(1, 512)
    states = {"torch": None, "fp32": None, "bf16": None}
    # the floor: the weights' bytes read once, as one contiguous buffer (in cache if they fit),
    # summed as float32 words either way (torch's bf16 sum converts, and is slower than a read)
    flat = {dtype: torch.cat([p.detach().flatten() for p in m.parameters()])
            for dtype, m in ((torch.float32, ours), (torch.bfloat16, low))}
    words = {dtype: f.view(torch.float32) for dtype, f in flat.items()}

    def stepper(name, fn):
        def run():
            _, states[name] = fn(states[name])

        return run

    with torch.inference_mode():
        t = interleaved(
            {
                "torch": stepper("torch", lambda s: theirs(x.unsqueeze(0), s)),
                "fp32": stepper("fp32", lambda s: ours.step(x, s)),
                "bf16": stepper("bf16", lambda s: low.step(x.bfloat16(), s)),
                "read fp32": words[torch.float32].sum,
                "read bf16": words[torch.bfloat16].sum,
            },
            repeats,
            inner,
        )
    base = f"{1 / t['torch']:.0f} steps/s"
    rows.append(
        (
            "LSTM stream step fp32",
            "torch.nn 1-step",
            base,
            f"{1 / t['fp32']:.0f} steps/s",
            f"{t['torch'] / t['fp32']:.1f}x",
            ">= 5x, >= 2500/s",
        )
    )
    rows.append(
        (
            "LSTM stream step bf16",
            "torch.nn 1-step",
            base,
            f"{1 / t['bf16']:.0f} steps/s",
            f"{t['torch'] / t['bf16']:.1f}x",
            "(reported)",
        )
    )
    for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16)):
        mb = flat[dtype].numel() * flat[dtype].element_size() / 1e6
        read = t[f"read {name}"]
        rows.append((f"LSTM stream step {name}", f"weight read once ({mb:.1f} MB)",
                     f"{read * 1e6:.0f} us ({mb / 1e3 / read:.0f} GB/s)",
                     f"{t[name] * 1e6:.0f} us", f"{read / t[name]:.0%} of floor", ">= 50%"))


def bench_scan_rows(quick: bool) -> list:
    path = Path(__file__).with_name("scan.py")
    if not path.exists():
        print("benchmarks/scan.py is missing: no MinGRU scan rows")
        return []
    spec = importlib.util.spec_from_file_location("rnnkit_bench_scan", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    takes_quick = "quick" in inspect.signature(module.bench_scan).parameters
    result = module.bench_scan(quick=quick) if takes_quick else module.bench_scan()
    return list(result or [])


def print_table(header, rows) -> None:
    """A markdown table, ready for BENCHMARKS.md."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for i, row in enumerate([header, *rows]):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="fewer sizes and repeats (a smoke run)"
    )
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {hardware.describe()}; load average at start {os.getloadavg()[0]:.1f}")
    rows = Rows()
    bench_training(
        [64] if args.quick else [64, 256, 1024],
        {64: 3} if args.quick else {64: 15, 256: 7, 1024: 4},
        rows,
    )
    bench_reference([64] if args.quick else [64, 256], 2 if args.quick else 3, rows)
    bench_bf16_training(64 if args.quick else 256, 3 if args.quick else 7, rows)
    bench_streaming(3 if args.quick else 9, 50 if args.quick else 300, rows)
    print(f"load average at end {os.getloadavg()[0]:.1f} (other work shares this machine if > 0.5)")
    print_table(("benchmark", "baseline", "baseline time", "rnnkit", "ratio", "target"), rows)
    scan = bench_scan_rows(args.quick)
    if scan:
        print("\nMinGRU scan (benchmarks/scan.py):")
        if isinstance(scan[0], dict):
            print_table(tuple(scan[0]), [tuple(row.values()) for row in scan])
        else:
            for row in scan:
                print(row)


if __name__ == "__main__":
    main()
