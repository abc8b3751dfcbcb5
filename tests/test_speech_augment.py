"""Training-time augmentation of recordings (rnnkit.data.augment): each change does what it says,
every draw comes from the generator passed in."""

import math

import numpy as np
import pytest
import torch

from rnnkit.data.augment import (
    AugmentConfig,
    Augmenter,
    add_noise,
    add_reverb,
    colour,
    shape_frequencies,
    stretch_time,
    vary_tempo,
    warp_frequencies,
)
from rnnkit.data.features import FeatureConfig, Featurizer
from rnnkit.errors import UserError

pytestmark = pytest.mark.usefixtures("one_thread")
RATE = 8000


def tone(hz: float, seconds: float = 0.5, amp: float = 0.3) -> torch.Tensor:
    t = torch.arange(int(seconds * RATE)) / RATE
    return (amp * torch.sin(2 * math.pi * hz * t)).float()


def peak_hz(featurizer: Featurizer, power: torch.Tensor) -> float:
    return float(power.mean(0).argmax()) * RATE / featurizer.cfg.n_fft


def test_warp_moves_a_tone_by_the_factor_and_stretch_changes_the_frames():
    f = Featurizer(FeatureConfig(sample_rate=RATE))
    power = f.power(tone(1000.0))
    bin_hz = RATE / f.cfg.n_fft
    for alpha in (0.9, 1.0, 1.15):
        assert abs(peak_hz(f, warp_frequencies(power, alpha)) - 1000 * alpha) <= bin_hz
    assert torch.equal(warp_frequencies(power, 1.0), power)
    assert len(stretch_time(power, 1.25)) == round(len(power) / 1.25)
    assert len(stretch_time(power, 0.8)) == round(len(power) / 0.8)


def test_noise_reverb_and_colour_keep_their_promises():
    g = torch.Generator().manual_seed(0)
    x = tone(700.0)
    noisy = add_noise(x, g, 20.0)
    snr = 10 * math.log10(float(x.pow(2).mean() / (noisy - x).pow(2).mean()))
    assert abs(snr - 20.0) < 0.5
    # reverberation: same length and level, and the sound rings on after it stops
    burst = torch.cat([tone(700.0, 0.1), torch.zeros(2000)])
    wet = add_reverb(burst, g, RATE)
    assert len(wet) == len(burst)
    assert float(wet.norm()) == pytest.approx(float(burst.norm()), rel=1e-4)
    assert float(wet[900:].abs().max()) > 1e-3
    # a microphone colour: every bin changed by at most eq_db
    power = torch.rand(5, 129, generator=g) + 0.1
    ratio_db = 10 * torch.log10(colour(power, g, 6.0) / power)
    assert float(ratio_db.abs().max()) <= 6.0 + 1e-4 and float(ratio_db.std()) > 0.1


