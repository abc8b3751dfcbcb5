"""Training a classifier: the ``TrainTask`` for ``rnnkit.train.Trainer``, building it and the
model from the data, and ``fit`` (one run, or an ensemble of runs)."""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.padding import pad_batch
from rnnkit.data.table import label_order
from rnnkit.data.text_encoders import (
    SubwordEncoder,
    WordEncoder,
    encode_texts,
    encoder_from_dict,
    word_encoder,
)
from rnnkit.errors import UserError
from rnnkit.metrics.classification import classification_metrics
from rnnkit.models.classifier import (
    ClassifierConfig,
    EnsembleClassifier,
    TextClassifier,
    build_classifier,
    members,
)
from rnnkit.tasks.epochs import SamplerEpoch
from rnnkit.tasks.runs import write_reports
from rnnkit.tasks.sentiment.config import TASK, SentimentConfig
from rnnkit.tasks.sentiment.ensemble import fit_ensemble
from rnnkit.tasks.sentiment.predictor import index_subwords, load, predict_logits
from rnnkit.tasks.sentiment.reading import check_labels, read_split, split_validation


def _note(message: str) -> None:
    print(message, file=sys.stderr)


class SentimentTask:
    """The sentiment task for ``rnnkit.train.Trainer`` (see ``rnnkit.train.protocol``)."""

    def __init__(self, cfg: SentimentConfig, encoder, labels: list[str], model_config:
                 ClassifierConfig, train: tuple[list[torch.Tensor], torch.Tensor],
                 val: tuple[list[torch.Tensor], torch.Tensor], batch_size: int, seed: int = 0):
        self.cfg, self.encoder, self.labels = cfg, encoder, labels
        self.model_config = model_config
        self.train_x, self.train_y = train
        self.val_x, self.val_y = val
        self.sampler = BucketBatchSampler([len(x) for x in self.train_x], batch_size, seed=seed,
                                          bucket=cfg.bucket)

    def train_batches(self, epoch: int):
        return SamplerEpoch(self, epoch)

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tokens, lengths = pad_batch([self.train_x[i] for i in indices], self.encoder.pad_id)
        return tokens, lengths, self.train_y[indices]

    def training_step(self, model, batch, state):
        tokens, lengths, labels = batch
        _, loss = model(tokens, lengths, labels)
        return loss, len(labels), None

    def evaluate(self, model) -> dict[str, float]:
        logits = predict_logits(model, self.val_x, self.encoder.pad_id)
        pred = logits.argmax(1)
        m = classification_metrics(self.val_y.tolist(), pred.tolist(), self.labels)
        return {"val_loss": float(F.cross_entropy(logits, self.val_y)),
                "val_accuracy": m["accuracy"], "val_macro_f1": m["macro_f1"]}

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": self.model_config.to_dict(), "labels": self.labels,
                "tokenizer": self.encoder.to_dict(), "sentiment": asdict(self.cfg)}


def _build_encoder(cfg: SentimentConfig, texts: list[str], lm_run):
    if lm_run is not None:
        return SubwordEncoder(lm_run.tokenizer)
    if cfg.tokenizer == "bpe":
        from rnnkit.data.tokenizers import BPETokenizer

        return SubwordEncoder(BPETokenizer.train(texts, vocab_size=cfg.bpe_vocab))
    return word_encoder(texts, lowercase=cfg.lowercase, pattern=cfg.token_pattern,
                        min_freq=cfg.min_freq, max_vocab=cfg.max_vocab, subwords=cfg.subwords)


