"""Generated "speech" for the harness and the tests: each symbol is a tone of its own pitch, with
a short silence between symbols, written with soundfile."""

from __future__ import annotations

import csv
import random
from pathlib import Path

import numpy as np

from rnnkit.tasks.registry import Smoke

RATE = 8000
PITCH = {"a": 500.0, "b": 1100.0, "c": 2000.0}
TONE_S, GAP_S = 0.08, 0.03


def tones(text: str, rate: int = RATE, seed: int = 0, *, pitch: float = 1.0, tempo: float = 1.0,
          level: float = 1.0) -> np.ndarray:
    """The samples of ``text`` (symbols a, b, c) at ``rate`` Hz, with a little noise. Another
    "voice": every pitch times ``pitch``, ``tempo`` times as fast, ``level`` times as loud."""
    rng = np.random.default_rng(seed)
    gap = np.zeros(int(GAP_S / tempo * rate), dtype=np.float32)
    parts = [gap]
    for ch in text:
        t = np.arange(int(TONE_S / tempo * rate)) / rate
        amp = 0.3 + 0.2 * rng.random()
        parts += [(amp * np.sin(2 * np.pi * PITCH[ch] * pitch * t)).astype(np.float32), gap]
    audio = np.concatenate(parts)
    return level * (audio + 0.003 * rng.standard_normal(len(audio)).astype(np.float32))


def write_set(folder: Path, n: int, seed: int = 0, name: str = "train.csv",
              rate: int = RATE) -> Path:
    """``n`` recordings of 2-4 random symbols and a CSV manifest of them; returns the manifest."""
    import soundfile as sf

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        text = "".join(rng.choice("abc") for _ in range(rng.randint(2, 4)))
        path = folder / f"{name.split('.')[0]}_{i:03d}.wav"
        sf.write(path, tones(text, rate, seed * 1000 + i), rate)
        rows.append((path.name, text))
    manifest = folder / name
    with open(manifest, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["path", "transcript"])
        w.writerows(rows)
    return manifest


def smoke(directory: Path) -> Smoke:
    """Twelve tone recordings, a tiny model, three steps; the bad data lacks transcripts."""
    directory = Path(directory)
    manifest = write_set(directory, 12)
    bad = directory / "no_transcripts.csv"
    bad.write_text("path\ntrain_000.wav\n", encoding="utf-8")
    settings = {"data": str(manifest), "hidden": 8, "layers": 1, "conv_channels": 8,
                "lm_order": 2, "max_steps": 3, "batch_size": 8, "quiet": True, "device": "cpu",
                "ensemble": 1}  # ensembles: tests/test_speech_model.py
    return Smoke(settings=settings, predict_input=[str(directory / "train_000.wav"), tones("ab")],
                 evaluate_data=str(manifest), bad={"data": str(bad)})
