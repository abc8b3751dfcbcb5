"""Recordings with transcripts as training data: the alphabet, featurised and checked utterances,
padding into batches, feature normalisation and the validation split.

Every recording is decoded and featurised once, when the data is read: the features stay in
memory, so later epochs never decode audio again.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch

from rnnkit.data.audio import Utterance, read_audio, read_utterances
from rnnkit.data.features import Featurizer, normalize_utterance
from rnnkit.data.padding import pad_batch
from rnnkit.errors import UserError
from rnnkit.threads import one_thread


class ReadOptions(Protocol):
    """How transcripts and recordings are read (the speech task's config has these fields)."""

    lowercase: bool
    unknown_chars: str  # characters outside the alphabet: error, drop or skip (the utterance)
    resample: bool  # False: a recording at another rate is an error
    skip_bad: bool  # leave out unreadable/silent/too-short recordings (with a note)


def _note(message: str) -> None:
    print(message, file=sys.stderr)


class Alphabet:
    """Characters <-> label ids 1..n (0 is the CTC blank)."""

    def __init__(self, chars: str):
        self.chars = chars
        self.index = {c: i + 1 for i, c in enumerate(chars)}

    @property
    def vocab_size(self) -> int:
        return len(self.chars) + 1

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in text]

    def decode(self, ids: Iterable[int]) -> str:
        return "".join(self.chars[i - 1] for i in ids if 0 < i <= len(self.chars))

    def unknown(self, text: str) -> str:
        return "".join(sorted({c for c in text if c not in self.index}))


