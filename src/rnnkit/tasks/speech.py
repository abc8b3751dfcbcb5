"""Speech recognition: recordings with transcripts in, a CTC recogniser out.

From Python::

    from rnnkit.tasks import speech
    rec = speech.train("train.csv", "runs/asr", val="dev.csv", max_time="10m")
    rec.transcribe(["hello.wav"])                  # -> ["hello world"]
    rec = speech.load("runs/asr")                  # later, in another process
    rec.evaluate("test.csv", errors_csv="errors.csv")   # {"wer": ..., "cer": ...}

Every recording is decoded and featurised once, when the data is read: the features stay in
memory, so later epochs never decode audio again. The alphabet is the set of characters of the
training transcripts (after lower-casing), unless given.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch

from rnnkit.data.audio import Utterance, read_audio, read_utterances
from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.features import (
    FeatureConfig,
    Featurizer,
    StreamingFeatures,
    normalize_utterance,
    spec_augment,
)
from rnnkit.errors import UserError
from rnnkit.metrics.speech import error_rates, write_utterance_errors
from rnnkit.models.ctc_decoding import CharNgramLM, greedy_decode, prefix_beam_search
from rnnkit.models.ctc_recognizer import CTCRecognizer, CTCRecognizerConfig
from rnnkit.threads import one_thread

TASK = "speech"


@dataclass
class SpeechConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    data: str = ""  # manifest (.csv, .tsv, .jsonl) or folder of recordings
    val: str | None = None  # None: a val_fraction of the training data
    test: str | None = None  # evaluated once after training
    val_fraction: float = 0.1
    # audio and features
    sample_rate: int | None = None  # None: the rate of the first training recording
    resample: bool = True  # False: a recording at another rate is an error
    features: str = "logmel"  # logmel or mfcc
    n_mels: int = 40
    n_mfcc: int = 13
    win_ms: float = 25.0
    hop_ms: float = 10.0
    # global: training-set statistics per feature (streams too); utterance: each recording's
    # own. On FSDD per-utterance variance scaling blew up one speaker's near-empty high bands
    # (isolated test accuracy 95.0% against 99.7% with global statistics).
    normalize: str = "global"
    # transcripts
    lowercase: bool = True
    alphabet: str | None = None  # None: the characters of the training transcripts
    unknown_chars: str = "error"  # characters outside the alphabet: error, drop or skip (the utt.)
    skip_bad: bool = False  # leave out unreadable/silent/too-short recordings (with a note)
    # SpecAugment
    spec_augment: bool = True
    freq_masks: int = 2
    freq_width: int = 8
    time_masks: int = 2
    time_width: int = 20
    # model (see CTCRecognizerConfig)
    arch: str = "lstm"
    layers: int = 3
    hidden: int = 192
    bidirectional: bool = True
    subsample: int = 2
    conv_channels: int = 128
    dropout: float = 0.1
    # decoding
    lm_order: int = 4  # character n-gram LM trained on the training transcripts; 0: none

    def __post_init__(self):
        choices = {"normalize": ("utterance", "global"),
                   "unknown_chars": ("error", "drop", "skip"), "features": ("logmel", "mfcc"),
                   "arch": ("lstm", "gru", "rnn", "mingru", "minlstm")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)}, found "
                                f"{getattr(self, name)!r}.")
        if self.subsample not in (1, 2, 4):
            raise UserError(f"subsample must be 1, 2 or 4, found {self.subsample}.")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be between 0 and 1, found {self.val_fraction}.")

    def feature_config(self, sample_rate: int) -> FeatureConfig:
        return FeatureConfig(sample_rate=sample_rate, kind=self.features, n_mels=self.n_mels,
                             n_mfcc=self.n_mfcc, win_ms=self.win_ms, hop_ms=self.hop_ms)


# Trainer settings that suit small speech sets, below any config file and flag.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 16, "epochs": 30, "schedule": "cosine", "warmup_steps": 50,
    "clip_norm": 5.0, "monitor": "val_cer", "mode": "min",
}


def _note(message: str) -> None:
    print(message, file=sys.stderr)


# -- alphabet -----------------------------------------------------------------------------------

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


# -- reading data -------------------------------------------------------------------------------

@dataclass
class SpeechData:
    names: list[str]
    texts: list[str]
    feats: list[torch.Tensor]  # (frames, dim), not normalised
    ids: list[list[int]]
    source: str


def _bad(problems: list[str], skip_bad: bool, source: str, total: int, hint: str) -> None:
    if not problems:
        return
    if not skip_bad:
        raise UserError(problems[0].rstrip(".") + f"; {hint}")
    _note(f"warning: left out {len(problems)} of {total} recordings in {source} "
          f"(first: {problems[0]})")


def load_data(source: str | Path, featurizer: Featurizer, alphabet: Alphabet, cfg: SpeechConfig,
              subsample: int, skip_bad: bool | None = None) -> SpeechData:
    """Read, check and featurise every recording of ``source``: bad ones are an error naming
    the file, or (``skip_bad``) left out with a note."""
    skip_bad = cfg.skip_bad if skip_bad is None else skip_bad
    utts = read_utterances(source, cfg.lowercase)
    out = SpeechData([], [], [], [], str(source))
    problems: list[str] = []
    with one_thread():
        for utt in utts:
            try:
                feats, ids, text = _load_one(utt, featurizer, alphabet, cfg, subsample)
            except UserError as e:
                problems.append(str(e))
                continue
            if ids is None:
                continue  # unknown characters and unknown_chars == "skip"
            out.names.append(str(utt.path))
            out.texts.append(text)
            out.feats.append(feats)
            out.ids.append(ids)
    _bad(problems, skip_bad, str(source), len(utts),
         "pass --skip-bad to leave out bad recordings.")
    if not out.feats:
        raise UserError(f"{source} has no usable recording.")
    return out


def _load_one(utt: Utterance, featurizer: Featurizer, alphabet: Alphabet, cfg: SpeechConfig,
              subsample: int) -> tuple[torch.Tensor, list[int] | None, str]:
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
            return torch.empty(0), None, text
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
    return feats, ids, text


def _first_rate(utts: list[Utterance], skip_bad: bool) -> int:
    import soundfile as sf

    for utt in utts:
        try:
            return int(sf.info(str(utt.path)).samplerate)
        except Exception:  # a bad first file: its own error comes when the data is read
            if not skip_bad:
                read_audio(utt.path, 16000)
    raise UserError("no recording of the training data could be read to find its sample rate.")


# -- the task for the trainer -------------------------------------------------------------------

def pad_features(feats: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(f) for f in feats], dtype=torch.long)
    out = feats[0].new_zeros(len(feats), int(lengths.max()), feats[0].shape[1])
    for i, f in enumerate(feats):
        out[i, :len(f)] = f
    return out, lengths


def pad_targets(ids: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([len(s) for s in ids], dtype=torch.long)
    out = torch.zeros(len(ids), int(lengths.max()), dtype=torch.long)
    for i, s in enumerate(ids):
        out[i, :len(s)] = torch.tensor(s)
    return out, lengths


class Normalizer:
    """Per-utterance statistics, or fixed (training-set) ones that a stream can use."""

    def __init__(self, mode: str, mean: torch.Tensor, std: torch.Tensor):
        self.mode, self.mean, self.std = mode, mean, std

    def __call__(self, feats: torch.Tensor) -> torch.Tensor:
        if self.mode == "utterance":
            return normalize_utterance(feats)
        return (feats - self.mean) / (self.std + 1e-5)

    def to_dict(self) -> dict:
        return {"mode": self.mode, "mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, d: dict) -> Normalizer:
        return cls(d["mode"], torch.tensor(d["mean"]), torch.tensor(d["std"]))


class SpeechTask:
    """The speech task for ``rnnkit.train.Trainer`` (see ``rnnkit.train.protocol``)."""

    def __init__(self, cfg: SpeechConfig, features: FeatureConfig, alphabet: Alphabet,
                 normalizer: Normalizer, model_config: CTCRecognizerConfig, train: SpeechData,
                 val: SpeechData, batch_size: int, seed: int = 0, lm: CharNgramLM | None = None):
        self.cfg, self.features, self.alphabet = cfg, features, alphabet
        self.normalizer, self.model_config, self.lm = normalizer, model_config, lm
        self.train, self.val, self.seed = train, val, seed
        self.train_x = [normalizer(f) for f in train.feats]
        self.val_x = [normalizer(f) for f in val.feats]
        self.sampler = BucketBatchSampler([len(f) for f in self.train_x], batch_size, seed=seed)

    def train_batches(self, epoch: int):
        return _Epoch(self, epoch)

    def collate(self, indices: list[int], generator: torch.Generator | None = None):
        feats = [self.train_x[i] for i in indices]
        if generator is not None:
            c = self.cfg
            feats = [spec_augment(f, generator, c.freq_masks, c.freq_width, c.time_masks,
                                  c.time_width) for f in feats]
        x, lengths = pad_features(feats)
        y, y_lengths = pad_targets([self.train.ids[i] for i in indices])
        return x, lengths, y, y_lengths

    def training_step(self, model, batch, state):
        x, lengths, y, y_lengths = batch
        _, _, loss = model(x, lengths, y, y_lengths)
        return loss, len(lengths), None

    def evaluate(self, model) -> dict[str, float]:
        loss, hyps = decode_features(model, self.val_x, self.alphabet, ids=self.val.ids)
        m = error_rates(self.val.texts, hyps)
        return {"val_loss": loss, "val_wer": m["wer"], "val_cer": m["cer"]}

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": self.model_config.to_dict(),
                "features": self.features.to_dict(), "alphabet": self.alphabet.chars,
                "normalizer": self.normalizer.to_dict(),
                "lm": self.lm.to_dict() if self.lm is not None else None,
                "speech": asdict(self.cfg)}


class _Epoch:
    def __init__(self, task: SpeechTask, epoch: int):
        self.task, self.epoch = task, epoch

    def __len__(self) -> int:
        return len(self.task.sampler)

    def __iter__(self):
        task = self.task
        for b, indices in enumerate(task.sampler.batches(self.epoch)):
            g = None
            if task.cfg.spec_augment:  # masks drawn from (seed, epoch, batch): same on resume
                g = torch.Generator().manual_seed((task.seed * 1_000_003 + self.epoch) * 100_003
                                                  + b)
            yield task.collate(indices, g)


@torch.no_grad()
def decode_features(model: CTCRecognizer, feats: Sequence[torch.Tensor], alphabet: Alphabet,
                    ids: Sequence[list[int]] | None = None, beam: int = 1,
                    lm: CharNgramLM | None = None, lm_weight: float = 0.5,
                    batch_size: int = 32) -> tuple[float, list[str]]:
    """``(mean CTC loss or nan, transcripts)`` of normalised features, batched by length."""
    device = next(model.parameters()).device
    order = sorted(range(len(feats)), key=lambda i: len(feats[i]))
    hyps: list[str] = [""] * len(feats)
    loss_sum = 0.0
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        x, lengths = pad_features([feats[i] for i in idx])
        y = y_lengths = None
        if ids is not None:
            y, y_lengths = pad_targets([ids[i] for i in idx])
            y, y_lengths = y.to(device), y_lengths.to(device)
        log_probs, out_lengths, loss = model(x.to(device), lengths.to(device), y, y_lengths)
        if loss is not None:
            loss_sum += float(loss) * len(idx)
        log_probs = log_probs.cpu()
        for j, i in enumerate(idx):
            lp = log_probs[j, :int(out_lengths[j])]
            labels = greedy_decode(lp) if beam == 1 and lm is None else \
                prefix_beam_search(lp, beam, lm, lm_weight)
            hyps[i] = alphabet.decode(labels)
    return (loss_sum / len(feats) if ids is not None else float("nan")), hyps


# -- building and training ----------------------------------------------------------------------

def build(cfg: SpeechConfig, batch_size: int, seed: int = 0, saved: dict | None = None
          ) -> tuple[SpeechTask, CTCRecognizer]:
    """Read and featurise the data, make the alphabet, statistics, LM, task and a fresh model
    (or, resuming, the ``saved`` run's alphabet and settings)."""
    from rnnkit.train import seed_everything

    if not cfg.data:
        raise UserError("no training data was given; pass --data MANIFEST_OR_FOLDER.")
    utts = read_utterances(cfg.data, cfg.lowercase)
    if saved is not None:
        features = FeatureConfig(**saved["features"])
        chars = saved["alphabet"]
    else:
        rate = cfg.sample_rate or _first_rate(utts, cfg.skip_bad)
        features = cfg.feature_config(rate)
        chars = cfg.alphabet if cfg.alphabet is not None else \
            "".join(sorted({c for u in utts for c in u.transcript}))
    if not chars:
        raise UserError(f"the transcripts of {cfg.data} are all empty.")
    alphabet = Alphabet(chars)
    featurizer = Featurizer(features)
    subsample = cfg.subsample
    train = load_data(cfg.data, featurizer, alphabet, cfg, subsample)
    if cfg.val is not None:
        val = load_data(cfg.val, featurizer, alphabet, cfg, subsample)
    else:
        train, val = _split(train, cfg.val_fraction, seed)
    frames = torch.cat(train.feats)
    normalizer = Normalizer(cfg.normalize, frames.mean(0), frames.std(0))
    lm = CharNgramLM.train(train.ids, alphabet.vocab_size, cfg.lm_order) if cfg.lm_order else None
    if saved is not None:
        model_cfg = CTCRecognizerConfig.from_dict(saved["model"])
    else:
        model_cfg = CTCRecognizerConfig(
            input_size=features.dim, vocab_size=alphabet.vocab_size, arch=cfg.arch,
            layers=cfg.layers, hidden=cfg.hidden, bidirectional=cfg.bidirectional,
            subsample=cfg.subsample, conv_channels=cfg.conv_channels, dropout=cfg.dropout)
    task = SpeechTask(cfg, features, alphabet, normalizer, model_cfg, train, val, batch_size,
                      seed, lm)
    seed_everything(seed)
    return task, CTCRecognizer(model_cfg)


def _split(data: SpeechData, fraction: float, seed: int) -> tuple[SpeechData, SpeechData]:
    n = len(data.feats)
    if n < 2:
        raise UserError(f"{data.source} has {n} usable recording; a validation split needs at "
                        "least 2 (or pass --val).")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    k = max(1, int(round(n * fraction)))

    def take(idx: list[int], source: str) -> SpeechData:
        return SpeechData([data.names[i] for i in idx], [data.texts[i] for i in idx],
                          [data.feats[i] for i in idx], [data.ids[i] for i in idx], source)

    return take(order[k:], data.source), take(order[:k], f"validation split of {data.source}")


def configs(settings: dict[str, Any], config_file: str | Path | None = None,
            resume_from: str | Path | None = None) -> tuple[Any, SpeechConfig]:
    """``(TrainConfig, SpeechConfig)``: see ``rnnkit.train.task_configs``."""
    from rnnkit.train import task_configs

    return tuple(task_configs(SpeechConfig, TASK, TRAIN_DEFAULTS, settings, config_file,
                              resume_from))


def fit(train_cfg, cfg: SpeechConfig, out: str | Path, resume: bool = False,
        fit_fn: Callable | None = None) -> dict[str, Any]:
    """Build, train, then evaluate the best checkpoint on the validation (and test) data; the
    metrics go to ``metrics_val.json`` / ``metrics_test.json``, the per-utterance errors to
    ``errors_val.csv`` / ``errors_test.csv``."""
    from rnnkit.train import Trainer, read_run_config

    saved = read_run_config(out, TASK) if resume else {}
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    trainer = Trainer(model, task, train_cfg, Path(out))
    last = fit_fn(trainer, resume) if fit_fn else trainer.fit(resume=resume)
    rec = load(out)
    report: dict[str, Any] = {"train": last}
    report["val"] = rec.evaluate_data(task.val, Path(out) / "errors_val.csv")
    if cfg.test is not None:
        report["test"] = rec.evaluate(cfg.test, errors_csv=Path(out) / "errors_test.csv")
    for split in ("val", "test"):
        if split in report:
            (Path(out) / f"metrics_{split}.json").write_text(
                json.dumps(report[split], indent=2) + "\n", encoding="utf-8")
    return report


def train(data: str | Path, out: str | Path, *, val: str | Path | None = None,
          test: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
          **settings) -> Recognizer:
    """Train a recogniser on ``data`` into run directory ``out``; ``settings`` are any
    SpeechConfig or TrainConfig fields. Returns the recogniser, its metrics in ``.metrics``."""
    settings = {**settings, "data": str(data), "val": None if val is None else str(val),
                "test": None if test is None else str(test)}
    train_cfg, cfg = configs(settings, config, resume_from=out if resume else None)
    report = fit(train_cfg, cfg, out, resume)
    rec = load(out)
    rec.metrics = report
    return rec


# -- inference ----------------------------------------------------------------------------------

class Recognizer:
    """A trained recogniser with its features, alphabet and language model."""

    def __init__(self, model: CTCRecognizer, config: dict[str, Any]):
        self.model = model.eval()
        self.config = config
        self.features = FeatureConfig(**config["features"])
        self.featurizer = Featurizer(self.features)
        self.alphabet = Alphabet(config["alphabet"])
        self.normalizer = Normalizer.from_dict(config["normalizer"])
        self.lm = CharNgramLM.from_dict(config["lm"]) if config.get("lm") else None
        self.settings = SpeechConfig(**{k: v for k, v in config.get("speech", {}).items()
                                        if k in {f.name for f in fields(SpeechConfig)}})
        self.metrics: dict[str, Any] = {}

    def _lm(self, lm_weight: float):
        return self.lm if lm_weight > 0 else None

    def features_of(self, path: str | Path, resample: bool = True) -> torch.Tensor:
        samples = read_audio(path, self.features.sample_rate, resample)
        return self.normalizer(self.featurizer(samples, str(path)))

    def transcribe(self, paths: Sequence[str | Path] | str | Path, beam: int = 1,
                   lm_weight: float = 0.0) -> list[str]:
        """The transcript of each recording: greedy with ``beam=1`` and no LM weight, else prefix
        beam search (with the character LM when ``lm_weight > 0``)."""
        if isinstance(paths, str | Path):
            paths = [paths]
        with one_thread():
            feats = [self.features_of(p) for p in paths]
        return decode_features(self.model, feats, self.alphabet, beam=beam,
                               lm=self._lm(lm_weight), lm_weight=lm_weight)[1]

    @torch.no_grad()
    def stream(self, chunks: Iterable) -> Iterator[str]:
        """Transcribe audio as it arrives (chunks of samples at the model's rate): yields the
        text recognised so far after each chunk, greedy. Needs a unidirectional model."""
        if self.model.cfg.bidirectional:
            raise UserError("streaming needs a unidirectional model (train with "
                            "--unidirectional); this one reads each recording both ways.")
        if self.normalizer.mode != "global":
            raise UserError("streaming needs training-set feature statistics (normalize: "
                            "global); this model normalises each whole recording.")
        feats = StreamingFeatures(self.featurizer, self.normalizer.mean, self.normalizer.std)
        state, labels, prev = None, [], 0
        for chunk in chunks:
            frames = feats.push(chunk)
            if len(frames):
                log_probs, state = self.model.stream(frames[None], state)
                for k in log_probs[0].argmax(-1).tolist():
                    if k != prev and k != 0:
                        labels.append(k)
                    prev = k
            yield self.alphabet.decode(labels)

    def evaluate_data(self, data: SpeechData, errors_csv: str | Path | None = None,
                      beam: int = 1, lm_weight: float = 0.0) -> dict[str, Any]:
        feats = [self.normalizer(f) for f in data.feats]
        loss, hyps = decode_features(self.model, feats, self.alphabet, data.ids, beam,
                                     self._lm(lm_weight), lm_weight)
        m: dict[str, Any] = {**error_rates(data.texts, hyps), "loss": loss,
                             "utterances": len(hyps)}
        if errors_csv is not None:
            write_utterance_errors(errors_csv, data.names, data.texts, hyps)
        return m

    def evaluate(self, source: str | Path, errors_csv: str | Path | None = None, beam: int = 1,
                 lm_weight: float = 0.0, skip_bad: bool = False) -> dict[str, Any]:
        """WER, CER and CTC loss on a manifest or folder; per-utterance errors to a CSV."""
        data = load_data(source, self.featurizer, self.alphabet, self.settings,
                         self.model.cfg.subsample, skip_bad)
        return self.evaluate_data(data, errors_csv, beam, lm_weight)


def load(run_dir: str | Path, device: str = "cpu", which: str = "best") -> Recognizer:
    """The recogniser of a speech run directory (its best checkpoint, else the last)."""
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model = CTCRecognizer(CTCRecognizerConfig.from_dict(config["model"]))
        model.load_state_dict(state_dict)
        rec = Recognizer(model.to(device), config)
    except (KeyError, TypeError, RuntimeError) as e:
        raise UserError(f"the checkpoint in {run_dir} does not describe a speech model rnnkit "
                        f"can rebuild ({type(e).__name__}: {e}).") from None
    return rec


def evaluate_run(run_dir: str | Path, data: Sequence[str | Path] | str | Path, **kwargs
                 ) -> dict[str, float]:
    """``rnnkit evaluate`` for speech runs: WER, CER and loss on each given manifest/folder
    together."""
    rec = load(run_dir)
    sources = [data] if isinstance(data, str | Path) else list(data)
    parts = [load_data(s, rec.featurizer, rec.alphabet, rec.settings, rec.model.cfg.subsample,
                       False) for s in sources]
    merged = SpeechData([n for p in parts for n in p.names], [t for p in parts for t in p.texts],
                        [f for p in parts for f in p.feats], [i for p in parts for i in p.ids],
                        ", ".join(map(str, sources)))
    m = rec.evaluate_data(merged)
    return {"wer": m["wer"], "cer": m["cer"], "loss": m["loss"],
            "utterances": float(m["utterances"])}
