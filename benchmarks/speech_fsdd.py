"""Speech recognition on the Free Spoken Digit Dataset (FSDD), end to end through rnnkit.tasks.

Official split: recordings with index 0-4 are the test set, 5-49 training; we hold index 5-9 out
of training for validation (checkpoint choice), so the model trains on index 10-49.

(a) isolated digits: one recording, one digit; word accuracy = share of test recordings
    transcribed exactly (target >= 99%).
(b) connected digits: 3-7 random recordings concatenated per utterance with short pauses, test
    utterances from test recordings only, training ones from training recordings only; CTC
    decoding, WER over digits (target <= 3%).
joint (the default): one model trained on the connected utterances and the single training
    recordings together, tested on both (a) and (b).
loso: leave one speaker out, speaker-independent accuracy. For each of the six speakers, a model
    trained with the task's defaults (only ``--max-time``, the seed and any ``--set`` changed) on
    the other five (index 5-49; index 0-4 of those five for validation) is tested on all 500
    recordings of the sixth; reported per speaker and as the mean. The default recogniser is an
    ensemble of two, trained side by side, a core each: on 2 cores run ``--jobs 1 --threads 2``
    (one rotation at a time); ``--jobs 2 --threads 1 --set ensemble=1`` runs two single models.

Each part writes its utterances as WAV files plus a CSV manifest to a temporary folder and
trains with ``rnnkit.tasks.speech.train``, as a user would. Reported: training wall time (with
feature extraction), test accuracy / WER / CER, and the real-time factor of transcription
(seconds of compute per second of audio: reading, features, network and decoding).

Usage: .venv/bin/python benchmarks/speech_fsdd.py [--part a|b|both|joint|loso] [--max-time 10m]
       .venv/bin/python benchmarks/speech_fsdd.py --part loso --max-time 6m --jobs 1 --threads 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from rnnkit import hardware

FSDD = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "speech" / "fsdd" / \
    "recordings"
RATE = 8000
SPEAKERS = ("george", "jackson", "lucas", "nicolas", "theo", "yweweler")


def recordings() -> dict[str, list[tuple[Path, str]]]:
    """``{"train": [...], "val": [...], "test": [...]}`` of (path, digit)."""
    split: dict[str, list[tuple[Path, str]]] = {"train": [], "val": [], "test": []}
    for p in sorted(FSDD.glob("*.wav")):
        digit, _speaker, index = p.stem.split("_")
        i = int(index)
        split["test" if i < 5 else "val" if i < 10 else "train"].append((p, digit))
    return split


def write_manifest(path: Path, rows: list[tuple[Path, str]]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "transcript"])
        w.writerows((str(p), t) for p, t in rows)
    return path


def connected(rows: list[tuple[Path, str]], n: int, folder: Path, seed: int
              ) -> list[tuple[Path, str]]:
    """``n`` utterances of 3-7 recordings drawn from ``rows``, joined by 20-150 ms pauses of
    faint noise; transcripts are the digits without spaces (one character per word)."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    cache: dict[Path, np.ndarray] = {}
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        parts, text = [], ""
        for _ in range(rng.randint(3, 7)):
            p, digit = rng.choice(rows)
            if p not in cache:
                audio, rate = sf.read(p, dtype="float32")
                assert rate == RATE, p
                cache[p] = audio
            pause = int(RATE * rng.uniform(0.02, 0.15))
            parts += [cache[p], (2e-3 * noise.standard_normal(pause)).astype(np.float32)]
            text += digit
        path = folder / f"utt{i:05d}.wav"
        sf.write(path, np.concatenate(parts), RATE)
        out.append((path, text))
    return out


def words(text: str) -> str:
    return " ".join(text)  # each digit is a word


def train_model(name: str, train_rows, val_rows, work: Path, args):
    """``(recogniser, training seconds, steps)`` of a run trained on ``train_rows``."""
    from rnnkit.tasks import speech

    train_csv = write_manifest(work / f"{name}_train.csv", train_rows)
    val_csv = write_manifest(work / f"{name}_val.csv", val_rows)
    run_dir = (args.keep or work) / f"run_{name}"
    settings = dict(
        features="logmel", n_mels=40, arch="lstm", layers=args.layers, hidden=args.hidden,
        bidirectional=True, subsample=args.subsample, conv_channels=128, dropout=0.1,
        lm_order=0, batch_size=args.batch_size, lr=args.lr, epochs=args.epochs,
        max_time=args.max_time, seed=args.seed, device=args.device, quiet=not args.progress,
        eval_every=args.eval_every, normalize="global", augment=False,
        ensemble=1)  # as measured before loso
    t0 = time.perf_counter()
    rec = speech.train(train_csv, run_dir, val=val_csv, **settings)
    return rec, time.perf_counter() - t0, _last_step(run_dir)


