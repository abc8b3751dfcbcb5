"""Sentiment analysis, or any text classification: labelled texts in, a classifier out.

From Python::

    from rnnkit.tasks import sentiment
    clf = sentiment.train("train.csv", "runs/sst", val="dev.csv", test="test.csv", max_time="5m")
    clf.predict(["a gorgeous, witty film"])        # -> (["1"], probabilities)
    clf = sentiment.load("runs/sst")               # later, in another process
    clf.evaluate("test.csv")                       # accuracy, macro-F1, per class, confusion

Texts are split into words (or, when the encoder starts from a text-generation run, into that
run's tokens), batched by similar length, and read by a bidirectional recurrent encoder. A word's
vector adds its character n-grams' (``subwords``), so words rare or unseen in training still
get one from their spelling. ``ensemble=N`` trains N classifiers and averages them
(``rnnkit.tasks.sentiment_ensemble``).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.table import LabelledTexts, label_order, read_labelled, stratified_split
from rnnkit.data.vocab import DEFAULT_PATTERN, Vocab, WordTokenizer, char_ngrams
from rnnkit.errors import UserError
from rnnkit.metrics.classification import classification_metrics, plot_confusion_matrix
from rnnkit.models.classifier import (
    ClassifierConfig,
    EnsembleClassifier,
    TextClassifier,
    build_classifier,
    members,
)
from rnnkit.nn.subword_embedding import SubwordEmbedding

TASK = "sentiment"


@dataclass
class SentimentConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    data: str = ""  # training file: .csv, .tsv, .jsonl, or .txt with "LABEL sentence" lines
    val: str | None = None  # validation file; None: a stratified val_fraction of the data
    test: str | None = None  # evaluated once after training
    val_fraction: float = 0.1
    data_format: str | None = None  # csv, tsv, jsonl or lines; None: from the file name
    text_column: str = "text"
    label_column: str = "label"
    tokenizer: str = "word"  # word, or bpe (byte-level BPE trained on the data, case kept)
    bpe_vocab: int = 4000
    # words
    lowercase: bool = True
    token_pattern: str = DEFAULT_PATTERN
    min_freq: int = 2  # rarer words share the <unk> row, so <unk> is trained
    subwords: bool = True  # word vectors add their character n-grams': rare and unseen words
    # get a vector from their spelling (fastText-style)
    subword_buckets: int = 8192  # hash buckets of the n-grams (8192 and 16384 scored alike on SST-2)
    max_vocab: int | None = 50_000
    max_len: int = 200  # tokens per text; longer ones are truncated
    vectors: str | None = None  # GloVe or word2vec text file
    freeze_vectors: bool = False
    init_from: str | None = None  # a textgen run directory: its tokenizer, embedding and encoder
    bucket: bool = True  # batches of similar lengths
    class_weights: str = "none"  # none, or balanced (inverse class frequency)
    # model (see ClassifierConfig)
    arch: str = "lstm"
    layers: int = 1
    hidden: int = 128  # per direction
    embed: int = 200
    pooling: str = "max"
    dropout: float = 0.5
    embed_dropout: float = 0.3
    word_dropout: float = 0.25  # small labelled sets overfit to a few words without it
    init: str = "default"
    forget_bias: float | None = None
    ensemble: int = 1  # classifiers trained one by one (own seed), probabilities averaged:
    # costs ensemble x the compute, buys accuracy on small labelled sets
    workers: int | None = None  # ensemble members trained at once; None: one per CPU core
    split_seed: int | None = None  # seed of the stratified validation split; None: the run's

    def __post_init__(self):
        if self.tokenizer not in ("word", "bpe"):
            raise UserError(f"tokenizer must be word or bpe, found {self.tokenizer!r}.")
        if self.class_weights not in ("none", "balanced"):
            raise UserError(f"class_weights must be none or balanced, found {self.class_weights!r}.")
        if self.subword_buckets < 1:
            raise UserError(f"subword_buckets must be a positive number, "
                            f"found {self.subword_buckets}.")
        if self.max_len < 1:
            raise UserError(f"max_len must be a positive number of tokens, found {self.max_len}.")

    def model_config(self, vocab_size: int, num_classes: int, **changes) -> ClassifierConfig:
        names = {f.name for f in fields(ClassifierConfig)} - {"vocab_size", "num_classes"}
        values = {k: v for k, v in asdict(self).items() if k in names}
        return ClassifierConfig(vocab_size=vocab_size, num_classes=num_classes,
                                **{**values, **changes})


# Trainer settings that suit small classification sets, below any config file and flag: the
# checkpoint kept is the one with the best validation macro-F1 (accuracy can hide a class).
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 32, "epochs": 10, "schedule": "cosine", "warmup_steps": 20,
    "weight_decay": 0.0, "clip_norm": 5.0, "monitor": "val_macro_f1", "mode": "max",
}


def _note(message: str) -> None:
    print(message, file=sys.stderr)


# -- tokenizers ---------------------------------------------------------------------------------

class WordEncoder:
    """Text -> word ids with a ``WordTokenizer`` and a ``Vocab``.

    ``rows``: the first ``rows`` ids have a vector of their own (the default: all). An ``open``
    encoder (subword-aware vectors) gives every new word it meets an id of its own instead of
    ``<unk>``, so the model can build its vector from its spelling; only the training words
    (``known``) are saved.
    """

    pad_id: int | None = Vocab.pad_id

    def __init__(self, tokenizer: WordTokenizer, vocab: Vocab, rows: int | None = None,
                 open: bool = False):
        self.tokenizer, self.vocab = tokenizer, vocab
        self.rows = len(vocab) if rows is None else rows
        self.open, self.known = open, len(vocab)

    def tokens(self, text: str) -> list[str]:
        return self.tokenizer(text)

    def encode(self, text: str) -> list[int]:
        if self.open:
            return [self.vocab.add(t) for t in self.tokens(text)]
        return self.vocab.encode(self.tokens(text))

    @property
    def vocab_size(self) -> int:
        return self.rows

    def to_dict(self) -> dict:
        return {"kind": "word", **self.tokenizer.to_dict(), "tokens": self.vocab.tokens[:self.known],
                "rows": self.rows, "open": self.open}


class SubwordEncoder:
    """Text -> ids with an ``rnnkit.data.tokenizers`` tokenizer: BPE trained on the data, or a
    text-generation run's (char, byte or BPE)."""

    pad_id: int | None = None  # every id is a real token; lengths keep padding out

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    def tokens(self, text: str) -> list[str]:
        return [self.tokenizer.decode([i]) for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def to_dict(self) -> dict:
        return {"kind": "subword", "tokenizer": self.tokenizer.to_dict()}


def encoder_from_dict(d: dict):
    if d.get("kind") == "word":
        return WordEncoder(WordTokenizer.from_dict(d), Vocab.from_dict(d), d.get("rows"),
                           d.get("open", False))
    if d.get("kind") == "subword":
        from rnnkit.data.tokenizers import tokenizer_from_dict

        return SubwordEncoder(tokenizer_from_dict(d["tokenizer"]))
    raise UserError(f"the saved tokenizer kind must be word or subword, found {d.get('kind')!r}.")


def encode_texts(encoder, texts: Sequence[str], max_len: int, source: str = "the data"
                 ) -> list[torch.Tensor]:
    """Token ids of each text, at most ``max_len`` of them (one note says how many were cut);
    a text with no token becomes the single id that stands for unknown words."""
    out, cut = [], 0
    for text in texts:
        ids = encoder.encode(text) or [Vocab.unk_id]
        if len(ids) > max_len:
            ids, cut = ids[:max_len], cut + 1
        out.append(torch.tensor(ids, dtype=torch.long))
    if cut:
        _note(f"warning: {cut} of {len(texts)} texts in {source} are longer than max_len "
              f"{max_len} tokens and were truncated.")
    return out


def pad_batch(seqs: Sequence[torch.Tensor], pad_id: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(tokens (batch, longest), lengths)``; padding holds ``pad_id`` (0 when None)."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    tokens = torch.full((len(seqs), int(lengths.max())), pad_id or 0, dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
    return tokens, lengths


# -- the task for the trainer -------------------------------------------------------------------

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
        return _Epoch(self, epoch)

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


class _Epoch:
    """One epoch's batches, with a length so the trainer can plan its schedule."""

    def __init__(self, task: SentimentTask, epoch: int):
        self.task, self.epoch = task, epoch

    def __len__(self) -> int:
        return len(self.task.sampler)

    def __iter__(self):
        for indices in self.task.sampler.batches(self.epoch):
            yield self.task.collate(indices)


@torch.no_grad()
def predict_logits(model: TextClassifier | EnsembleClassifier, seqs: Sequence[torch.Tensor],
                   pad_id: int | None, batch_size: int = 256) -> torch.Tensor:
    """Logits ``(n, classes)`` in the order of ``seqs``, batched by length (on the CPU)."""
    device = next(model.parameters()).device
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    out = torch.empty(len(seqs), model.cfg.num_classes)
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        tokens, lengths = pad_batch([seqs[i] for i in idx], pad_id)
        logits, _ = model(tokens.to(device), lengths.to(device))
        out[idx] = logits.float().cpu()
    return out


# -- building from data -------------------------------------------------------------------------

def read_split(path: str | Path, cfg: SentimentConfig) -> LabelledTexts:
    data = read_labelled(path, cfg.text_column, cfg.label_column, cfg.data_format)
    if data.skipped_empty:
        _note(f"note: skipped {data.skipped_empty} empty or whitespace-only texts in {path}.")
    return data


def check_labels(data: LabelledTexts, known: list[str]) -> None:
    """A ``UserError`` naming the labels in ``data`` that the model never saw."""
    known_set = set(known)
    unseen = [label for label in data.labels if label not in known_set]
    if unseen:
        first = data.labels.index(unseen[0])
        names = ", ".join(repr(u) for u in sorted(set(unseen))[:5])
        raise UserError(f"{data.source} has labels the model never saw in training ({names}, "
                        f"first at line {data.line_numbers[first]}); the model knows "
                        f"{', '.join(repr(k) for k in known)}.")


def _build_encoder(cfg: SentimentConfig, texts: list[str], lm_run):
    if lm_run is not None:
        return SubwordEncoder(lm_run.tokenizer)
    if cfg.tokenizer == "bpe":
        from rnnkit.data.tokenizers import BPETokenizer

        return SubwordEncoder(BPETokenizer.train(texts, vocab_size=cfg.bpe_vocab))
    tokenizer = WordTokenizer(cfg.lowercase, cfg.token_pattern)
    words = [tokenizer(t) for t in texts]
    vocab = Vocab.build(words, cfg.min_freq, cfg.max_vocab)
    if not cfg.subwords:
        return WordEncoder(tokenizer, vocab)
    # every training word gets an id (its n-grams count); the frequent ones also get a row
    return WordEncoder(tokenizer, Vocab.build(words), rows=len(vocab), open=True)


def index_subwords(model: TextClassifier | EnsembleClassifier, encoder) -> None:
    """Tell subword-aware embeddings the n-grams of the words the encoder has ids for (new
    words appear whenever an open encoder reads new text)."""
    embs = [m.embedding for m in members(model) if isinstance(m.embedding, SubwordEmbedding)]
    if not embs or embs[0].indexed >= len(encoder.vocab):
        return
    first = embs[0]
    first.add_words([[] if i < 2 else char_ngrams(word, first.buckets)
                     for i, word in enumerate(encoder.vocab.tokens[first.indexed:],
                                              first.indexed)])
    for emb in embs[1:]:  # the same words and buckets: ensemble members share one index
        emb.flat, emb.start, emb.count = first.flat, first.start, first.count


def split_validation(train: LabelledTexts, cfg: SentimentConfig, seed: int
                     ) -> tuple[LabelledTexts, LabelledTexts]:
    """``(train, val)``: the ``--val`` file, else a stratified share of the training data
    (drawn with ``cfg.split_seed``, else ``seed``)."""
    if cfg.val is not None:
        return train, read_split(cfg.val, cfg)
    return stratified_split(train, cfg.val_fraction,
                            seed if cfg.split_seed is None else cfg.split_seed)


def write_reports(out: str | Path, report: dict[str, Any]) -> None:
    """``metrics_val.json`` and ``metrics_test.json`` of the splits ``report`` holds."""
    for split in ("val", "test"):
        if split in report:
            (Path(out) / f"metrics_{split}.json").write_text(json.dumps(report[split], indent=2)
                                                            + "\n", encoding="utf-8")


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


def configs(settings: dict[str, Any], config_file: str | Path | None = None,
            resume_from: str | Path | None = None) -> tuple[Any, SentimentConfig]:
    """``(TrainConfig, SentimentConfig)``: see ``rnnkit.train.task_configs``."""
    from rnnkit.train import task_configs

    return tuple(task_configs(SentimentConfig, TASK, TRAIN_DEFAULTS, settings, config_file,
                              resume_from))


def fit(train_cfg, cfg: SentimentConfig, out: str | Path, resume: bool = False,
        fit_fn: Callable | None = None) -> dict[str, Any]:
    """Build, train, then evaluate the best checkpoint on the validation (and test) data: the
    metrics go to ``metrics_val.json`` / ``metrics_test.json``, the confusion matrices to PNGs.
    ``fit_fn(trainer, resume)`` lets the CLI turn Ctrl-C into exit 130. An ensemble
    (``cfg.ensemble > 1``) is trained member by member, see ``rnnkit.tasks.sentiment_ensemble``."""
    from rnnkit.train import Trainer, read_run_config

    if cfg.ensemble > 1:
        from rnnkit.tasks.sentiment_ensemble import fit_ensemble

        return fit_ensemble(train_cfg, cfg, out, resume, fit_fn)
    saved = read_run_config(out, TASK) if resume else {}
    test = read_split(cfg.test, cfg) if cfg.test is not None else None
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    if test is not None:
        check_labels(test, task.labels)
    trainer = Trainer(model, task, train_cfg, Path(out))
    last = fit_fn(trainer, resume) if fit_fn else trainer.fit(resume=resume)
    clf = load(out)
    # task.val_x holds ids from the training encoder, which has also met the validation words
    clf.encoder = task.encoder
    index_subwords(clf.model, clf.encoder)
    report = {"train": last}
    val = task.val_x, task.val_y
    report["val"] = clf.report_encoded(val[0], val[1], Path(out) / "confusion_val.png",
                                       "validation")
    if test is not None:
        report["test"] = clf.evaluate_data(test, Path(out) / "confusion_test.png")
    write_reports(out, report)
    return report


def train(data: str | Path, out: str | Path, *, val: str | Path | None = None,
          test: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
          **settings) -> SentimentClassifier:
    """Train a classifier on ``data`` into run directory ``out``.

    ``settings`` are any SentimentConfig or TrainConfig fields (``arch="gru"``,
    ``pooling="attention"``, ``max_time="3m"``, ...). Returns the trained classifier; its
    metrics are in ``.metrics`` (``val`` and, with ``test``, ``test``).
    """
    settings = {**settings, "data": str(data), "val": None if val is None else str(val),
                "test": None if test is None else str(test)}
    train_cfg, cfg = configs(settings, config, resume_from=out if resume else None)
    report = fit(train_cfg, cfg, out, resume)
    clf = load(out)
    clf.metrics = report
    return clf


# -- inference ----------------------------------------------------------------------------------

class SentimentClassifier:
    """A trained classifier with its tokenizer and labels, for prediction and evaluation."""

    def __init__(self, model: TextClassifier | EnsembleClassifier, encoder, labels: list[str],
                 config: dict[str, Any]):
        self.model = model.eval()
        self.encoder = encoder
        self.labels = labels
        self.config = config
        self.max_len = config.get("sentiment", {}).get("max_len", 200)
        self.metrics: dict[str, Any] = {}

    def _encode(self, texts: Sequence[str], source: str) -> list[torch.Tensor]:
        seqs = encode_texts(self.encoder, texts, self.max_len, source)
        index_subwords(self.model, self.encoder)
        return seqs

    def predict_proba(self, texts: Sequence[str], source: str = "the input") -> torch.Tensor:
        """Class probabilities ``(len(texts), classes)``, columns in the order of ``labels``."""
        if isinstance(texts, str):
            texts = [texts]
        logits = predict_logits(self.model, self._encode(texts, source), self.encoder.pad_id)
        return torch.softmax(logits, dim=1)

    def predict(self, texts: Sequence[str] | str) -> tuple[list[str], torch.Tensor]:
        """The most likely label of each text, and every class's probability."""
        probs = self.predict_proba(texts)
        return [self.labels[i] for i in probs.argmax(1).tolist()], probs

    @torch.no_grad()
    def explain(self, text: str) -> list[tuple[str, float]]:
        """Each token of ``text`` with its attention weight (attention pooling only)."""
        if self.model.cfg.pooling != "attention":
            raise UserError(f"--explain needs a model trained with attention pooling; this one "
                            f"uses {self.model.cfg.pooling!r} pooling.")
        ids = self._encode([text], "the text")[0]
        device = next(self.model.parameters()).device
        _, weights = self.model.encode(ids[None].to(device), torch.tensor([len(ids)],
                                                                          device=device))
        tokens = self.encoder.tokens(text)[:len(ids)] if isinstance(self.encoder, WordEncoder) \
            else [self.encoder.tokenizer.decode([i]) for i in ids.tolist()]
        if len(tokens) < len(ids):  # a text with no word was read as one unknown word
            tokens = ["<unk>"] * len(ids)
        return list(zip(tokens, weights[0].float().cpu().tolist(), strict=True))

    def report_encoded(self, seqs: list[torch.Tensor], y: torch.Tensor,
                       png: str | Path | None = None, title: str = "") -> dict[str, Any]:
        logits = predict_logits(self.model, seqs, self.encoder.pad_id)
        metrics = classification_metrics(y.tolist(), logits.argmax(1).tolist(), self.labels)
        metrics["loss"] = float(F.cross_entropy(logits, y))
        metrics["examples"] = len(y)
        if png is not None:
            plot_confusion_matrix(metrics["confusion_matrix"], self.labels, png,
                                  f"confusion matrix ({title})" if title else "confusion matrix")
        return metrics

    def evaluate_data(self, data: LabelledTexts, png: str | Path | None = None) -> dict[str, Any]:
        check_labels(data, self.labels)
        index = {label: i for i, label in enumerate(self.labels)}
        y = torch.tensor([index[label] for label in data.labels], dtype=torch.long)
        return self.report_encoded(self._encode(data.texts, data.source), y, png,
                                   Path(data.source).name)

    def evaluate(self, path: str | Path, png: str | Path | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 data_format: str | None = None) -> dict[str, Any]:
        """Accuracy, macro-F1, per-class precision/recall, confusion matrix (and its PNG) on a
        labelled file; columns default to the ones the model was trained with."""
        s = self.config.get("sentiment", {})
        data = read_labelled(path, text_column or s.get("text_column", "text"),
                             label_column or s.get("label_column", "label"), data_format)
        if data.skipped_empty:
            _note(f"note: skipped {data.skipped_empty} empty or whitespace-only texts in {path}.")
        return self.evaluate_data(data, png)


def load(run_dir: str | Path, device: str = "cpu", which: str = "best") -> SentimentClassifier:
    """The classifier of a sentiment run directory (its best checkpoint, else the last)."""
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model_cfg = ClassifierConfig.from_dict(config["model"])
        encoder = encoder_from_dict(config["tokenizer"])
        labels = [str(label) for label in config["labels"]]
    except (KeyError, TypeError) as e:
        raise UserError(f"the config of {run_dir} is missing sentiment settings ({e}); was it "
                        "written by rnnkit?") from None
    model = build_classifier(model_cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"the weights in {run_dir} do not fit the model its config describes "
                        "(edited or mixed-up checkpoint files).") from None
    index_subwords(model, encoder)
    return SentimentClassifier(model.to(device), encoder, labels, config)


def evaluate_run(run_dir: str | Path, data: Sequence[str | Path] | str | Path, **kwargs
                 ) -> dict[str, float]:
    """``rnnkit evaluate`` for sentiment runs: flat metrics of the saved model on ``data``."""
    path = data if isinstance(data, str | Path) else data[0]
    if not isinstance(data, str | Path) and len(data) != 1:
        raise UserError(f"evaluate takes one labelled file for a sentiment run, found {len(data)}.")
    m = load(run_dir).evaluate(path)
    flat = {"accuracy": m["accuracy"], "macro_f1": m["macro_f1"], "loss": m["loss"],
            "examples": float(m["examples"])}
    for label, pc in m["per_class"].items():
        flat[f"precision_{label}"] = pc["precision"]
        flat[f"recall_{label}"] = pc["recall"]
    return flat
