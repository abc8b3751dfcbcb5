"""Training-time changes to recordings: other voices, levels, rooms and microphones.

A recogniser trained on a few speakers learns their voices along with their words. Each training
recording is changed on the fly, differently in every epoch, before its features are taken:

- speed: played faster or slower, which moves tempo and pitch together (done on the power
  spectrogram, frames stretched in time and the frequency axis scaled, much cheaper than
  resampling each recording with its own ratio);
- warp: the frequency axis stretched or squeezed (vocal tract length perturbation, Jaitly and
  Hinton 2013), which moves formants and pitch and keeps the tempo;
- tempo: some stretches of the recording slower, others faster (a smooth random rate around the
  recording's), as one speaker draws out a vowel another clips;
- shape: the frequency axis bent by a smooth random monotone map (band knots moved by up to
  +- shape of their spacing), which moves formants apart or together, as another vocal tract
  shape or accent would; the warp above moves them all by one factor;
- gain: louder or quieter;
- noise: white noise at a random signal-to-noise ratio;
- reverb: convolved with a made-up room response (the direct sound and an exponentially decaying
  noise tail);
- eq: a random smooth frequency response, as another microphone would give;
- band: random band edges (a low cut up to 400 Hz, a high cut down to 70% of the band), as
  another microphone, line or codec would give.

Every random number comes from the ``torch.Generator`` passed in (the task seeds one per batch
from the run's seed, the epoch and the batch), so an epoch is the same on resume and in
deterministic mode.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rnnkit.data.features import Featurizer
from rnnkit.errors import UserError

MAX_SNR_DB = 40.0  # the cleanest added noise
RT60_S = (0.05, 0.5)  # reverberation times drawn from this range (small room to hall)
DRR_DB = (0.0, 15.0)  # direct-to-reverberant energy ratios
WARP_KNEE = 0.8  # share of the band warped linearly; above it the map bends back to Nyquist
LOW_CUT_HZ = 400.0  # highest low-cut corner drawn
HIGH_CUT = 0.7  # lowest high-cut corner drawn, as a share of the band


@dataclass(frozen=True)
class AugmentConfig:
    speed: float = 0.15  # factors drawn from 1 +- speed
    warp: float = 0.2  # frequency warp factors drawn from 1 +- warp
    gain_db: float = 20.0  # gains drawn from +- gain_db
    noise: float = 0.5  # probability of added noise
    snr_db: float = 10.0  # signal-to-noise ratios drawn from snr_db .. MAX_SNR_DB
    reverb: float = 0.3  # probability of reverberation
    eq_db: float = 6.0  # the random response stays within +- eq_db
    band: float = 0.0  # probability of random band edges
    tempo: float = 0.0  # local rates drawn from 1 +- tempo
    shape: float = 0.0  # frequency knots moved by up to +- shape of their spacing

    def __post_init__(self):
        for name in ("speed", "warp", "tempo", "shape"):
            if not 0 <= getattr(self, name) < 0.5:
                raise UserError(f"{name} must be at least 0 and below 0.5, found "
                                f"{getattr(self, name)}.")
        for name in ("noise", "reverb", "band"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} is a probability between 0 and 1, found "
                                f"{getattr(self, name)}.")
        for name in ("gain_db", "eq_db"):
            if getattr(self, name) < 0:
                raise UserError(f"{name} must not be negative, found {getattr(self, name)}.")
        if self.snr_db > MAX_SNR_DB:
            raise UserError(f"snr_db must be at most {MAX_SNR_DB:g} dB, found {self.snr_db}.")


def _uniform(g: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=g))


def stretch_time(power: torch.Tensor, factor: float) -> torch.Tensor:
    """A spectrogram ``(frames, bins)`` played ``factor`` times as fast, in time only: the
    frames interpolated to ``frames / factor`` of them."""
    frames = max(1, round(len(power) / factor))
    if frames == len(power) or len(power) < 2:
        return power
    return F.interpolate(power.T[None], size=frames, mode="linear", align_corners=True)[0].T


def add_reverb(samples: torch.Tensor, g: torch.Generator, rate: int) -> torch.Tensor:
    """``samples`` in a made-up room, at the same RMS level and length."""
    rt60 = _uniform(g, *RT60_S)
    n = max(1, int(rt60 * rate))
    t = torch.arange(1, n + 1) / rate
    tail = torch.randn(n, generator=g) * torch.exp(-3 * math.log(10) * t / rt60)  # -60 dB at rt60
    tail *= 10 ** (-_uniform(g, *DRR_DB) / 20) / tail.norm().clamp(min=1e-12)
    response = torch.cat([torch.ones(1), tail])
    size = 1 << (len(samples) + n).bit_length()
    wet = torch.fft.irfft(torch.fft.rfft(samples, size) * torch.fft.rfft(response, size), size)
    wet = wet[:len(samples)]
    return wet * (samples.norm() / wet.norm().clamp(min=1e-12))


def add_noise(samples: torch.Tensor, g: torch.Generator, snr_db: float) -> torch.Tensor:
    """``samples`` plus white noise ``snr_db`` below the recording's mean power."""
    power = float(samples.pow(2).mean())
    noise = torch.randn(len(samples), generator=g)
    return samples + noise * math.sqrt(power / 10 ** (snr_db / 10))