def test_model(rec, part: str, train_name: str, train_utts: int, train_s: float, steps,
               test_rows) -> dict:
    """Transcribe ``test_rows`` with ``rec``: digit error rates, exact utterances and RTF."""
    from rnnkit.metrics.speech import error_rates

    paths = [p for p, _ in test_rows]
    refs = [t for _, t in test_rows]
    audio_s = sum(sf.info(str(p)).duration for p in paths)
    t0 = time.perf_counter()
    hyps = rec.transcribe(paths)
    decode_s = time.perf_counter() - t0
    m = error_rates([words(r) for r in refs], [words(h) for h in hyps])
    exact = sum(r == h for r, h in zip(refs, hyps, strict=True)) / len(refs)
    return {"part": part, "trained_on": train_name, "train_utts": train_utts,
            "test_utts": len(test_rows), "utterance_accuracy": exact, "wer": m["wer"],
            "cer": m["cer"], "val_cer": rec.metrics["val"]["cer"], "train_s": train_s,
            "steps": steps, "test_audio_s": audio_s, "transcribe_s": decode_s,
            "rtf": decode_s / audio_s}


def loso_rows(held_out: str) -> dict[str, list[tuple[Path, str]]]:
    """Train (index 5-49) and validation (index 0-4) recordings of the other speakers, and all
    recordings of ``held_out`` as the test set."""
    split: dict[str, list[tuple[Path, str]]] = {"train": [], "val": [], "test": []}
    for p in sorted(FSDD.glob("*.wav")):
        digit, speaker, index = p.stem.split("_")
        part = "test" if speaker == held_out else "val" if int(index) < 5 else "train"
        split[part].append((p, digit))
    return split