def ctc_min_frames(ids: Sequence[int]) -> int:
    """Output frames CTC needs for a labelling: one per label, one more per repeated pair."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:], strict=False) if a == b)


@dataclass
class SpeechData:
    names: list[str]
    texts: list[str]
    feats: list[torch.Tensor]  # (frames, dim), not normalised
    ids: list[list[int]]
    source: str
    audio: list[torch.Tensor] | None = None  # the samples (float16), kept to augment them

    @classmethod
    def merge(cls, parts: Sequence[SpeechData]) -> SpeechData:
        kept = all(p.audio is not None for p in parts)
        audio = [a for p in parts for a in p.audio or []] if kept else None
        return cls([n for p in parts for n in p.names], [t for p in parts for t in p.texts],
                   [f for p in parts for f in p.feats], [i for p in parts for i in p.ids],
                   ", ".join(p.source for p in parts), audio)


def _bad(problems: list[str], skip_bad: bool, source: str, total: int, hint: str) -> None:
    if not problems:
        return
    if not skip_bad:
        raise UserError(problems[0].rstrip(".") + f"; {hint}")
    _note(f"warning: left out {len(problems)} of {total} recordings in {source} "
          f"(first: {problems[0]})")


def load_data(source: str | Path, featurizer: Featurizer, alphabet: Alphabet, cfg: ReadOptions,
              subsample: int, skip_bad: bool | None = None, keep_audio: bool = False
              ) -> SpeechData:
    """Read, check and featurise every recording of ``source``: bad ones are an error naming
    the file, or (``skip_bad``, by default ``cfg.skip_bad``) left out with a note. With
    ``keep_audio`` the samples stay too, in half precision (2 bytes a sample)."""
    skip_bad = cfg.skip_bad if skip_bad is None else skip_bad
    utts = read_utterances(source, cfg.lowercase)
    out = SpeechData([], [], [], [], str(source), [] if keep_audio else None)
    problems: list[str] = []
    with one_thread():
        for utt in utts:
            try:
                samples, feats, ids, text = _load_one(utt, featurizer, alphabet, cfg, subsample)
            except UserError as e:
                problems.append(str(e))
                continue
            if ids is None:
                continue  # unknown characters and unknown_chars == "skip"
            out.names.append(str(utt.path))
            out.texts.append(text)
            out.feats.append(feats)
            out.ids.append(ids)
            if out.audio is not None:
                out.audio.append(torch.from_numpy(samples).half())
    _bad(problems, skip_bad, str(source), len(utts),
         "pass --skip-bad to leave out bad recordings.")
    if not out.feats:
        raise UserError(f"{source} has no usable recording.")
    return out


def _load_one(utt: Utterance, featurizer: Featurizer, alphabet: Alphabet, cfg: ReadOptions,
              subsample: int) -> tuple[Any, torch.Tensor, list[int] | None, str]:
    text = utt.transcript
    if not text:
        raise UserError(f"the transcript of {utt.path} is empty.")
    unknown = alphabet.unknown(text)
    if unknown:
        if cfg.unknown_chars == "error":
            raise UserError(f"the transcript of {utt.path} has characters outside the alphabet "
                            f"({unknown!r}); set unknown_chars to drop or skip to go on.")
        if cfg.unknown_chars == "skip":
            _note(f"note: skipped {utt.path}: characters outside the alphabet ({unknown!r}).")
            return None, torch.empty(0), None, text
        text = " ".join("".join(c for c in text if c in alphabet.index).split())
        if not text:
            raise UserError(f"the transcript of {utt.path} has no character of the alphabet.")
    samples = read_audio(utt.path, featurizer.cfg.sample_rate, cfg.resample)
    feats = featurizer(samples, str(utt.path))
    ids = alphabet.encode(text)
    frames = -(-len(feats) // subsample)
    if frames < ctc_min_frames(ids):
        raise UserError(f"{utt.path} is too short for its transcript: {frames} output frames "
                        f"for {len(text)} characters.")
    return samples, feats, ids, text


def first_sample_rate(utts: list[Utterance], skip_bad: bool) -> int:
    """The sample rate of the first readable recording (a bad first one is an error unless
    ``skip_bad``)."""
    import soundfile as sf

    for utt in utts:
        try:
            return int(sf.info(str(utt.path)).samplerate)
        except Exception:  # a bad first file: its own error comes when the data is read
            if not skip_bad:
                read_audio(utt.path, 16000)
    raise UserError("no recording of the training data could be read to find its sample rate.")


def split(data: SpeechData, fraction: float, seed: int) -> tuple[SpeechData, SpeechData]:
    """``(train, validation)``: a seeded random ``fraction`` (at least one) held out."""
    n = len(data.feats)
    if n < 2:
        raise UserError(f"{data.source} has {n} usable recording; a validation split needs at "
                        "least 2 (or pass --val).")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    k = max(1, int(round(n * fraction)))

    def take(idx: list[int], source: str) -> SpeechData:
        audio = None if data.audio is None else [data.audio[i] for i in idx]
        return SpeechData([data.names[i] for i in idx], [data.texts[i] for i in idx],
                          [data.feats[i] for i in idx], [data.ids[i] for i in idx], source,
                          audio)

    return take(order[k:], data.source), take(order[:k], f"validation split of {data.source}")


def pad_targets(ids: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(label ids (B, S) zero-padded, lengths (B,))`` of transcripts given as id lists."""
    return pad_batch([torch.tensor(s, dtype=torch.long) for s in ids])


class Normalizer:
    """Per-utterance statistics, or fixed (training-set) ones that a stream can use."""

    def __init__(self, mode: str, mean: torch.Tensor, std: torch.Tensor):
        self.mode, self.mean, self.std = mode, mean, std

    @classmethod
    def fit(cls, mode: str, feats: Sequence[torch.Tensor]) -> Normalizer:
        """The statistics of every frame of ``feats`` (used when ``mode`` is global), or, in mode
        mean, the spread of the frames around their recording's mean."""
        if mode == "mean":
            frames = torch.cat([f - f.mean(0) for f in feats])
            return cls(mode, torch.zeros(frames.shape[1]), frames.std(0))
        frames = torch.cat(list(feats))
        return cls(mode, frames.mean(0), frames.std(0))

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        if self.mode == "utterance":
            return normalize_utterance(feats)
        if self.mode == "mean":  # the recording's own mean: its level and microphone removed
            return (feats - feats.mean(0)) / (self.std + 1e-5)
        return (feats - self.mean) / (self.std + 1e-5)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(d["mode"], torch.tensor(d["mean"]), torch.tensor(d["std"]))
