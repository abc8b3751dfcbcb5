"""Training a recogniser: the task the trainer runs, ``build`` from data, and ``fit``."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rnnkit.data.audio import read_utterances
from rnnkit.data.augment import Augmenter
from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.features import FeatureConfig, Featurizer, spec_augment
from rnnkit.data.padding import pad_batch
from rnnkit.data.utterances import (
    Alphabet,
    Normalizer,
    SpeechData,
    first_sample_rate,
    load_data,
    pad_targets,
    split,
)
from rnnkit.errors import UserError
from rnnkit.metrics.speech import error_rates
from rnnkit.models.ctc_decoding import CharNgramLM
from rnnkit.models.ctc_recognizer import CTCRecognizer, CTCRecognizerConfig
from rnnkit.tasks.epochs import SamplerEpoch
from rnnkit.tasks.runs import write_reports
from rnnkit.tasks.speech.config import TASK, SpeechConfig
from rnnkit.tasks.speech.ensemble import fit_ensemble
from rnnkit.tasks.speech.predictor import decode_features, load


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
        augment = cfg.augment_config()
        self.augmenter = None if augment is None or train.audio is None else \
            Augmenter(augment, Featurizer(features))
        self.sampler = BucketBatchSampler([len(f) for f in self.train_x], batch_size, seed=seed)

    def train_batches(self, epoch: int):
        return _Epoch(self, epoch)

    def collate(self, indices: list[int], generator: torch.Generator | None = None):
        feats = [self.train_x[i] for i in indices]
        if generator is not None and self.augmenter is not None:
            feats = [self.normalizer(self.augmenter(self.train.audio[i], generator))
                     for i in indices]
        if generator is not None and self.cfg.spec_augment:
            c = self.cfg
            width = c.freq_width if c.freq_width is not None else max(1, self.features.dim // 5)
            feats = [spec_augment(f, generator, c.freq_masks, width, c.time_masks, c.time_width)
                     for f in feats]
        x, lengths = pad_batch(feats)
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


class _Epoch(SamplerEpoch):
    """An epoch whose recordings are changed (``augment``) and masked (``spec_augment``)."""

    def __iter__(self):
        task = self.task
        for b, indices in enumerate(task.sampler.batches(self.epoch)):
            g = None
            if task.cfg.spec_augment or task.augmenter is not None:
                # every draw from (seed, epoch, batch): the same on resume
                g = torch.Generator().manual_seed((task.seed * 1_000_003 + self.epoch) * 100_003
                                                  + b)
            yield task.collate(indices, g)


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
        features = cfg.feature_config(cfg.sample_rate or first_sample_rate(utts, cfg.skip_bad))
        chars = cfg.alphabet if cfg.alphabet is not None else \
            "".join(sorted({c for u in utts for c in u.transcript}))
    if not chars:
        raise UserError(f"the transcripts of {cfg.data} are all empty.")
    alphabet = Alphabet(chars)
    featurizer = Featurizer(features)
    train = load_data(cfg.data, featurizer, alphabet, cfg, cfg.subsample,
                      keep_audio=cfg.augment)
    if cfg.val is not None:
        val = load_data(cfg.val, featurizer, alphabet, cfg, cfg.subsample)
    else:
        train, val = split(train, cfg.val_fraction,
                           seed if cfg.split_seed is None else cfg.split_seed)
    normalizer = Normalizer.fit(cfg.normalize_mode(), train.feats)
    lm = CharNgramLM.train(train.ids, alphabet.vocab_size, cfg.lm_order) if cfg.lm_order else None
    model_cfg = CTCRecognizerConfig.from_dict(saved["model"]) if saved is not None else \
        cfg.model_config(features.dim, alphabet.vocab_size)
    task = SpeechTask(cfg, features, alphabet, normalizer, model_cfg, train, val, batch_size,
                      seed, lm)
    seed_everything(seed)
    return task, CTCRecognizer(model_cfg)


def fit(train_cfg, cfg: SpeechConfig, out: str | Path, resume: bool = False) -> dict[str, Any]:
    """Build, train, then evaluate the best checkpoint on the validation (and test) data; the
    metrics go to ``metrics_val.json`` / ``metrics_test.json``, the per-utterance errors to
    ``errors_val.csv`` / ``errors_test.csv``. Returns ``{"train", "val"[, "test"]}``."""
    from rnnkit.train import Trainer, read_run_config

    if cfg.ensemble > 1:
        return fit_ensemble(train_cfg, cfg, out, resume, train_member, build)
    out = Path(out)
    saved = read_run_config(out, TASK) if resume else {}
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    last = Trainer(model, task, train_cfg, out).fit(resume=resume)
    rec = load(out)
    report: dict[str, Any] = {"train": last}
    report["val"] = rec.evaluate_data(task.val, out / "errors_val.csv")
    if cfg.test is not None:
        report["test"] = rec.evaluate(cfg.test, errors_csv=out / "errors_test.csv")
    write_reports(out, report)
    return report


def train_member(train_cfg, run_dir: Path, resume: bool, *, cfg: SpeechConfig
                 ) -> dict[str, float]:
    """One ensemble member: an ordinary run (picklable, for worker processes)."""
    report = fit(train_cfg, cfg, run_dir, resume)
    return {"val_cer": report["val"]["cer"]}


def summary(report: dict[str, Any], out: Path) -> list[str]:
    """What ``rnnkit train speech`` prints after training."""
    lines = [f"{name}: WER {m['wer']:.4f}  CER {m['cer']:.4f}  ({m['utterances']} utterances; "
             f"per-utterance errors in {out}/errors_{name}.csv)"
             for name, m in ((n, report[n]) for n in ("val", "test") if n in report)]
    return [*lines, f"run saved in {out}/ (transcribe with: rnnkit transcribe {out} FILE.wav)"]
