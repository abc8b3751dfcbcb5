"""The sentiment task's settings, each declared once (``rnnkit.settings.setting``); the model's
defaults are ``ClassifierConfig``'s."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.data.vocab import DEFAULT_PATTERN
from rnnkit.errors import UserError
from rnnkit.models.classifier import ClassifierConfig
from rnnkit.settings import derive, model_default, setting

TASK = "sentiment"


def _model(name: str) -> Any:
    return model_default(ClassifierConfig, name)


@dataclass
class SentimentConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    data: str = setting("", "Training file: .csv, .tsv, .jsonl, or .txt with one 'LABEL "
                        "sentence' per line.", metavar="PATH")
    val: str | None = setting(None, "Validation file (default: a stratified --val-fraction of "
                              "the training data).", metavar="PATH")
    test: str | None = setting(None, "Test file, evaluated after training.", metavar="PATH")
    val_fraction: float = setting(0.1, "Held out for validation without --val.")
    data_format: str | None = setting(None, "csv, tsv, jsonl or lines (default: from the file "
                                      "name).", flag="--format")
    text_column: str = setting("text", "Column (or JSON key) of the texts.")
    label_column: str = setting("label", "Column (or JSON key) of the labels.")
    tokenizer: str = setting("word", "word, or bpe (byte-level BPE trained on the data, case "
                             "kept).")
    bpe_vocab: int = setting(4000, "Vocabulary size of the bpe tokenizer.")
    lowercase: bool = setting(True, "Lower-case the texts before splitting them into words.")
    token_pattern: str = setting(DEFAULT_PATTERN, "Regular expression of one word token.")
    # rarer words share the <unk> row (or have only their n-grams), so <unk> is trained
    min_freq: int = setting(2, "Rarer words have no vector of their own (only their n-grams', "
                            "or <unk>'s).")
    subwords: bool = setting(True, "Word vectors add their character n-grams' (default on), so "
                             "rare and unseen words get a vector from their spelling.")
    # 8192 and 16384 scored alike on SST-2; the model's own default is 0 (no n-grams)
    subword_buckets: int = setting(8192, "Hash buckets of the character n-grams.")
    max_vocab: int | None = setting(50_000, "Most words kept.")
    max_len: int = setting(200, "Tokens kept per text.")
    vectors: str | None = setting(None, "GloVe or word2vec text file.", metavar="PATH")
    freeze_vectors: bool = setting(False, "Keep the word vectors fixed.")
    init_from: str | None = setting(None, "A text-generation run directory to start the "
                                    "tokenizer and encoder from.", metavar="PATH")
    bucket: bool = setting(True, "Batch texts of similar lengths together.")
    class_weights: str = setting("none", "none or balanced (for imbalanced classes).")
    # model (ClassifierConfig's defaults)
    arch: str = setting(_model("arch"), "lstm, gru, rnn, mingru or minlstm.")
    layers: int = setting(_model("layers"), "Recurrent layers.")
    hidden: int = setting(_model("hidden"), "Hidden units per direction.")
    embed: int = setting(_model("embed"), "Word embedding width.")
    pooling: str = setting(_model("pooling"), "last, max, mean or attention.")
    dropout: float = setting(_model("dropout"), "Dropout before the output.")
    embed_dropout: float = setting(_model("embed_dropout"), "Dropout on the word embeddings.")
    word_dropout: float = setting(_model("word_dropout"), "Share of words dropped in training.")
    init: str = setting(_model("init"), "Recurrent weight initialisation: default, orthogonal "
                        "or chrono.")
    forget_bias: float | None = setting(_model("forget_bias"), "LSTM forget-gate bias (default: "
                                        "the layer's own).")
    # members trained independently, probabilities averaged: costs ensemble x the compute,
    # buys accuracy on small labelled sets
    ensemble: int = setting(_model("ensemble"), "Classifiers trained with their own seeds, "
                            "probabilities averaged (costs that many times the compute).")
    workers: int | None = setting(None, "Ensemble members trained at once (default: one per CPU "
                                  "core; 1 on a GPU).")
    split_seed: int | None = setting(None, "Seed of the stratified validation split (default: "
                                     "the run's seed).")

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
        """The classifier's config: the settings both configs name, then ``changes`` (what the
        data decides: padding id, class weights, n-gram buckets ...)."""
        return derive(ClassifierConfig, self, vocab_size=vocab_size, num_classes=num_classes,
                      **changes)


# Trainer settings that suit small classification sets, below any config file and flag: the
# checkpoint kept is the one with the best validation macro-F1 (accuracy can hide a class).
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 32, "epochs": 10, "schedule": "cosine", "warmup_steps": 20,
    "weight_decay": 0.0, "clip_norm": 5.0, "monitor": "val_macro_f1", "mode": "max",
}
