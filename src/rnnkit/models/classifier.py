"""A text classifier: embedding -> bidirectional recurrent encoder -> pooling -> dropout -> linear.

Sequences of different lengths share a padded batch; the encoder gets their lengths and the
pooling a mask, so padding never changes a sequence's result. ``ensemble > 1`` holds that many
classifiers (trained independently, see ``rnnkit.train.ensemble``) and predicts the
mean of their probabilities: on small labelled sets the members' errors differ enough that the
mean is more accurate than any one of them.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import check_arch, recurrent_layer
from rnnkit.nn.subword_embedding import SubwordEmbedding

POOLINGS = ("last", "max", "mean", "attention")


@dataclass
class ClassifierConfig:
    vocab_size: int  # word rows; with subwords, higher ids are words known by their n-grams only
    num_classes: int
    arch: str = "lstm"
    layers: int = 1
    hidden: int = 128  # per direction
    embed: int = 200
    bidirectional: bool = True
    pooling: str = "max"
    dropout: float = 0.5  # before the output layer, and between recurrent layers
    embed_dropout: float = 0.3  # on the word embeddings
    # share of tokens whose whole vector is zeroed in training: small labelled sets overfit to a
    # few words without it
    word_dropout: float = 0.25
    pad_id: int | None = 0  # embedding row kept at zero; None when padding uses a real token id
    class_weights: list[float] | None = None  # loss weight of each class
    init: str = "default"  # recurrent weight initialisation, see rnnkit.nn
    forget_bias: float | None = None  # LSTM forget-gate bias
    ensemble: int = 1  # classifiers whose probabilities predictions average
    subword_buckets: int = 0  # > 0: word vectors add their character n-grams' (SubwordEmbedding)

    def __post_init__(self):
        check_arch(self.arch)
        if self.pooling not in POOLINGS:
            raise UserError(f"the pooling must be one of {', '.join(POOLINGS)}, "
                            f"found {self.pooling!r}.")
        for name in ("vocab_size", "layers", "hidden", "embed", "ensemble"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive whole number, "
                                f"found {getattr(self, name)}.")
        if self.num_classes < 2:
            raise UserError(f"a classifier needs at least two classes, found {self.num_classes}.")
        if self.subword_buckets < 0:
            raise UserError(f"subword_buckets must be 0 (off) or positive, "
                            f"found {self.subword_buckets}.")
        for name in ("dropout", "embed_dropout", "word_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise UserError(f"{name} must be in [0, 1), found {getattr(self, name)}.")
        if self.class_weights is not None and len(self.class_weights) != self.num_classes:
            raise UserError(f"class_weights needs one weight per class ({self.num_classes}), "
                            f"found {len(self.class_weights)}.")

    @classmethod
    def from_dict(cls, d: dict) -> ClassifierConfig:
        unknown = sorted(set(d) - {f.name for f in fields(cls)})
        if unknown:
            raise UserError(f"unknown classifier settings: {', '.join(unknown)}.")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def encoder_layer(cfg: ClassifierConfig) -> nn.Module:
    """The recurrent layer for ``cfg.arch`` from the architecture registry."""
    extra = {}
    if cfg.init != "default":
        extra["init"] = cfg.init
    if cfg.forget_bias is not None:
        if cfg.arch not in ("lstm", "minlstm"):
            raise UserError(f"forget_bias applies to LSTM-like layers, not {cfg.arch!r}.")
        extra["forget_bias"] = cfg.forget_bias
    return recurrent_layer(cfg.arch, cfg.embed, cfg.hidden, cfg.layers, batch_first=True,
                           dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                           bidirectional=cfg.bidirectional, **extra)


class TextClassifier(nn.Module):
    """``forward(tokens, lengths, labels=None) -> (logits, loss)``; tokens ``(batch, time)``."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        if cfg.subword_buckets:
            self.embedding = SubwordEmbedding(cfg.vocab_size, cfg.embed, cfg.subword_buckets,
                                              padding_idx=cfg.pad_id)
        else:
            self.embedding = nn.Embedding(cfg.vocab_size, cfg.embed, padding_idx=cfg.pad_id)
        self.embed_dropout = nn.Dropout(cfg.embed_dropout)
        self.rnn = encoder_layer(cfg)
        # Layers with rnnkit's API take lengths; any torch.nn-like layer gets a PackedSequence.
        self._takes_lengths = "lengths" in inspect.signature(self.rnn.forward).parameters
        width = cfg.hidden * (2 if cfg.bidirectional else 1)
        if cfg.pooling == "attention":
            self.attention = nn.Sequential(nn.Linear(width, width), nn.Tanh(),
                                           nn.Linear(width, 1, bias=False))
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(width, cfg.num_classes)
        weights = torch.tensor(cfg.class_weights, dtype=torch.float32) if cfg.class_weights \
            else torch.ones(cfg.num_classes)
        self.register_buffer("class_weights", weights, persistent=False)

    def _run_encoder(self, x: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """Outputs ``(batch, time, width)``, zero past each end, and the final hidden states."""
        if self._takes_lengths:
            y, h = self.rnn(x, lengths=lengths)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            y, h = self.rnn(packed)
            y, _ = nn.utils.rnn.pad_packed_sequence(y, batch_first=True,
                                                    total_length=x.shape[1])
        if isinstance(h, tuple):  # LSTM-like: (h, c)
            h = h[0]
        return y, h

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """The pooled sequence vectors ``(batch, width)`` and, with attention pooling, each
        position's weight ``(batch, time)`` (zero on padding)."""
        x = self.embedding(tokens)
        if self.training and self.cfg.word_dropout > 0:
            # drop whole words (Iyyer et al. 2015): the model cannot lean on a few of them
            keep = torch.rand(tokens.shape, device=tokens.device) >= self.cfg.word_dropout
            x = x * keep[:, :, None].to(x.dtype)
        x = self.embed_dropout(x)
        y, h = self._run_encoder(x, lengths)
        mask = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]
        pooling = self.cfg.pooling
        if pooling == "last":  # the last layer's final state of each direction
            dirs = 2 if self.cfg.bidirectional else 1
            return h[-dirs:].transpose(0, 1).reshape(tokens.shape[0], -1), None
        if pooling == "max":
            return y.masked_fill(~mask[:, :, None], float("-inf")).amax(1), None
        if pooling == "mean":
            y = y.masked_fill(~mask[:, :, None], 0.0)
            return y.sum(1) / lengths[:, None].to(y.dtype), None
        scores = self.attention(y).squeeze(-1).masked_fill(~mask, float("-inf"))
        weights = torch.softmax(scores.float(), dim=1).to(y.dtype)
        return torch.einsum("bt,btd->bd", weights, y), weights

    def forward(self, tokens: Tensor, lengths: Tensor, labels: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        pooled, _ = self.encode(tokens, lengths)
        logits = self.output(self.dropout(pooled))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels, weight=self.class_weights)
        return logits, loss


