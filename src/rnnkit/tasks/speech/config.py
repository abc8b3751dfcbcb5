"""The speech task's settings, each declared once (type, default, help, flag)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.data.augment import AugmentConfig
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
    # MFCCs (the cepstrum smooths away the harmonics of the speaker's pitch) generalised
    # better than log-mel to FSDD's unseen speakers (68% against 62%, one rotation)
    features: str = setting("mfcc", "mfcc or logmel.")
    n_mels: int = setting(40, "Mel bands of the filterbank.")
    n_mfcc: int = setting(13, "MFCCs kept (with --features mfcc).")
    win_ms: float = setting(25.0, "Analysis window in milliseconds.")
    hop_ms: float = setting(10.0, "Milliseconds between frames.")
    # On FSDD per-utterance variance scaling blew up one speaker's near-empty high bands
    # (isolated test accuracy 95.0% against 99.7% with global statistics); subtracting only the
    # recording's mean removes its level and microphone and generalised best to new speakers
    # (BENCHMARKS.md, leave one speaker out).
    normalize: str = setting("auto", "Feature statistics: mean (each recording's own mean, the "
                             "training set's spread), global (the training set's; needed to "
                             "stream), utterance (each recording's own mean and spread), or "
                             "auto: mean, global for unidirectional models.")
    # FSDD's cleanest speaker (pauses 50 dB below his vowels, the others' 18-35 dB) was the one
    # most misheard; flooring at 40 dB raised his leave-one-out accuracy from 72% to 86%
    # (BENCHMARKS.md, speech)
    range_db: float | None = setting(40.0, "Floor the mel energies this many dB below the "
                                     "recording's loudest, so that clean and noisy recordings "
                                     "look alike in their pauses (bidirectional models only: a "
                                     "stream does not know its loudest; none: off).")
    # transcripts
    lowercase: bool = setting(True, "Lower-case the transcripts.")
    alphabet: str | None = setting(None, "The characters to recognise (default: those of the "
                                   "training transcripts).")
    unknown_chars: str = setting("error", "Transcript characters outside --alphabet: error, "
                                 "drop (the characters) or skip (the recording).")
    skip_bad: bool = setting(False, "Leave out unreadable, silent or too-short recordings "
                             "(with a note) instead of stopping.")
    # other voices, levels, rooms and microphones (rnnkit.data.augment), in training only
    augment: bool = setting(True, "Change each training recording on the fly: speed, frequency "
                            "warp, gain, noise, reverberation and microphone colour (the "
                            "recordings stay in memory, 2 bytes a sample).")
    # +-15% speed and +-20% warp: FSDD's unseen speaker 74% against 68% with +-10% / +-10% and
    # 69% with +-20% / +-25% (one rotation, BENCHMARKS.md)
    speed: float = setting(0.15, "Speed perturbation: tempo and pitch by up to +- this share.")
    warp: float = setting(0.2, "Frequency warp (vocal tract length) by up to +- this share.")
    # local tempo +-25% and formant shifts of 0.2 knot spacings: FSDD's two hardest unseen
    # speakers 75% against 69% without (BENCHMARKS.md, speech)
    tempo: float = setting(0.25, "Local tempo changes: stretches of a recording faster or slower "
                           "by up to +- this share.")
    shape: float = setting(0.2, "Formant shifts: the frequency axis bent by a smooth random map "
                           "(knots moved by up to +- this share of their spacing).")
    gain_db: float = setting(20.0, "Loudness changed by up to +- this many dB.")
    noise: float = setting(0.5, "Share of training recordings with added white noise.")
    snr_db: float = setting(10.0, "Lowest signal-to-noise ratio of that noise, in dB (up to 40).")
    reverb: float = setting(0.3, "Share of training recordings in a simulated room.")
    eq_db: float = setting(6.0, "Random microphone colour within +- this many dB.")
    band: float = setting(0.0, "Share of training recordings with random band edges (a low "
                          "cut, a high cut), as other microphones and lines have.")
    # SpecAugment
    spec_augment: bool = setting(True, "Time and frequency masks in training.")
    freq_masks: int = setting(2, "SpecAugment frequency masks per recording.")
    freq_width: int | None = setting(None, "Widest frequency mask, in feature channels "
                                     "(default: a fifth of them).")
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
    # two members, side by side on two cores in the same 6 minutes: FSDD's unseen speakers 86.5%
    # and 85.9% (two seeds) against 84.0% and 83.5% for one model (leave one speaker out,
    # BENCHMARKS.md, speech); a second thread gives one model almost no more steps
    ensemble: int | None = setting(None, "Recognisers trained with their own seeds; the "
                                   "transcript is the one they find likeliest together (costs "
                                   "that many times the compute; on a CPU they train side by "
                                   "side, one per core). Default: 2 for a bidirectional model, "
                                   "1 for a unidirectional one (only a single model streams).")
    workers: int | None = setting(None, "Ensemble members trained at once (default: one per CPU "
                                  "core; 1 on a GPU).")
    split_seed: int | None = setting(None, "Seed of the --val-fraction split (default: the "
                                     "run's seed).")
    # decoding
    lm_order: int = setting(4, "Character n-gram LM order for beam search (0: none).")

    def __post_init__(self):
        choices = {"normalize": ("auto", "mean", "global", "utterance"),
                   "unknown_chars": ("error", "drop", "skip"), "features": ("logmel", "mfcc")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise UserError(f"{name} must be one of {', '.join(allowed)}, found "
                                f"{getattr(self, name)!r}.")
        check_arch(self.arch)
        if self.ensemble is None:
            self.ensemble = 2 if self.bidirectional else 1
        if self.ensemble < 1:
            raise UserError(f"ensemble must be at least 1, found {self.ensemble}.")
        if self.subsample not in SUBSAMPLES:
            raise UserError(f"subsample must be 1, 2 or 4, found {self.subsample}.")
        self.augment_config()  # checks the ranges
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be between 0 and 1, found {self.val_fraction}.")

    def normalize_mode(self) -> str:
        """``normalize`` with auto resolved (a stream cannot know a recording's mean)."""
        if self.normalize != "auto":
            return self.normalize
        return "mean" if self.bidirectional else "global"

    def augment_config(self) -> AugmentConfig | None:
        """The training-time changes to recordings, or None with ``augment`` off."""
        if not self.augment:
            return None
        return AugmentConfig(speed=self.speed, warp=self.warp, gain_db=self.gain_db,
                             noise=self.noise, snr_db=self.snr_db, reverb=self.reverb,
                             eq_db=self.eq_db, band=self.band, tempo=self.tempo,
                             shape=self.shape)

    def feature_config(self, sample_rate: int) -> FeatureConfig:
        return FeatureConfig(sample_rate=sample_rate, kind=self.features, n_mels=self.n_mels,
                             n_mfcc=self.n_mfcc, win_ms=self.win_ms, hop_ms=self.hop_ms,
                             range_db=self.range_db if self.bidirectional else None)

    def model_config(self, input_size: int, vocab_size: int) -> CTCRecognizerConfig:
        """The recogniser's config: every model field this config shares, by name."""
        return derive(CTCRecognizerConfig, self, input_size=input_size, vocab_size=vocab_size,
                      ensemble=1)  # one model: an ensemble's members are each one


# Trainer settings that suit small speech sets, below any config file and flag.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 16, "epochs": 100, "schedule": "cosine", "warmup_steps": 50,
    "clip_norm": 5.0, "monitor": "val_cer", "mode": "min",
}
