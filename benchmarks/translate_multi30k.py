"""Multi30k translation (de->en by default): train within a time budget on the CPU, then report
test BLEU and chrF (sacrebleu, detokenized) with greedy and with beam search, the validation
perplexity, training time and translation speed.

    .venv/bin/python benchmarks/translate_multi30k.py [--max-time 30m] [--threads 2]
        [--src-lang de --tgt-lang en] [--test-limit N] [--out DIR]

Reads ``multi30k.{train,val,test_2016_flickr}.{src,tgt}.gz`` from ``shared/data/translation/``
beside the project (skips when absent): 29,000 training pairs, the 1,014 validation pairs for
model selection, the 1,000 test pairs (flickr 2016) scored once at the end. Greedy and beam search
decode the same test sentences in the same run, so their speeds compare as a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "translation"

# The recipe: a bidirectional GRU encoder (256 per direction) and a GRU decoder with
# multiplicative attention, a joint BPE vocabulary of 8,000 subwords, dropout 0.3, label
# smoothing 0.1, AdamW 2e-3 with a cosine schedule over the time budget, batches of 64. Input
# feeding is off: the decoder then runs over the whole target in one call, which on a CPU trains
# about 1.5 times as many steps in the same time.
SETTINGS = {
    "arch": "gru", "hidden": 256, "embed": 256, "attention": "multiplicative",
    "input_feeding": False, "dropout": 0.3, "vocab_size": 8000, "joint_vocab": True,
    "label_smoothing": 0.1, "lr": 2e-3, "batch_size": 64, "schedule": "cosine",
    "warmup_steps": 200, "epochs": 1000, "max_len": 80, "eval_bleu_sentences": 200,
    "beam": 5, "length_penalty": 0.6,
}


def files(split: str, src_lang: str, tgt_lang: str) -> tuple[Path, Path]:
    return DATA / f"multi30k.{split}.{src_lang}.gz", DATA / f"multi30k.{split}.{tgt_lang}.gz"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--max-time", default="30m", help="training budget (seconds or 90s, 30m)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--src-lang", default="de")
    p.add_argument("--tgt-lang", default="en")
    p.add_argument("--test-limit", type=int, default=None,
                   help="score only the first N test pairs (a quick check, not the benchmark)")
    p.add_argument("--out", type=Path, default=None, help="run directory (default: temporary)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a setting of the recipe, e.g. --set hidden=512 (repeatable)")
    args = p.parse_args(argv)

    needed = [f for split in ("train", "val", "test_2016_flickr")
              for f in files(split, args.src_lang, args.tgt_lang)]
    missing = [f.name for f in needed if not f.is_file()]
    if missing:
        print(f"skipped: {', '.join(missing)} not found in {DATA}")
        return 0
    if args.threads:
        torch.set_num_threads(args.threads)

    from rnnkit.data.parallel import read_parallel
    from rnnkit.tasks import translate
    from rnnkit.train import Trainer

    overrides = dict(kv.split("=", 1) for kv in args.set)
    train_src, train_tgt = files("train", args.src_lang, args.tgt_lang)
    val_src, val_tgt = files("val", args.src_lang, args.tgt_lang)
    settings = {**SETTINGS, **overrides, "src": str(train_src), "tgt": str(train_tgt),
                "val_src": str(val_src), "val_tgt": str(val_tgt), "max_time": args.max_time,
                "quiet": not sys.stdout.isatty(), "device": "cpu"}
    train_cfg, cfg = translate.configs(settings)
    out = args.out or Path(tempfile.mkdtemp(prefix="multi30k-"))
    load_before = os.getloadavg()[0]

    task, model = translate.build(cfg, train_cfg.batch_size, train_cfg.seed)
    trainer = Trainer(model, task, train_cfg, out)
    t0 = time.perf_counter()
    last = trainer.fit()
    train_seconds = time.perf_counter() - t0

    test = read_parallel(*files("test_2016_flickr", args.src_lang, args.tgt_lang))
    if args.test_limit:
        test = test.subset(range(min(args.test_limit, len(test))))
    tr = translate.load(out)
    greedy = tr.evaluate_pairs(test, beam=1)
    beam = tr.evaluate_pairs(test, beam=cfg.beam)
    load_after = os.getloadavg()[0]

    n_params = sum(p.numel() for p in tr.model.parameters())
    pair = f"{args.src_lang}->{args.tgt_lang}"
    print(f"\nMulti30k {pair}: {len(task.train.src)} training pairs, vocabulary "
          f"{tr.vocab.src.vocab_size} joint BPE, {n_params / 1e6:.1f}M parameters")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads {torch.get_num_threads()}, load average {load_before:.1f} before / "
          f"{load_after:.1f} after")
    print(f"training: {train_seconds / 60:.1f} min wall ({trainer.elapsed / 60:.1f} min "
          f"training), {trainer.step} steps, {trainer.step / max(1, len(task.sampler)):.2f} "
          f"epochs, stopped by {trainer.stop_reason}; validation loss {last.get('val_loss', 0):.3f}"
          f" (perplexity {last.get('val_ppl', 0):.2f})")
    print(f"test ({int(beam['sentences'])} sentences){' [subset]' if args.test_limit else ''}:")
    print("| decoding | BLEU | chrF | perplexity | sentences/s | speed vs greedy |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, m in (("greedy", greedy), (f"beam {cfg.beam}", beam)):
        print(f"| {name} | {m['bleu']:.2f} | {m['chrf']:.2f} | {m['ppl']:.2f} | "
              f"{m['sentences_per_s']:.1f} | {m['sentences_per_s'] / greedy['sentences_per_s']:.2f} |")
    samples = test.src[:3]
    for s, t in zip(samples, tr.translate(samples), strict=True):
        print(f"  {s}\n  -> {t}")
    summary = {"pair": pair, "train_seconds": train_seconds, "steps": trainer.step,
               "greedy": greedy, "beam": beam, "val": last, "settings": settings,
               "load_before": load_before, "load_after": load_after}
    (out / "benchmark.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    print(f"run directory: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
