"""A trained classifier (``SentimentClassifier``): predict, explain and evaluate texts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.padding import pad_batch
from rnnkit.data.table import LabelledTexts
from rnnkit.data.text_encoders import WordEncoder, encode_texts, encoder_from_dict
from rnnkit.data.vocab import char_ngrams
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
from rnnkit.tasks import precision as P
from rnnkit.tasks.runs import load_run
from rnnkit.tasks.sentiment.config import TASK
from rnnkit.tasks.sentiment.reading import check_labels, read_texts


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


class SentimentClassifier:
    """A trained classifier with its tokenizer and labels, for prediction and evaluation."""

    task = TASK

    def __init__(self, model: TextClassifier | EnsembleClassifier, encoder, labels: list[str],
                 config: dict[str, Any]):
        self.model = model.eval()
        self.encoder = encoder
        self.labels = labels
        self.config = config
        self.max_len = config.get("sentiment", {}).get("max_len", 200)
        self.metrics: dict[str, Any] = {}
        self.precision = P.FLOAT32

    def probe(self, bf16: bool) -> torch.Tensor:
        """Class probabilities of 64 made-up 40-token texts (``rnnkit.tasks.precision``)."""
        ids = P.made_up_ids((64, 40), 2, self.model.cfg.vocab_size)
        device = next(self.model.parameters()).device
        with P.autocast_of(self.model, bf16):
            logits, _ = self.model(ids.to(device), torch.full((64,), 40))
        return logits.float().softmax(-1)

    @property
    def module(self) -> torch.nn.Module:
        return self.model

    def _encode(self, texts: Sequence[str], source: str) -> list[torch.Tensor]:
        seqs = encode_texts(self.encoder, texts, self.max_len, source)
        index_subwords(self.model, self.encoder)
        return seqs

    @P.in_precision
    def predict_proba(self, texts: Sequence[str] | str, source: str = "the input"
                      ) -> torch.Tensor:
        """Class probabilities ``(len(texts), classes)``, columns in the order of ``labels``."""
        if isinstance(texts, str):
            texts = [texts]
        logits = predict_logits(self.model, self._encode(texts, source), self.encoder.pad_id)
        return torch.softmax(logits, dim=1)

    def predict(self, texts: Sequence[str] | str, source: str = "the input"
                ) -> list[dict[str, Any]]:
        """For each text its most likely ``label`` and every label's ``probabilities``."""
        out = []
        for row in self.predict_proba(texts, source).tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append({"label": self.labels[best],
                        "probabilities": dict(zip(self.labels, row, strict=True))})
        return out

    @torch.no_grad()
    @P.in_precision
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

    @P.in_precision
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

    def evaluate(self, data: str | Path | Sequence[str | Path], png: str | Path | None = None,
                 text_column: str | None = None, label_column: str | None = None,
                 data_format: str | None = None) -> dict[str, Any]:
        """Accuracy, macro-F1, loss, examples, each class's precision and recall (also under
        ``per_class``), the confusion matrix (and its PNG) on a labelled file; columns default
        to the ones the model was trained with."""
        if not isinstance(data, str | Path):
            if len(data) != 1:
                raise UserError(f"evaluate takes one labelled file for a sentiment run, found "
                                f"{len(data)}.")
            data = data[0]
        s = self.config.get("sentiment", {})
        m = self.evaluate_data(read_texts(data, text_column or s.get("text_column", "text"),
                                          label_column or s.get("label_column", "label"),
                                          data_format), png)
        for label, pc in m["per_class"].items():  # flat, for `rnnkit evaluate`
            m[f"precision_{label}"] = pc["precision"]
            m[f"recall_{label}"] = pc["recall"]
        return m


def _read(config: dict[str, Any]) -> tuple[ClassifierConfig, tuple[Any, list[str]]]:
    model_cfg = ClassifierConfig.from_dict(config["model"])
    encoder = encoder_from_dict(config["tokenizer"])
    return model_cfg, (encoder, [str(label) for label in config["labels"]])


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         precision: str = "auto") -> SentimentClassifier:
    """The classifier of a sentiment run directory (its best checkpoint, else the last),
    inferring in ``precision`` (auto: ``rnnkit.tasks.precision``)."""
    model, (encoder, labels), config = load_run(run_dir, TASK, which, _read, build_classifier,
                                                "sentiment")
    index_subwords(model, encoder)
    clf = SentimentClassifier(model.to(device), encoder, labels, config)
    clf.precision = P.choose(precision, device, clf.model, clf.probe)
    return clf
