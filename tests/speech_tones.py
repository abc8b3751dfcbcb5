"""Generated "speech" for the speech tests: each symbol is a tone of its own pitch, with a short
silence between symbols, written with soundfile into a temporary folder."""

import csv
import random

import numpy as np
import soundfile as sf

RATE = 8000
PITCH = {"a": 500.0, "b": 1100.0, "c": 2000.0}
TONE_S, GAP_S = 0.08, 0.03


def tones(text: str, rate: int = RATE, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    parts = [gap]
    for ch in text:
        t = np.arange(int(TONE_S * rate)) / rate
        amp = 0.3 + 0.2 * rng.random()
        parts += [(amp * np.sin(2 * np.pi * PITCH[ch] * t)).astype(np.float32), gap]
    audio = np.concatenate(parts)
    return audio + 0.003 * rng.standard_normal(len(audio)).astype(np.float32)


def write_set(folder, n: int, seed: int = 0, name: str = "train.csv", rate: int = RATE):
    """``n`` recordings of 2-4 random symbols and a CSV manifest of them; returns the manifest."""
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
