"""Speech features in torch: log-mel filterbanks and MFCCs, normalisation, SpecAugment.

Frames are taken without centring (the first frame starts at the first sample, ``1 + (N -
n_fft) // hop`` frames), so the same frames come out whether a recording is featurised whole or
sample chunk by sample chunk as it arrives (``StreamingFeatures``). The mel filterbank follows
Slaney's Auditory Toolbox (the mel scale linear below 1 kHz and logarithmic above, each
triangle scaled to unit area), which is also librosa's default and is checked against it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch

from rnnkit.errors import UserError

LOG_FLOOR = 1e-6  # added to mel energies before the log: digital silence stays finite


@dataclass
class FeatureConfig:
    sample_rate: int = 16000
    kind: str = "logmel"  # logmel or mfcc
    n_mels: int = 40
    n_mfcc: int = 13
    win_ms: float = 25.0
    hop_ms: float = 10.0
    fmin: float = 0.0
    fmax: float | None = None  # None: half the sample rate
    range_db: float | None = None  # mel energies floored this far below the recording's peak

    def __post_init__(self):
        if self.kind not in ("logmel", "mfcc"):
            raise UserError(f"features must be logmel or mfcc, found {self.kind!r}.")
        if self.sample_rate < 1000:
            raise UserError(f"sample_rate must be at least 1000 Hz, found {self.sample_rate}.")
        if self.kind == "mfcc" and not 1 <= self.n_mfcc <= self.n_mels:
            raise UserError(f"n_mfcc must be between 1 and n_mels ({self.n_mels}), found "
                            f"{self.n_mfcc}.")

    @property
    def win_length(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop_length(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def n_fft(self) -> int:
        return 1 << (self.win_length - 1).bit_length()

    @property
    def dim(self) -> int:
        return self.n_mfcc if self.kind == "mfcc" else self.n_mels

    def to_dict(self) -> dict:
        return asdict(self)


def hz_to_mel(f: torch.Tensor) -> torch.Tensor:
    """Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz, then logarithmic (27 mels per octave
    of 6.4)."""
    f = torch.as_tensor(f, dtype=torch.float64)
    linear = f / (200.0 / 3)
    log = 15.0 + torch.log(f.clamp(min=1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return torch.where(f >= 1000.0, log, linear)


def mel_to_hz(m: torch.Tensor) -> torch.Tensor:
    m = torch.as_tensor(m, dtype=torch.float64)
    linear = m * (200.0 / 3)
    log = 1000.0 * torch.exp((m - 15.0) * (math.log(6.4) / 27.0))
    return torch.where(m >= 15.0, log, linear)


def mel_filterbank(n_fft: int, n_mels: int, sample_rate: int, fmin: float = 0.0,
                   fmax: float | None = None) -> torch.Tensor:
    """``(n_mels, n_fft // 2 + 1)`` triangular filters, each of unit area (Slaney)."""
    fmax = sample_rate / 2 if fmax is None else fmax
    if not 0 <= fmin < fmax <= sample_rate / 2:
        raise UserError(f"the mel range must satisfy 0 <= fmin < fmax <= {sample_rate / 2:g} Hz "
                        f"(half the sample rate), found fmin {fmin:g}, fmax {fmax:g}.")
    freqs = torch.linspace(0, sample_rate / 2, n_fft // 2 + 1, dtype=torch.float64)
    edges = mel_to_hz(torch.linspace(float(hz_to_mel(fmin)), float(hz_to_mel(fmax)), n_mels + 2,
                                     dtype=torch.float64))
    width = edges.diff()
    rise = (freqs[None, :] - edges[:-2, None]) / width[:-1, None]
    fall = (edges[2:, None] - freqs[None, :]) / width[1:, None]
    weights = torch.minimum(rise, fall).clamp(min=0)
    weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.float()


def dct_matrix(n_out: int, n_in: int) -> torch.Tensor:
    """``(n_out, n_in)`` orthonormal DCT-II: MFCCs are this times the log-mel energies."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.float()


class Featurizer:
    """Samples (1-D) -> features ``(frames, dim)``, log-mel or MFCC, not normalised."""

    def __init__(self, cfg: FeatureConfig):
        self.cfg = cfg
        self.window = torch.hann_window(cfg.win_length, periodic=True)
        self.mel = mel_filterbank(cfg.n_fft, cfg.n_mels, cfg.sample_rate, cfg.fmin, cfg.fmax)
        self.dct = dct_matrix(cfg.n_mfcc, cfg.n_mels) if cfg.kind == "mfcc" else None

    def frames(self, n_samples: int) -> int:
        """How many frames ``n_samples`` samples give (0 when shorter than one window)."""
        return max(0, 1 + (n_samples - self.cfg.n_fft) // self.cfg.hop_length)

    def power(self, samples: torch.Tensor) -> torch.Tensor:
        """Power spectrogram ``(frames, n_fft // 2 + 1)``."""
        cfg = self.cfg
        spec = torch.stft(samples, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window,
                          center=False, return_complex=True)
        return (spec.real ** 2 + spec.imag ** 2).T

    def mel_power(self, samples: torch.Tensor) -> torch.Tensor:
        """Mel-filtered power spectrogram ``(frames, n_mels)``."""
        return self.power(samples) @ self.mel.T

    def from_power(self, power: torch.Tensor) -> torch.Tensor:
        """The features of a power spectrogram (``power``'s output, perhaps altered)."""
        mel = power @ self.mel.T
        if self.cfg.range_db is not None and mel.numel():
            mel = torch.maximum(mel, mel.max() * 10 ** (-self.cfg.range_db / 10))
        feats = torch.log(mel + LOG_FLOOR)
        return feats @ self.dct.T if self.dct is not None else feats

    def __call__(self, samples, name: str = "the audio") -> torch.Tensor:
        samples = torch.as_tensor(samples, dtype=torch.float32)
        if self.frames(len(samples)) == 0:
            raise UserError(f"{name} lasts {len(samples) / self.cfg.sample_rate * 1000:.0f} ms, "
                            f"shorter than one {self.cfg.n_fft / self.cfg.sample_rate * 1000:.0f}"
                            " ms analysis window.")
        return self.from_power(self.power(samples))


def normalize_utterance(feats: torch.Tensor) -> torch.Tensor:
    """Each feature dimension to zero mean and unit variance over the utterance's frames."""
    mean = feats.mean(0, keepdim=True)
    std = feats.std(0, unbiased=False, keepdim=True)
    return (feats - mean) / (std + 1e-5)


class StreamingFeatures:
    """Featurise audio as it arrives: ``push(samples)`` returns the frames now complete. The
    frames equal those of the whole recording; normalisation uses fixed (training-set)
    statistics, since an utterance's own are not known until it ends."""

    def __init__(self, featurizer: Featurizer, mean: torch.Tensor, std: torch.Tensor):
        self.f, self.mean, self.std = featurizer, mean, std
        self.buffer = torch.zeros(0)

    def push(self, samples) -> torch.Tensor:
        self.buffer = torch.cat([self.buffer, torch.as_tensor(samples, dtype=torch.float32)])
        n = self.f.frames(len(self.buffer))
        if n == 0:
            return torch.zeros(0, self.f.cfg.dim)
        used = (n - 1) * self.f.cfg.hop_length + self.f.cfg.n_fft
        feats = self.f(self.buffer[:used])
        self.buffer = self.buffer[n * self.f.cfg.hop_length:]
        return (feats - self.mean) / (self.std + 1e-5)


def spec_augment(feats: torch.Tensor, generator: torch.Generator, freq_masks: int = 2,
                 freq_width: int = 8, time_masks: int = 2, time_width: int = 20,
                 max_time_share: float = 0.2) -> torch.Tensor:
    """SpecAugment's masks (Park et al. 2019) on normalised ``(frames, dim)`` features: bands of
    up to ``freq_width`` channels and spans of up to ``time_width`` frames (each at most
    ``max_time_share`` of the utterance) set to zero, the features' mean."""
    out = feats.clone()
    frames, dim = out.shape

    def span(limit: int, size: int) -> tuple[int, int]:
        w = int(torch.randint(0, max(0, min(limit, size)) + 1, (), generator=generator))
        start = int(torch.randint(0, size - w + 1, (), generator=generator))
        return start, w

    for _ in range(freq_masks):
        s, w = span(freq_width, dim)
        out[:, s:s + w] = 0
    for _ in range(time_masks):
        s, w = span(min(time_width, int(max_time_share * frames)), frames)
        out[s:s + w] = 0
    return out