def build(cfg: SentimentConfig, batch_size: int, seed: int = 0, saved: dict | None = None
          ) -> tuple[SentimentTask, TextClassifier | EnsembleClassifier]:
    """Read the data, build the vocabulary (or take a resumed run's ``saved`` config), and make
    the task and a freshly initialised model."""
    from rnnkit.train import seed_everything

    if not cfg.data:
        raise UserError("no training data was given; pass --data FILE (.csv, .tsv, .jsonl, .txt).")
    train = read_split(cfg.data, cfg)
    labels = label_order(train.labels) if saved is None else saved["labels"]
    if len(set(train.labels)) < 2:
        raise UserError(f"the label column {cfg.label_column!r} of {cfg.data} holds a single "
                        f"class ({train.labels[0]!r}); a classifier needs at least two.")
    train, val = split_validation(train, cfg, seed)
    check_labels(train, labels)
    check_labels(val, labels)
    lm_run = None
    if cfg.init_from is not None and saved is None:
        from rnnkit.tasks.textgen import load as load_textgen

        lm_run = load_textgen(cfg.init_from)
    encoder = _build_encoder(cfg, train.texts, lm_run) if saved is None else \
        encoder_from_dict(saved["tokenizer"])
    index = {label: i for i, label in enumerate(labels)}
    train_y = torch.tensor([index[y] for y in train.labels], dtype=torch.long)
    weights = None
    if cfg.class_weights == "balanced":
        counts = torch.bincount(train_y, minlength=len(labels)).double()
        weights = (counts.sum() / (len(labels) * counts.clamp(min=1))).tolist()
    train_x = encode_texts(encoder, train.texts, cfg.max_len, str(cfg.data))
    val_x = encode_texts(encoder, val.texts, cfg.max_len, cfg.val or "the validation split")
    val_y = torch.tensor([index[y] for y in val.labels], dtype=torch.long)

    vectors = None
    subwords = isinstance(encoder, WordEncoder) and encoder.open
    changes: dict[str, Any] = {"class_weights": weights, "pad_id": encoder.pad_id,
                               "subword_buckets": cfg.subword_buckets if subwords else 0}
    lm = lm_run.model if lm_run is not None else None
    if saved is not None:
        model_cfg = ClassifierConfig.from_dict(saved["model"])
    else:
        if lm is not None:
            changes.update(arch=lm.cfg.arch, layers=lm.cfg.layers, hidden=lm.cfg.hidden,
                           embed=lm.embedding.embedding_dim, init="default", forget_bias=None)
        elif cfg.vectors is not None:
            vectors = _read_vectors(cfg.vectors, encoder, train.texts)
            changes["embed"] = vectors[0].shape[1]
        model_cfg = cfg.model_config(encoder.vocab_size, len(labels), **changes)
    task = SentimentTask(cfg, encoder, labels, model_cfg, (train_x, train_y), (val_x, val_y),
                         batch_size, seed)
    seed_everything(seed)  # the same seed gives the same initial weights
    model = build_classifier(model_cfg)
    for member in members(model):
        if vectors is not None:
            matrix, found = vectors
            with torch.no_grad():
                member.embedding.weight[found] = matrix[found]
            member.embedding.weight.requires_grad_(not cfg.freeze_vectors)
        if lm is not None:
            copied = copy_language_model(lm, member)
    index_subwords(model, encoder)
    if lm is not None:
        _note(f"encoder: the embedding and {len(copied)} recurrent tensors start from the "
              f"language model in {cfg.init_from}.")
    return task, model


def _read_vectors(path: str, encoder, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    from rnnkit.data.vectors import read_vectors

    if not isinstance(encoder, WordEncoder):
        raise UserError("pretrained word vectors need the word tokenizer, not init_from.")
    counts = Counter(t for text in texts for t in encoder.tokens(text))
    matrix, found, coverage = read_vectors(path, encoder.vocab, counts)
    _note(f"word vectors: {coverage} found in {path}.")
    return matrix[:encoder.rows], found[:encoder.rows]  # words without a row keep their n-grams


def copy_language_model(lm, model: TextClassifier) -> list[str]:
    """Start the embedding and the encoder's forward direction from a language model's; returns
    the encoder tensors copied.

    The first layer always fits; a bidirectional encoder's higher layers read both directions,
    so their input weights are twice as wide as the language model's and keep their fresh
    initialisation, like the backward direction and the output layer.
    """
    ours = model.rnn.state_dict()
    fits = {k: v for k, v in lm.rnn.state_dict().items()
            if k in ours and ours[k].shape == v.shape}
    if not any(k.endswith("_l0") for k in fits):
        raise UserError("the language model's first recurrent layer does not fit the "
                        "classifier's encoder.")
    with torch.no_grad():
        model.embedding.weight.copy_(lm.embedding.weight)
        model.rnn.load_state_dict(fits, strict=False)
    return sorted(fits)


def fit_single(train_cfg, cfg: SentimentConfig, out: str | Path, resume: bool = False
               ) -> dict[str, Any]:
    """Build and train one classifier, then evaluate its best checkpoint on the validation (and
    test) data: metrics to ``metrics_val.json`` / ``metrics_test.json``, confusion matrices to
    PNGs."""
    from rnnkit.train import Trainer, read_run_config

    saved = read_run_config(out, TASK) if resume else {}
    test = read_split(cfg.test, cfg) if cfg.test is not None else None
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    if test is not None:
        check_labels(test, task.labels)
    last = Trainer(model, task, train_cfg, Path(out)).fit(resume=resume)
    clf = load(out)
    # task.val_x holds ids from the training encoder, which has also met the validation words
    clf.encoder = task.encoder
    index_subwords(clf.model, clf.encoder)
    report = {"train": last}
    report["val"] = clf.report_encoded(task.val_x, task.val_y, Path(out) / "confusion_val.png",
                                       "validation")
    if test is not None:
        report["test"] = clf.evaluate_data(test, Path(out) / "confusion_test.png")
    write_reports(out, report)
    return report


def train_member(train_cfg, run_dir: Path, resume: bool, *, cfg: SentimentConfig
                 ) -> dict[str, float]:
    """One ensemble member: an ordinary run (picklable, for worker processes)."""
    report = fit_single(train_cfg, cfg, run_dir, resume)
    return {"validation_accuracy": report["val"]["accuracy"]}


def fit(train_cfg, cfg: SentimentConfig, out: str | Path, resume: bool = False
        ) -> dict[str, Any]:
    """Train into run directory ``out`` and return the report (``train``, ``val`` and, with a
    test file, ``test`` metrics); ``cfg.ensemble > 1`` trains that many independent members and
    merges them (``rnnkit.tasks.sentiment.ensemble``)."""
    if cfg.ensemble > 1:
        return fit_ensemble(train_cfg, cfg, out, resume, train_member)
    return fit_single(train_cfg, cfg, out, resume)
