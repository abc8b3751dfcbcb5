"""Speech features against librosa, resampling, streaming featurisation and SpecAugment."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnkit.data.audio import read_audio, resample
from rnnkit.data.features import (
    FeatureConfig,
    Featurizer,
    StreamingFeatures,
    normalize_utterance,
    spec_augment,
)


def noisy_tone(rate=8000, seconds=0.5, freq=440.0, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t) + 0.05 * rng.standard_normal(len(t))).astype(
        np.float32)


@pytest.mark.parametrize("rate,n_mels,fmin,fmax", [(8000, 40, 0.0, None), (16000, 64, 60.0, 7000.0)])
def test_log_mel_matches_librosa(rate, n_mels, fmin, fmax):
    filters = pytest.importorskip("librosa.filters")
    cfg = FeatureConfig(sample_rate=rate, n_mels=n_mels, fmin=fmin, fmax=fmax)
    f = Featurizer(cfg)
    ref_bank = filters.mel(sr=rate, n_fft=cfg.n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    np.testing.assert_allclose(f.mel.numpy(), ref_bank, rtol=1e-5, atol=1e-8)
    # the power spectrogram: frames without centring, periodic Hann of win_length centred in
    # n_fft (librosa's convention), then |rfft|^2
    y = noisy_tone(rate)
    win = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    win[left:left + cfg.win_length] = np.hanning(cfg.win_length + 1)[:-1]
    n = 1 + (len(y) - cfg.n_fft) // cfg.hop_length
    frames = np.stack([y[i * cfg.hop_length:i * cfg.hop_length + cfg.n_fft] for i in range(n)])
    power = np.abs(np.fft.rfft(frames * win, axis=1)) ** 2
    ref = np.log(power @ ref_bank.T + 1e-6)
    ours = f(y).numpy()
    assert ours.shape == (n, n_mels) == (f.frames(len(y)), n_mels)
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_log_mel_matches_librosa_melspectrogram():
    librosa = pytest.importorskip("librosa")
    cfg = FeatureConfig(sample_rate=8000, n_mels=32)
    y = noisy_tone(8000, 0.3, 900.0)
    ref = librosa.feature.melspectrogram(
        y=y, sr=8000, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=False, power=2.0, n_mels=32)
    np.testing.assert_allclose(Featurizer(cfg)(y).numpy(), np.log(ref.T + 1e-6), atol=2e-3)


def test_mfcc_is_the_orthonormal_dct_of_log_mel():
    fft = pytest.importorskip("scipy.fft")
    y = noisy_tone()
    log_mel = Featurizer(FeatureConfig(sample_rate=8000, n_mels=40))(y).numpy()
    mfcc = Featurizer(FeatureConfig(sample_rate=8000, kind="mfcc", n_mfcc=13))(y).numpy()
    ref = fft.dct(log_mel.astype(np.float64), type=2, norm="ortho", axis=1)[:, :13]
    np.testing.assert_allclose(mfcc, ref, atol=1e-3)


def peak_hz(x, rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * rate / len(x)


@pytest.mark.parametrize("rate_in,rate_out", [(44100, 16000), (8000, 16000), (22050, 8000)])
def test_resampling_keeps_a_tone_at_its_frequency(rate_in, rate_out):
    x = noisy_tone(rate_in, 1.0, 1234.0)
    y = resample(x, rate_in, rate_out)
    assert abs(len(y) - rate_out) <= 1
    assert abs(peak_hz(y, rate_out) - 1234.0) < 2.0
    assert y.dtype == np.float32


def test_read_audio_mixes_stereo_down_and_resamples(tmp_path):
    left, right = noisy_tone(22050, 0.5, 700.0), noisy_tone(22050, 0.5, 700.0, seed=1)
    path = tmp_path / "stereo.flac"
    sf.write(path, np.stack([left, right], 1), 22050)
    y = read_audio(path, 8000)
    assert y.ndim == 1 and abs(len(y) - 4000) <= 1
    assert abs(peak_hz(y, 8000) - 700.0) < 4.0
    same_rate = read_audio(path, 22050)
    np.testing.assert_allclose(same_rate, (left + right) / 2, atol=1e-4)  # FLAC is 16-bit


def test_streaming_features_equal_the_whole_recording():
    cfg = FeatureConfig(sample_rate=8000, n_mels=24)
    f = Featurizer(cfg)
    y = noisy_tone(8000, 0.7)
    mean, std = torch.randn(24), torch.rand(24) + 0.5
    whole = (f(y) - mean) / (std + 1e-5)
    stream = StreamingFeatures(f, mean, std)
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(y), 12, replace=False))
    pieces = [stream.push(c) for c in np.split(y, cuts)]
    torch.testing.assert_close(torch.cat(pieces), whole, atol=1e-4, rtol=1e-4)


def test_normalize_and_spec_augment():
    feats = torch.randn(100, 20) * 3 + 5
    norm = normalize_utterance(feats)
    torch.testing.assert_close(norm.mean(0), torch.zeros(20), atol=1e-5, rtol=0)
    torch.testing.assert_close(norm.std(0, unbiased=False), torch.ones(20), atol=1e-3, rtol=0)
    a = spec_augment(norm, torch.Generator().manual_seed(3), 2, 5, 2, 10)
    b = spec_augment(norm, torch.Generator().manual_seed(3), 2, 5, 2, 10)
    torch.testing.assert_close(a, b)  # the same generator seed masks the same cells
    masked = a != norm
    assert masked.any()
    zero_rows = (a == 0).all(1).sum()
    zero_cols = (a == 0).all(0).sum()
    assert zero_rows <= 20 and zero_cols <= 10  # time spans <= 2 x 10, bands <= 2 x 5
    assert (a[masked] == 0).all()


def test_read_chunks_cut_the_recording_in_order(tmp_path):
    from rnnkit.data.audio import read_chunks

    y = noisy_tone(8000, 0.33)
    sf.write(tmp_path / "a.wav", y, 8000)
    chunks = list(read_chunks(tmp_path / "a.wav", 8000, 0.1))
    assert [len(c) for c in chunks] == [800, 800, 800, 240]
    np.testing.assert_array_equal(np.concatenate(chunks), read_audio(tmp_path / "a.wav", 8000))
    with pytest.raises(ValueError, match="chunk length must be positive"):
        read_chunks(tmp_path / "a.wav", 8000, 0)


def test_range_floor_makes_clean_and_noisy_pauses_alike():
    rate = 8000
    t = torch.arange(rate // 2) / rate
    tone = 0.3 * torch.sin(2 * torch.pi * 440 * t)
    gap = torch.zeros(rate // 4)
    clean = torch.cat([gap, tone, gap])
    hiss = torch.cat([gap + 1e-2 * torch.randn(len(gap), generator=torch.Generator()
                                                  .manual_seed(0)), tone, gap])
    plain = Featurizer(FeatureConfig(sample_rate=rate))
    floored = Featurizer(FeatureConfig(sample_rate=rate, range_db=40.0))
    nepers = 40.0 * math.log(10) / 10  # 40 dB in natural-log units
    for x in (clean, hiss):
        f = floored(x)
        assert float(f.max() - f.min()) <= nepers + 1e-4
    # without the floor digital silence sits far below the hiss; with it both pauses are alike
    assert float(plain(hiss)[:5].mean() - plain(clean)[:5].mean()) > 5
    assert float((floored(hiss)[:5] - floored(clean)[:5]).abs().mean()) < 0.1
    # loud parts are untouched
    mid = slice(len(plain(clean)) // 2 - 2, len(plain(clean)) // 2 + 2)
    assert torch.allclose(floored(clean)[mid].max(1).values, plain(clean)[mid].max(1).values)
