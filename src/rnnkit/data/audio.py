"""Reading recordings and their transcripts: audio files, manifests and folders.

Audio is read with ``soundfile`` (WAV, FLAC, OGG, ...), mixed down to mono and resampled with
``soxr`` (the SoX resampler, high quality) to the rate the model was trained at. Every problem
with a file is a ``UserError`` naming the file.

Where transcripts come from:

- a manifest: CSV with a header (a ``path`` / ``audio`` / ``file`` column and a ``transcript`` /
  ``text`` column) or JSON Lines with the same keys; relative paths are relative to the manifest;
- a folder of audio files with a side file ``transcripts.tsv`` / ``transcripts.txt`` (``NAME`` and
  the transcript separated by a tab, or the first space; NAME with or without its extension);
- or, without a side file, the file names: the part before the first ``_`` is the transcript,
  with ``-`` read as a space (``7_george_3.wav`` -> "7", ``yes-please_01.flac`` -> "yes please").
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rnnkit.errors import UserError, not_a_file

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".oga", ".aiff", ".aif", ".au")
SIDE_FILES = ("transcripts.tsv", "transcripts.txt")
PATH_KEYS = ("path", "audio", "file", "audio_path", "filename")
TEXT_KEYS = ("transcript", "text", "sentence", "label")
SILENCE_PEAK = 1e-4  # a peak below this (-80 dBFS) is silence


@dataclass(frozen=True)
class Utterance:
    path: Path
    transcript: str


def resample(audio: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """``audio`` (1-D float32) from ``rate_in`` to ``rate_out`` Hz with soxr's high quality."""
    if rate_in == rate_out:
        return audio
    import soxr

    return soxr.resample(audio, rate_in, rate_out, quality="HQ").astype(np.float32, copy=False)


def read_audio(path: str | Path, sample_rate: int, resample_audio: bool = True) -> np.ndarray:
    """The mono float32 samples of ``path`` at ``sample_rate`` Hz.

    ``UserError`` (naming the file) when it is missing, not audio, empty or silent, or, with
    ``resample_audio=False``, recorded at another rate.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise not_a_file("audio file", path)
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as e:
        reason = str(e).split(":")[-1].strip() or type(e).__name__
        raise UserError(f"{path} is not a readable audio file ({reason}).") from None
    if audio.shape[0] == 0:
        raise UserError(f"{path} holds no audio samples (empty recording).")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if not np.isfinite(mono).all():
        raise UserError(f"{path} holds samples that are not finite numbers (NaN or inf).")
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        raise UserError(f"{path} is silent (its loudest sample is below -80 dBFS).")
    if rate != sample_rate:
        if not resample_audio:
            raise UserError(f"{path} is recorded at {rate} Hz, but {sample_rate} Hz is expected "
                            "(resampling is turned off).")
        mono = resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_chunks(path: str | Path, sample_rate: int, seconds: float) -> Iterator[np.ndarray]:
    """The samples of ``path`` at ``sample_rate`` Hz in consecutive chunks of ``seconds`` (the
    last one shorter), as a stream of audio arriving would bring them."""
    if seconds <= 0:
        raise UserError(f"the chunk length must be positive, found {seconds:g} seconds.")
    samples = read_audio(path, sample_rate)
    step = max(1, int(seconds * sample_rate))
    return (samples[i:i + step] for i in range(0, len(samples), step))


def write_transcripts(path: str | Path, files: Sequence[str | Path], texts: Sequence[str]) -> Path:
    """A CSV manifest (``path``, ``transcript``) of recognised recordings; it reads back with
    ``read_utterances``."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "transcript"])
        w.writerows(zip(map(str, files), texts, strict=True))
    return path


def normalize_transcript(text: str, lowercase: bool = True) -> str:
    """Whitespace collapsed to single spaces and trimmed; lower-cased unless asked not to."""
    text = " ".join(str(text).split())
    return text.lower() if lowercase else text


def read_utterances(source: str | Path, lowercase: bool = True) -> list[Utterance]:
    """The (audio path, transcript) pairs of a manifest (.csv, .tsv, .jsonl) or a folder."""
    source = Path(source)
    if source.is_dir():
        items = _read_folder(source)
    elif source.is_file():
        suffix = source.suffix.lower()
        if suffix in (".csv", ".tsv"):
            items = _read_csv(source, "\t" if suffix == ".tsv" else ",")
        elif suffix in (".jsonl", ".json"):
            items = _read_jsonl(source)
        else:
            raise UserError(f"speech data must be a folder of recordings or a manifest ending in "
                            f".csv, .tsv or .jsonl, found {source.name!r}.")
    else:
        raise UserError(f"speech data {source} does not exist.")
    out = [Utterance(p, normalize_transcript(t, lowercase)) for p, t in items]
    if not out:
        raise UserError(f"{source} lists no recordings.")
    return out


def _pick(keys: list[str], wanted: tuple[str, ...], source: Path, what: str,
          where: str = "") -> str:
    lowered = {k.strip().lower(): k for k in keys if k is not None}
    for name in wanted:
        if name in lowered:
            return lowered[name]
    raise UserError(f"{source} has no {what} column{where} (expected one of "
                    f"{', '.join(wanted)}), found {', '.join(repr(k) for k in keys) or 'none'}.")


def _read_csv(path: Path, delimiter: str) -> list[tuple[Path, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        keys = list(reader.fieldnames or [])
        path_key = _pick(keys, PATH_KEYS, path, "audio path")
        text_key = _pick(keys, TEXT_KEYS, path, "transcript")
        items = []
        for line, row in enumerate(reader, start=2):
            audio, text = row.get(path_key), row.get(text_key)
            if not audio:
                raise UserError(f"{path} line {line} has no audio path.")
            items.append((_resolve(path, audio), text or ""))
    return items


def _read_jsonl(path: Path) -> list[tuple[Path, str]]:
    items = []
    for line, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            row = json.loads(raw)
        except ValueError:
            raise UserError(f"{path} line {line} is not valid JSON.") from None
        if not isinstance(row, dict):
            raise UserError(f"{path} line {line} must be a JSON object, found {type(row).__name__}.")
        path_key = _pick(list(row), PATH_KEYS, path, "audio path", f" on line {line}")
        text_key = _pick(list(row), TEXT_KEYS, path, "transcript", f" on line {line}")
        items.append((_resolve(path, str(row[path_key])), str(row[text_key] or "")))
    return items


def _resolve(manifest: Path, audio: str) -> Path:
    p = Path(audio)
    return p if p.is_absolute() else manifest.parent / p


def _read_folder(folder: Path) -> list[tuple[Path, str]]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise UserError(f"folder {folder} holds no audio files ({', '.join(AUDIO_SUFFIXES)}).")
    side = next((folder / n for n in SIDE_FILES if (folder / n).is_file()), None)
    if side is None:
        return [(p, p.stem.split("_", 1)[0].replace("-", " ")) for p in files]
    texts: dict[str, str] = {}
    for line, raw in enumerate(side.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        name, sep, text = raw.partition("\t") if "\t" in raw else raw.partition(" ")
        if not sep:
            raise UserError(f"{side} line {line} must hold a file name and its transcript.")
        texts[name.strip()] = text
    items = []
    for p in files:
        text = texts.get(p.name, texts.get(p.stem))
        if text is None:
            raise UserError(f"{side} has no transcript for {p.name}.")
        items.append((p, text))
    return items
