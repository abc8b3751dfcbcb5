"""The speech task's settings, each declared once (type, default, help, flag)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.data.features import FeatureConfig
from rnnkit.errors import UserError
from rnnkit.models.ctc_recognizer import SUBSAMPLES, CTCRecognizerConfig
from rnnkit.nn.registry import check_arch
from rnnkit.settings import derive, model_default, setting

TASK = "speech"


def _model(name: str) -> Any:
    return model_default(CTCRecognizerConfig, name)


@dataclass
class SpeechConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    data: str = setting("", "Manifest (.csv/.tsv/.jsonl with path and transcript columns) or a "
                        "folder of recordings.", metavar="PATH")
    val: str | None = setting(None, "Validation manifest or folder (default: a --val-fraction "
                              "of the training data).", metavar="PATH")
    test: str | None = setting(None, "Test manifest or folder, evaluated after training.",
                               metavar="PATH")
    val_fraction: float = setting(0.1, "Held out for validation without --val.")
    # audio and features
    sample_rate: int | None = setting(None, "Hz the audio is resampled to (default: the first "
                                      "recording's).")
    resample: bool = setting(True, "Resample a recording at another sample rate (with "
                             "--no-resample it is an error).")
    features: str = setting("logmel", "logmel or mfcc.")
    n_mels: int = setting(40, "Mel bands of the filterbank.")
    n_mfcc: int = setting(13, "MFCCs kept (with --features mfcc).")
    win_ms: float = setting(25.0, "Analysis window in milliseconds.")
    hop_ms: float = setting(10.0, "Milliseconds between frames.")
    # On FSDD per-utterance variance scaling blew up one speaker's near-empty high bands
    # (isolated test accuracy 95.0% against 99.7% with global statistics).
    normalize: str = setting("global", "Feature statistics: global (of the training set; "
                             "needed to stream) or utterance (each recording's own).")
    # transcripts
    lowercase: bool = setting(True, "Lower-case the transcripts.")
    alphabet: str | None = setting(None, "The characters to recognise (default: those of the "
                                   "training transcripts).")
    unknown_chars: str = setting("error", "Transcript characters outside --alphabet: error, "
                                 "drop (the characters) or skip (the recording).")
    skip_bad: bool = setting(False, "Leave out unreadable, silent or too-short recordings "
                             "(with a note) instead of stopping.")
    # SpecAugment
    spec_augment: bool = setting(True, "Time and frequency masks in training.")
    freq_masks: int = setting(2, "SpecAugment frequency masks per recording.")
    freq_width: int = setting(8, "Widest frequency mask, in mel bands.")
    time_masks: int = setting(2, "SpecAugment time masks per recording.")
    time_width: int = setting(20, "Widest time mask, in frames.")
    # the model (CTCRecognizerConfig holds the defaults)
    arch: str = setting(_model("arch"), "lstm, gru, rnn, mingru or minlstm.")
    layers: int = setting(_model("layers"), "Recurrent layers.")
    hidden: int = setting(_model("hidden"), "Hidden units per direction.")
    bidirectional: bool = setting(
        _model("bidirectional"), "Read each recording both ways (best accuracy) or forward "
        "only (can stream).", flag="--bidirectional/--unidirectional")
    subsample: int = setting(_model("subsample"), "1, 2 or 4 feature frames per recurrent step "
                             "(causal stride-2 convolutions).")
    conv_channels: int = setting(_model("conv_channels"), "Channels of the convolutions.")
    dropout: float = setting(_model("dropout"), "Dropout between and after the recurrent "
                             "layers.")
    # decoding
    lm_order: int = setting(4, "Character n-gram LM order for beam search (0: none).")

    def __post_init__(self):
        choices = {"normalize": ("utterance", "global"),
                   "unknown_chars": ("error", "drop", "skip"), "features": ("logmel", "mfcc")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)}, found "
                                f"{getattr(self, name)!r}.")
        check_arch(self.arch)
        if self.subsample not in SUBSAMPLES:
            raise UserError(f"subsample must be 1, 2 or 4, found {self.subsample}.")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be between 0 and 1, found {self.val_fraction}.")

    def feature_config(self, sample_rate: int) -> FeatureConfig:
        return FeatureConfig(sample_rate=sample_rate, kind=self.features, n_mels=self.n_mels,
                             n_mfcc=self.n_mfcc, win_ms=self.win_ms, hop_ms=self.hop_ms)

    def model_config(self, input_size: int, vocab_size: int) -> CTCRecognizerConfig:
        """The recogniser's config: every model field this config shares, by name."""
        return derive(CTCRecognizerConfig, self, input_size=input_size, vocab_size=vocab_size)


# Trainer settings that suit small speech sets, below any config file and flag.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 16, "epochs": 30, "schedule": "cosine", "warmup_steps": 50,
    "clip_norm": 5.0, "monitor": "val_cer", "mode": "min",
}