def _setting(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise SystemExit(f"--set takes KEY=VALUE, found {text!r}")
    try:
        return key.replace("-", "_"), json.loads(value)
    except ValueError:
        return key.replace("-", "_"), value


def loso_rotation(speaker: str, opts: dict) -> dict:
    """Train on the five other speakers with the task's defaults (plus ``opts["set"]``), test on
    ``speaker``; run in a worker process of its own."""
    from rnnkit.tasks import speech

    if opts["threads"]:
        torch.set_num_threads(opts["threads"])
    rows = loso_rows(speaker)
    work = Path(opts["work"])
    train_csv = write_manifest(work / f"loso_{speaker}_train.csv", rows["train"])
    val_csv = write_manifest(work / f"loso_{speaker}_val.csv", rows["val"])
    run_dir = work / f"run_loso_{speaker}"
    settings = dict(max_time=opts["max_time"], seed=opts["seed"], device=opts["device"],
                    quiet=True, **opts["set"])
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    rec = speech.train(train_csv, run_dir, val=val_csv, **settings)
    train_s = time.perf_counter() - t0
    hyps = rec.transcribe([p for p, _ in rows["test"]])
    right = sum(h == d for h, (_, d) in zip(hyps, rows["test"], strict=True))
    wrong = Counter(f"{d}->{h or '-'}" for h, (_, d) in zip(hyps, rows["test"], strict=True)
                    if h != d)
    used = json.loads((run_dir / "config.json").read_text()).get("precision", {}).get("used")
    return {"held_out": speaker, "train_utts": len(rows["train"]), "test_utts": len(hyps),
            "accuracy": right / len(hyps), "val_cer": rec.metrics["val"]["cer"],
            "train_s": train_s, "steps": _last_step(run_dir), "precision": used,
            "load": (load0 + os.getloadavg()[0]) / 2,
            "confusions": " ".join(f"{k}:{n}" for k, n in wrong.most_common(4))}


def run_loso(args) -> list[dict]:
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context

    speakers = args.speakers.split(",") if args.speakers else list(SPEAKERS)
    unknown = sorted(set(speakers) - set(SPEAKERS))
    if unknown:
        raise SystemExit(f"unknown speakers {unknown}; FSDD has {', '.join(SPEAKERS)}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or tmp  # --keep: the run folders stay there, to load the models later
        Path(work).mkdir(parents=True, exist_ok=True)
        opts = {"threads": args.threads, "work": str(work), "max_time": args.max_time,
                "seed": args.seed, "device": args.device, "set": dict(map(_setting, args.set))}
        with ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
            futures = [pool.submit(loso_rotation, s, opts) for s in speakers]
            results = []
            for f in futures:
                results.append(f.result())
                print(json.dumps(results[-1]), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end; settings changed: "
          f"{opts['set'] or 'none'}, max_time {args.max_time}")
    print("| held-out speaker | train utts | test utts | accuracy | val CER | train time | steps "
          "| load |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['held_out']} | {r['train_utts']} | {r['test_utts']} | "
              f"{100 * r['accuracy']:.2f}% | {100 * r['val_cer']:.2f}% | {r['train_s']:.0f} s | "
              f"{r['steps']} | {r['load']:.1f} |")
    mean = sum(r["accuracy"] for r in results) / len(results)
    print(f"| **mean** | | | **{100 * mean:.2f}%** | | | | |")
    return results


def _last_step(run_dir: Path) -> int | None:
    """The last training step of a run (of an ensemble's first member)."""
    log = run_dir / "metrics.csv"
    if not log.is_file():
        log = run_dir / "members" / "member-0" / "metrics.csv"
    if not log.is_file():
        return None
    rows = list(csv.DictReader(open(log, encoding="utf-8")))
    return int(rows[-1]["step"]) if rows and "step" in rows[-1] else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--part", choices=["a", "b", "both", "joint", "loso"], default="joint",
                    help="a: isolated digits; b: connected; both: one model each; joint: one "
                         "model trained on both kinds, tested on both; loso: leave one speaker "
                         "out, the task's default recipe")
    ap.add_argument("--speakers", default=None, help="loso: the held-out speakers, comma-"
                    "separated (default: all six)")
    ap.add_argument("--jobs", type=int, default=1, help="loso: rotations run at the same time")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="loso: a task or trainer setting changed from its default (repeatable)")
    ap.add_argument("--max-time", default="10m", help="training budget per part")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--hidden", type=int, default=160)
    ap.add_argument("--subsample", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--eval-every", type=int, default=None)
    ap.add_argument("--connected-train", type=int, default=2400)
    ap.add_argument("--connected-test", type=int, default=300)
    ap.add_argument("--mix-isolated", action="store_true",
                    help="(b) also train on the single training recordings")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--keep", type=Path, default=None, help="keep the run folders here")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args()
    if not FSDD.is_dir():
        print(f"skipped: FSDD recordings not found at {FSDD}")
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.part == "loso":
        print(f"FSDD leave one speaker out; {hardware.describe()}; {args.jobs} jobs of "
              f"{args.threads or torch.get_num_threads()} threads; load average "
              f"{os.getloadavg()[0]:.1f} at start", flush=True)
        results = run_loso(args)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2) + "\n")
        return
    split = recordings()
    print(f"FSDD: {len(split['train'])} train / {len(split['val'])} val / {len(split['test'])} "
          f"test recordings; {hardware.describe()}; "
          f"load average {os.getloadavg()[0]:.1f} at start", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.keep:
            args.keep.mkdir(parents=True, exist_ok=True)
        if args.part in ("a", "both"):
            rec, train_s, steps = train_model("isolated", split["train"], split["val"], work,
                                              args)
            results.append(test_model(rec, "isolated", "isolated", len(split["train"]), train_s,
                                      steps, split["test"]))
            print(json.dumps(results[-1]), flush=True)
        if args.part in ("b", "both", "joint"):
            train = connected(split["train"], args.connected_train, work / "ctrain", args.seed)
            val = connected(split["val"], 200, work / "cval", args.seed + 1)
            test = connected(split["test"], args.connected_test, work / "ctest", args.seed + 2)
            name = "connected"
            if args.mix_isolated or args.part == "joint":  # the single recordings too
                train, val, name = train + split["train"], val + split["val"], "joint"
            rec, train_s, steps = train_model(name, train, val, work, args)
            if args.part == "joint":
                results.append(test_model(rec, "isolated", name, len(train), train_s, steps,
                                          split["test"]))
                print(json.dumps(results[-1]), flush=True)
            results.append(test_model(rec, "connected", name, len(train), train_s, steps, test))
            print(json.dumps(results[-1]), flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")
    print("| test | trained on | train utts | test utts | word acc. | WER | CER | train time | "
          "steps | RTF |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        acc = f"{100 * (1 - r['wer']):.2f}%"
        print(f"| {r['part']} | {r['trained_on']} | {r['train_utts']} | {r['test_utts']} | {acc} | "
              f"{100 * r['wer']:.2f}% | {100 * r['cer']:.2f}% | {r['train_s']:.0f} s | "
              f"{r['steps']} | {r['rtf']:.4f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
