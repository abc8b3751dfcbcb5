"""The translation task's settings, each declared once, and its trainer defaults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rnnkit.errors import UserError
from rnnkit.models.seq2seq import Seq2SeqConfig
from rnnkit.settings import derive, model_default, setting

if TYPE_CHECKING:
    from rnnkit.data.pairs import Vocabularies

TASK = "translate"


def _model(name: str) -> Any:
    return model_default(Seq2SeqConfig, name)


@dataclass
class TranslateConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    src: str = setting("", "Source sentences, one per line (plain or .gz), or a .tsv file with "
                       "source and target columns.", metavar="PATH")
    tgt: str | None = setting(None, "Target sentences, aligned line by line with --src.",
                              metavar="PATH")
    val_src: str | None = setting(None, "Validation source sentences (default: --val-fraction "
                                  "of the training pairs).", metavar="PATH")
    val_tgt: str | None = setting(None, "Validation target sentences.", metavar="PATH")
    test_src: str | None = setting(None, "Test source sentences, translated and scored after "
                                   "training.", metavar="PATH")
    test_tgt: str | None = setting(None, "Test target sentences.", metavar="PATH")
    val_fraction: float = setting(0.05, "Held out for validation without --val-src.")
    max_len: int = setting(100, "Training pairs with more subwords on either side are skipped.")
    tokenizer: str = setting("bpe", "bpe or unigram subwords.")
    vocab_size: int = setting(8000, "Subwords per vocabulary.")
    joint_vocab: bool = setting(True, "One vocabulary for both languages or one each.",
                                flag="--joint-vocab/--separate-vocab")
    # the model's settings: defaults are Seq2SeqConfig's
    arch: str = setting(_model("arch"), "gru, lstm, rnn, mingru or minlstm.")
    layers: int = setting(_model("layers"), "Encoder layers (bidirectional).")
    dec_layers: int = setting(_model("dec_layers"), "Decoder layers.")
    hidden: int = setting(_model("hidden"), "Hidden units per direction.")
    embed: int = setting(_model("embed"), "Subword embedding width.")
    attention: str = setting(_model("attention"), "multiplicative (Luong) or additive (Bahdanau).")
    input_feeding: bool = setting(_model("input_feeding"),
                                  "Feed the last attentional vector back in.")
    dropout: float = setting(_model("dropout"), "Dropout rate.")
    tie_embeddings: bool = setting(_model("tie_embeddings"),
                                   "Output layer shares the decoder embedding.")
    # training
    label_smoothing: float = setting(0.1, "Label smoothing of the loss.")
    teacher_forcing: float = setting(1.0, "Share of decoder steps fed the reference token.")
    teacher_forcing_decay: float = setting(0.0, "Lowered by this each epoch.")
    teacher_forcing_min: float = setting(0.0, "The teacher-forcing share never decays below "
                                         "this.")
    eval_bleu_sentences: int = setting(500, "Validation pairs translated greedily for BLEU at "
                                       "each evaluation.")
    # decoding
    beam: int = setting(5, "Beam size for evaluation.")
    length_penalty: float = setting(0.6, "Length normalisation exponent (0: none).")
    max_len_ratio: float = setting(2.0, "Output length limit as a multiple of the source "
                                   "length.")
    max_len_extra: int = setting(10, "Output subwords allowed beyond that multiple.")

    def __post_init__(self):
        if self.max_len < 1:
            raise UserError(f"max_len must be a positive number of subwords, found {self.max_len}")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label_smoothing must be in [0, 1), found {self.label_smoothing}")
        for name in ("teacher_forcing", "teacher_forcing_min"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be between 0 and 1, found {getattr(self, name)}")
        if self.beam < 1:
            raise UserError(f"beam must be at least 1, found {self.beam}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be between 0 and 1, found {self.val_fraction}")

    def teacher_forcing_at(self, epoch: int) -> float:
        """The teacher-forcing ratio of ``epoch`` (from 0): a linear decay down to the floor."""
        if not self.teacher_forcing_decay:
            return self.teacher_forcing
        return max(self.teacher_forcing_min,
                   self.teacher_forcing - self.teacher_forcing_decay * epoch)

    def decoding(self) -> dict[str, Any]:
        return {"beam": self.beam, "length_penalty": self.length_penalty,
                "max_len_ratio": self.max_len_ratio, "max_len_extra": self.max_len_extra}

    def model_config(self, vocab: Vocabularies) -> Seq2SeqConfig:
        """The network for ``vocab``: every Seq2SeqConfig field this config also has, plus the
        vocabulary sizes and special ids."""
        return derive(Seq2SeqConfig, self, src_vocab=vocab.src.vocab_size,
                      tgt_vocab=vocab.tgt.vocab_size, pad_id=vocab.tgt.pad_id,
                      bos_id=vocab.tgt.bos_id, eos_id=vocab.tgt.eos_id)


# Trainer settings for sentence-pair training, below any config file and flag.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 64, "epochs": 10, "schedule": "cosine", "warmup_steps": 200,
    "weight_decay": 0.0, "clip_norm": 1.0,
}
