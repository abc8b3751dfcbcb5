"""The CTC recogniser: streaming equals the full forward; a tiny model learns tone sequences."""

import numpy as np
import pytest
import soundfile as sf
import torch

from rnnkit.models.ctc_recognizer import CTCRecognizer, CTCRecognizerConfig
from rnnkit.tasks.speech.smoke import RATE, tones, write_set


@pytest.mark.parametrize("arch,subsample", [("lstm", 4), ("gru", 2), ("mingru", 1)])
def test_streaming_chunks_equal_the_full_unidirectional_forward(arch, subsample):
    torch.manual_seed(0)
    cfg = CTCRecognizerConfig(input_size=10, vocab_size=5, arch=arch, layers=2, hidden=12,
                              bidirectional=False, subsample=subsample, conv_channels=8,
                              conv_kernel=3)
    model = CTCRecognizer(cfg).eval()
    feats = torch.randn(2, 37, 10)
    with torch.no_grad():
        full, out_lengths, _ = model(feats, torch.tensor([37, 37]))
    assert full.shape[1] == out_lengths[0] == -(-37 // subsample)
    state, pieces = None, []
    for a, b in [(0, 1), (1, 2), (2, 9), (9, 10), (10, 30), (30, 37)]:
        out, state = model.stream(feats[:, a:b], state)
        pieces.append(out)
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)


def test_ctc_loss_and_lengths_of_a_padded_batch():
    torch.manual_seed(0)
    model = CTCRecognizer(CTCRecognizerConfig(input_size=6, vocab_size=4, layers=1, hidden=8,
                                              subsample=2, conv_channels=8)).eval()
    feats = torch.randn(2, 20, 6)
    with torch.no_grad():
        lp, lengths, loss = model(feats, torch.tensor([20, 11]), torch.tensor([[1, 2, 3],
                                                                               [2, 0, 0]]),
                                  torch.tensor([3, 1]))
        alone, _, loss_b = model(feats[1:, :11], torch.tensor([11]), torch.tensor([[2]]),
                                 torch.tensor([1]))
    assert lengths.tolist() == [10, 6]
    torch.testing.assert_close(lp[1, :6], alone[0], atol=1e-5, rtol=1e-5)  # padding is ignored
    assert torch.isfinite(loss) and loss > 0


def test_the_task_takes_its_model_defaults_from_the_model_config():
    from rnnkit.tasks import speech

    cfg = speech.SpeechConfig()
    model = cfg.model_config(input_size=40, vocab_size=5)
    assert model == CTCRecognizerConfig(input_size=40, vocab_size=5)
    assert (cfg.hidden, model.hidden) == (160, 160)
    custom = speech.SpeechConfig(hidden=7, arch="gru", bidirectional=False).model_config(13, 4)
    assert (custom.hidden, custom.arch, custom.bidirectional, custom.input_size) == \
        (7, "gru", False, 13)


@pytest.mark.usefixtures("one_thread")
def test_a_tiny_model_learns_to_transcribe_tone_sequences(tmp_path):
    from rnnkit.tasks import speech

    train = write_set(tmp_path / "data", 48, seed=0)
    val = write_set(tmp_path / "data", 12, seed=1, name="val.csv")
    rec = speech.train(train, tmp_path / "run", val=val, n_mels=20, layers=1, hidden=32,
                       conv_channels=32, epochs=12, batch_size=8, lr=1e-2, warmup_steps=0,
                       spec_augment=False, augment=False, quiet=True, device="cpu", ensemble=1)
    assert rec.metrics["val"]["cer"] <= 0.05
    assert (tmp_path / "run" / "errors_val.csv").read_text().count("\n") == 13
    # new recordings, one at another sample rate (resampled on reading)
    sf.write(tmp_path / "abca.wav", tones("abca", RATE, 7), RATE)
    sf.write(tmp_path / "cb.wav", tones("cb", 16000, 8), 16000)
    paths = [tmp_path / "abca.wav", tmp_path / "cb.wav"]
    loaded = speech.load(tmp_path / "run")
    assert loaded.transcribe(paths) == ["abca", "cb"]
    assert loaded.transcribe(paths, beam=4, lm_weight=0.3) == ["abca", "cb"]
    # predict: a path, samples at the model's rate, or a list of both
    assert loaded.predict(paths[0]) == ["abca"]
    assert loaded.predict(tones("cb", RATE, 8)) == ["cb"]
    assert loaded.predict([paths[0], tones("cb", RATE, 8)]) == ["abca", "cb"]
    assert loaded.module is loaded.model and loaded.task == "speech"
    with pytest.raises(ValueError, match="1-D array"):
        loaded.predict([[tones("cb")]])
    with pytest.raises(ValueError, match="not finite"):
        loaded.predict(np.full(800, np.nan, dtype=np.float32))
    both = loaded.evaluate([train, val])
    assert both["utterances"] == 60 and both["cer"] <= 0.05
    with pytest.raises(ValueError, match="unidirectional"):
        next(loaded.stream([tones("ab")]))
    # bf16 inference: the network under autocast, the features in float32 as in training
    low = speech.load(tmp_path / "run", precision="bf16")
    seen = []
    featurize = low.featurizer.__call__
    low.featurizer = lambda *a: seen.append(torch.is_autocast_enabled("cpu")) or featurize(*a)
    assert low.predict(paths) == ["abca", "cb"] and seen == [False, False]


@pytest.mark.usefixtures("one_thread")
def test_an_ensemble_trains_its_members_and_transcribes_with_all_of_them(tmp_path):
    from rnnkit.models.ctc_recognizer import CTCEnsemble
    from rnnkit.tasks import speech

    train = write_set(tmp_path / "data", 24, seed=0)
    out = tmp_path / "run"
    rec = speech.train(train, out, n_mels=20, layers=1, hidden=16, conv_channels=16,
                       max_steps=40, batch_size=8, lr=1e-2, warmup_steps=0, spec_augment=False,
                       augment=False, quiet=True, device="cpu", ensemble=2, workers=1,
                       lm_order=0)
    assert isinstance(rec.model, CTCEnsemble) and len(rec.model.members) == 2
    assert rec.metrics["train"]["members"] == 2 and len(rec.metrics["train"]["member_val_cer"]) == 2
    members = [speech.load(out / "members" / f"member-{k}") for k in range(2)]
    # the members differ (seeds 0 and 1) and the merged weights are theirs
    assert not torch.equal(members[0].model.out.weight, members[1].model.out.weight)
    assert torch.equal(rec.model.members[1].out.weight, members[1].model.out.weight)
    # one validation split for all: the members' validation sets are the ensemble's
    def names(run):
        return sorted(line.split(",")[0] for line in
                      (run / "errors_val.csv").read_text().splitlines()[1:])

    assert names(out) == names(out / "members" / "member-0") == names(out / "members" / "member-1")
    assert len(names(out)) == 2
    clips = [tones(t, RATE, 20 + i) for i, t in enumerate(["ab", "cab", "bca", "ccb", "a"])]
    mine, theirs = rec.predict(clips), [m.predict(clips) for m in members]
    assert any(mine) and all(h in (a, b) for h, a, b in zip(mine, *theirs, strict=True))
    assert all(h == a for h, a, b in zip(mine, *theirs, strict=True) if a == b)
    with pytest.raises(ValueError, match="ensemble of 2"):
        next(rec.stream([tones("ab")]))
    from rnnkit.export.exporter import export

    with pytest.raises(ValueError, match="export takes a single speech model"):
        export(out, "onnx", tmp_path / "onnx", echo=None)