def test_augmented_features_are_seeded_and_change_with_the_seed():
    f = Featurizer(FeatureConfig(sample_rate=RATE))
    aug = Augmenter(AugmentConfig(noise=1.0, reverb=1.0), f)
    x = tone(500.0).half()
    a = aug(x, torch.Generator().manual_seed(3))
    b = aug(x, torch.Generator().manual_seed(3))
    c = aug(x, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and a.shape[1] == f.cfg.n_mels
    assert not torch.equal(a[:min(len(a), len(c))], c[:min(len(a), len(c))])
    assert bool(torch.isfinite(a).all())
    # with every change off, the features are the recording's own
    none = Augmenter(AugmentConfig(speed=0, warp=0, gain_db=0, noise=0, reverb=0, eq_db=0), f)
    assert torch.allclose(none(x, torch.Generator()), f(x.float()))


@pytest.mark.parametrize("field, value", [("speed", 0.5), ("noise", 1.5), ("gain_db", -1),
                                          ("snr_db", 50)])
def test_out_of_range_settings_are_one_sentence(field, value):
    from rnnkit.tasks.speech import SpeechConfig

    with pytest.raises(ValueError, match=field):
        SpeechConfig(**{field: value})


def test_gain_is_drawn_within_its_range():
    f = Featurizer(FeatureConfig(sample_rate=RATE))
    aug = Augmenter(AugmentConfig(speed=0, warp=0, gain_db=10, noise=0, reverb=0, eq_db=0), f)
    x = tone(500.0)
    clean = f(x)
    shifts = [float((aug(x, torch.Generator().manual_seed(s)) - clean).mean()) for s in range(20)]
    db = np.array(shifts) * 10 / math.log(10)  # log power -> dB
    assert db.min() >= -10.01 and db.max() <= 10.01 and db.max() - db.min() > 5


def test_mean_normalisation_removes_the_level_and_the_microphone():
    from rnnkit.data.utterances import Normalizer

    f = Featurizer(FeatureConfig(sample_rate=RATE))
    g = torch.Generator().manual_seed(1)
    x = tone(300.0) + tone(1200.0, amp=0.1) + 0.03 * torch.randn(4000, generator=g)
    feats = [f(x), f(tone(800.0) + 0.03 * torch.randn(4000, generator=g))]
    norm = Normalizer.fit("mean", feats)
    assert norm.mode == "mean" and norm.std.shape == (f.cfg.n_mels,)
    # 12 dB quieter (well above the log floor) through another microphone
    quieter = f.from_power(colour(f.power(0.25 * x), g, 6.0))
    moved = float((norm(quieter) - norm(feats[0])).abs().mean())
    fixed = Normalizer.fit("global", feats)
    assert moved < 0.05 < 0.5 < float((fixed(quieter) - fixed(feats[0])).abs().mean())


def test_training_batches_are_changed_the_same_way_on_every_run(tmp_path):
    from rnnkit.tasks import speech
    from rnnkit.tasks.speech.smoke import write_set
    from rnnkit.train import set_deterministic

    manifest = write_set(tmp_path, 8)
    _, cfg = speech.configs({"data": str(manifest), "batch_size": 4})
    first = [speech.build(cfg, 4, seed=0)[0] for _ in range(2)]
    assert first[0].augmenter is not None and first[0].train.audio is not None
    set_deterministic(True)
    try:
        a, b = (next(iter(task.train_batches(0)))[0] for task in first)
        again = next(iter(first[0].train_batches(1)))[0]
    finally:
        set_deterministic(False)
    assert torch.equal(a, b)
    clean = first[0].collate(first[0].sampler.batches(0)[0])[0]  # no generator: as recorded
    assert clean.shape[0] == a.shape[0] and not torch.equal(a, again)
    assert not torch.equal(clean[:, :min(clean.shape[1], a.shape[1])],
                           a[:, :min(clean.shape[1], a.shape[1])])


def test_tempo_changes_local_rate_but_keeps_length_ends_and_order():
    g = torch.Generator().manual_seed(3)
    ramp = torch.arange(60, dtype=torch.float32)[:, None].repeat(1, 4)  # frame i holds i
    assert torch.equal(vary_tempo(ramp, g, 0.0), ramp)
    out = vary_tempo(ramp, g, 0.3)
    assert out.shape == ramp.shape
    assert float(out[0, 0]) == 0 and float(out[-1, 0]) == pytest.approx(59, abs=1e-4)
    steps = out[1:, 0] - out[:-1, 0]  # the local read rate
    assert float(steps.min()) > 0  # monotone: nothing is played backwards
    assert float(steps.max() - steps.min()) > 0.1  # and not one uniform rate
    assert float(steps.max()) < 1.3 / 0.7 + 1e-4


def test_shape_moves_formants_within_their_knot_spacing_and_keeps_the_ends():
    g = torch.Generator().manual_seed(1)
    bins = 129
    ramp = torch.arange(bins, dtype=torch.float32)[None].repeat(3, 1)  # bin f holds f
    assert torch.equal(shape_frequencies(ramp, g, 0.0), ramp)
    moved = []
    for _ in range(20):
        out = shape_frequencies(ramp, g, 0.25)
        assert out.shape == ramp.shape
        assert float(out[0, 0]) == 0 and float(out[0, -1]) == pytest.approx(bins - 1)
        assert float((out[0, 1:] - out[0, :-1]).min()) >= 0  # monotone
        # each output bin reads from at most a quarter knot spacing away
        assert float((out[0] - ramp[0]).abs().max()) <= 0.25 * (bins - 1) / 4 + 1e-3
        moved.append(float((out[0] - ramp[0]).abs().max()))
    assert max(moved) > 2.0


def test_tempo_and_shape_are_part_of_the_augmenter():
    f = Featurizer(FeatureConfig(sample_rate=RATE))
    x = tone(500.0)
    plain = Augmenter(AugmentConfig(speed=0, warp=0, gain_db=0, noise=0, reverb=0, eq_db=0), f)
    bent = Augmenter(AugmentConfig(speed=0, warp=0, gain_db=0, noise=0, reverb=0, eq_db=0,
                                   tempo=0.3, shape=0.3), f)
    a = plain(x, torch.Generator().manual_seed(0))
    b = bent(x, torch.Generator().manual_seed(0))
    assert a.shape == b.shape and not torch.allclose(a, b)
    with pytest.raises(UserError, match="tempo"):
        AugmentConfig(tempo=0.6)