class EnsembleClassifier(nn.Module):
    """``cfg.ensemble`` TextClassifiers. ``forward`` returns the log of the members' mean
    probabilities (so softmax and argmax work as for one classifier) and the mean of their
    losses."""

    def __init__(self, cfg: ClassifierConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(TextClassifier(cfg) for _ in range(cfg.ensemble))

    def encode(self, tokens: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor | None]:
        """The first member's pooled vectors and the members' mean attention weights."""
        encoded = [m.encode(tokens, lengths) for m in self.members]
        weights = None
        if encoded[0][1] is not None:
            weights = torch.stack([w for _, w in encoded]).mean(0)
        return encoded[0][0], weights

    def forward(self, tokens: Tensor, lengths: Tensor, labels: Tensor | None = None
                ) -> tuple[Tensor, Tensor | None]:
        outs = [m(tokens, lengths, labels) for m in self.members]
        log_probs = torch.stack([F.log_softmax(logits.float(), dim=-1) for logits, _ in outs])
        mean_log_prob = torch.logsumexp(log_probs, 0) - math.log(len(outs))
        loss = None if labels is None else torch.stack([loss for _, loss in outs]).mean()
        return mean_log_prob, loss


def build_classifier(cfg: ClassifierConfig) -> TextClassifier | EnsembleClassifier:
    return TextClassifier(cfg) if cfg.ensemble == 1 else EnsembleClassifier(cfg)


def members(model: TextClassifier | EnsembleClassifier) -> list[TextClassifier]:
    """The single classifiers of ``model`` (itself when it is one)."""
    return list(model.members) if isinstance(model, EnsembleClassifier) else [model]