def warp_frequencies(power: torch.Tensor, alpha: float) -> torch.Tensor:
    """A power spectrogram ``(frames, bins)`` with frequency ``f`` moved to ``alpha * f`` up to a
    knee and linearly back to Nyquist above it (so nothing leaves the band)."""
    bins = power.shape[1]
    top = bins - 1
    f = torch.arange(bins, dtype=torch.float32)
    knee = WARP_KNEE * top * min(alpha, 1.0)
    source = torch.where(f <= knee, f / alpha,
                         knee / alpha + (f - knee) * (top - knee / alpha) / (top - knee))
    low = source.floor().clamp(0, top - 1).long()
    w = (source - low).clamp(0, 1)
    return power[:, low] * (1 - w) + power[:, low + 1] * w


def _interpolate_rows(x: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` at fractional positions ``source`` (linear interpolation)."""
    top = len(x) - 1
    low = source.floor().clamp(0, max(top - 1, 0)).long()
    high = (low + 1).clamp(max=top)
    w = (source - low).clamp(0, 1)[:, None]
    return x[low] * (1 - w) + x[high] * w


def vary_tempo(power: torch.Tensor, g: torch.Generator, amount: float, knots: int = 4
               ) -> torch.Tensor:
    """A spectrogram ``(frames, bins)`` read at a smooth random rate (``knots`` rates in
    1 +- amount, linear between them), rescaled to keep the number of frames."""
    frames = len(power)
    if frames < 3:
        return power
    rates = 1 + (torch.rand(knots, generator=g) * 2 - 1) * amount
    rate = F.interpolate(rates[None, None], size=frames - 1, mode="linear",
                         align_corners=True)[0, 0]
    source = torch.cat([torch.zeros(1), rate.cumsum(0)])
    return _interpolate_rows(power, source * (frames - 1) / source[-1])


def shape_frequencies(power: torch.Tensor, g: torch.Generator, amount: float, knots: int = 3
                      ) -> torch.Tensor:
    """A power spectrogram with its frequency axis bent: ``knots`` evenly spaced interior
    frequencies each moved by up to +- amount of their spacing (ends fixed, monotone, linear
    between knots)."""
    top = power.shape[1] - 1
    spacing = top / (knots + 1)
    at = torch.arange(knots + 2, dtype=torch.float32) * spacing
    moved = at.clone()
    moved[1:-1] += (torch.rand(knots, generator=g) * 2 - 1) * amount * spacing
    f = torch.arange(top + 1, dtype=torch.float32)
    # output bin f reads the input at the inverse of the knot map (moved -> at)
    k = (torch.searchsorted(moved, f, right=True) - 1).clamp(0, knots)
    source = at[k] + (f - moved[k]) * spacing / (moved[k + 1] - moved[k])
    return _interpolate_rows(power.T, source.clamp(0, top)).T


def colour(power: torch.Tensor, g: torch.Generator, eq_db: float) -> torch.Tensor:
    """A power spectrogram through a random smooth response (three cosines across the band,
    together within ``+- eq_db``)."""
    x = torch.linspace(0, math.pi, power.shape[1])
    k = torch.arange(1, 4, dtype=torch.float32)[:, None]
    amplitudes = (torch.rand(3, 1, generator=g) * 2 - 1) * eq_db / 3
    gain_db = (amplitudes * torch.cos(k * x)).sum(0)
    return power * 10 ** (gain_db / 10)


def band_limit(power: torch.Tensor, g: torch.Generator, rate: int) -> torch.Tensor:
    """A power spectrogram through a random low cut (second order, corner up to LOW_CUT_HZ)
    and high cut (fourth order, corner from HIGH_CUT of the band up to Nyquist)."""
    f = torch.linspace(0, rate / 2, power.shape[1])
    low = _uniform(g, 0, LOW_CUT_HZ)
    high = _uniform(g, HIGH_CUT, 1.0) * rate / 2
    response = 1 / (1 + (low / f.clamp(min=1.0)) ** 4) / (1 + (f / high) ** 8)
    return power * response


class Augmenter:
    """Samples -> the features (``(frames, dim)``, not normalised) of a changed recording."""

    def __init__(self, cfg: AugmentConfig, featurizer: Featurizer):
        self.cfg, self.featurizer = cfg, featurizer

    def __call__(self, samples: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        c, rate = self.cfg, self.featurizer.cfg.sample_rate
        x = samples.float()
        if c.reverb and _uniform(g, 0, 1) < c.reverb:
            x = add_reverb(x, g, rate)
        if c.noise and _uniform(g, 0, 1) < c.noise:
            x = add_noise(x, g, _uniform(g, c.snr_db, MAX_SNR_DB))
        if c.gain_db:
            x = x * 10 ** (_uniform(g, -c.gain_db, c.gain_db) / 20)
        power = self.featurizer.power(x)
        alpha = 1.0
        if c.speed:  # faster speech is higher too
            factor = _uniform(g, 1 - c.speed, 1 + c.speed)
            power, alpha = stretch_time(power, factor), factor
        if c.warp:
            alpha *= _uniform(g, 1 - c.warp, 1 + c.warp)
        if alpha != 1:
            power = warp_frequencies(power, alpha)
        if c.tempo:
            power = vary_tempo(power, g, c.tempo)
        if c.shape:
            power = shape_frequencies(power, g, c.shape)
        if c.eq_db:
            power = colour(power, g, c.eq_db)
        if c.band and _uniform(g, 0, 1) < c.band:
            power = band_limit(power, g, rate)
        return self.featurizer.from_power(power)
