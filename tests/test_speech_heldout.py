"""Held-out checks: a recogniser trained with the default recipe on one generated "voice" still
transcribes recordings unlike its training data: another sample rate and loudness, and another
voice (higher, slower). The real measurement is benchmarks/speech_fsdd.py --part loso."""

import random

import pytest
import soundfile as sf

from rnnkit.tasks.speech.smoke import RATE, tones, write_set

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["".join(random.Random(i).choice("abc") for _ in range(2 + i % 3)) for i in range(12)]


@pytest.fixture(scope="module")
def recogniser(tmp_path_factory):
    from rnnkit.tasks import speech
    from rnnkit.threads import one_thread

    tmp = tmp_path_factory.mktemp("heldout")
    train = write_set(tmp / "data", 48, seed=0)
    val = write_set(tmp / "data", 12, seed=1, name="val.csv")
    # the default recipe (features, normalisation, augmentation) with a tiny model; 2x
    # subsampling, as the tones are short, and narrower speed and warp ranges, as tones (unlike
    # words) are told apart by their absolute pitch alone
    with one_thread():  # the one_thread fixture starts after this module-wide one
        return speech.train(train, tmp / "run", val=val, n_mels=20, layers=1, hidden=32,
                            subsample=2, speed=0.1, warp=0.1, conv_channels=32, epochs=30,
                            batch_size=8, lr=1e-2, warmup_steps=0, quiet=True, device="cpu")


def right(rec, folder, rate, **voice) -> int:
    paths = []
    for i, text in enumerate(TEXTS):
        paths.append(folder / f"{rate}_{i}.wav")
        sf.write(paths[-1], tones(text, rate, 100 + i, **voice), rate)
    return sum(h == t for h, t in zip(rec.transcribe(paths), TEXTS, strict=True))


def test_the_recipe_fits_its_training_voice(recogniser):
    assert recogniser.metrics["val"]["cer"] <= 0.05


@pytest.mark.parametrize("rate, level", [(16000, 0.1), (44100, 1.8)])
def test_a_recording_at_another_rate_and_loudness(recogniser, tmp_path, rate, level):
    assert right(recogniser, tmp_path, rate, level=level) >= 10


def test_a_voice_not_in_training(recogniser, tmp_path):
    # 10% higher, 20% slower and 6 dB quieter than every training recording
    assert right(recogniser, tmp_path, RATE, pitch=1.1, tempo=0.8, level=0.5) >= 10
