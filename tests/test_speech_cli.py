"""``rnnkit train speech``, ``transcribe`` and ``evaluate`` end to end, and bad input."""

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from rnnkit.cli import run
from rnnkit.tasks.speech.smoke import RATE, tones, write_set

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = ["--hidden", "16", "--layers", "1", "--batch-size", "8", "--quiet", "--device", "cpu",
        "--lm-order", "2"]


def test_train_transcribe_evaluate_smoke(tmp_path, capsys):
    train = write_set(tmp_path / "d", 16, seed=0)
    val = write_set(tmp_path / "d", 4, seed=1, name="val.csv")
    out = tmp_path / "run"
    assert run(["train", "speech", "--data", str(train), "--val", str(val), "--out", str(out),
                "--max-steps", "3", "--features", "mfcc", *TINY]) == 0
    printed = capsys.readouterr().out
    assert "val: WER" in printed and "errors_val.csv" in printed
    metrics = json.loads((out / "metrics_val.json").read_text())
    assert 0 <= metrics["cer"] and metrics["utterances"] == 4
    sf.write(tmp_path / "x.wav", tones("ab"), RATE)
    assert run(["transcribe", str(out), str(tmp_path / "x.wav"), "--beam", "3",
                "--lm-weight", "0.5"]) == 0
    assert str(tmp_path / "x.wav") in capsys.readouterr().out
    assert run(["transcribe", str(out), str(tmp_path / "x.wav"), "--output",
                str(tmp_path / "t.csv")]) == 0
    rows = list(csv.reader(open(tmp_path / "t.csv")))
    assert rows[0] == ["path", "transcript"] and len(rows) == 2
    assert run(["evaluate", str(out), "--data", str(val)]) == 0
    assert "wer" in capsys.readouterr().out
    # resuming keeps the saved alphabet and features and trains on
    assert run(["train", "speech", "--data", str(train), "--val", str(val), "--out", str(out),
                "--max-steps", "4", "--resume", *TINY]) == 0
    assert json.loads((out / "config.json").read_text())["train"]["max_steps"] == 4
    sf.write(tmp_path / "tiny.wav", tones("a")[:50], RATE)
    assert "tiny.wav lasts 6 ms, shorter than one 32 ms analysis window" in bad(
        tmp_path, capsys, ["transcribe", str(out), str(tmp_path / "tiny.wav")])


def test_unidirectional_model_streams(tmp_path, capsys):
    train = write_set(tmp_path / "d", 12, seed=0)
    out = tmp_path / "run"
    assert run(["train", "speech", "--data", str(train), "--out", str(out), "--max-steps", "2",
                "--unidirectional", "--subsample", "4", *TINY]) == 0
    sf.write(tmp_path / "x.wav", tones("abc"), RATE)
    capsys.readouterr()
    assert run(["transcribe", str(out), str(tmp_path / "x.wav")]) == 0
    whole = capsys.readouterr().out.strip().split("\t")[-1]
    assert run(["transcribe", str(out), str(tmp_path / "x.wav"), "--stream", "0.05"]) == 0
    streamed = capsys.readouterr().out.rstrip("\n").split("\r")[-1].split("\t")[-1]
    assert streamed == whole  # greedy over streamed chunks = greedy over the whole recording


def bad(tmp_path, capsys, argv):
    capsys.readouterr()
    code = run(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    return err


def manifest_with(tmp_path, extra_rows):
    folder = tmp_path / "d"
    manifest = write_set(folder, 10, seed=0)
    with open(manifest, "a", newline="") as f:
        csv.writer(f).writerows(extra_rows)
    return manifest


@pytest.mark.parametrize("kind,expected", [
    ("text", "not a readable audio file"),
    ("empty", "holds no audio samples"),
    ("silent", "is silent"),
    ("short", "shorter than one"),
    ("missing", "does not exist"),
])
def test_bad_recordings_name_the_file(tmp_path, capsys, kind, expected):
    folder = tmp_path / "d"
    folder.mkdir()
    name = f"bad_{kind}.wav"
    if kind == "text":
        (folder / name).write_text("this is not audio")
    elif kind == "empty":
        sf.write(folder / name, np.zeros(0, dtype=np.float32), RATE)
    elif kind == "silent":
        sf.write(folder / name, np.zeros(RATE, dtype=np.float32), RATE)
    elif kind == "short":
        sf.write(folder / name, tones("a")[:100], RATE)
    manifest = manifest_with(tmp_path, [[name, "ab"]])
    argv = ["train", "speech", "--data", str(manifest), "--out", str(tmp_path / "run"),
            "--max-steps", "1", *TINY]
    err = bad(tmp_path, capsys, argv)
    assert name in err and expected in err and "--skip-bad" in err
    assert not (tmp_path / "run").exists()
    if kind == "text":  # asked to, training goes on without the bad file (one run is enough)
        assert run(argv + ["--skip-bad"]) == 0
        assert "left out 1 of 11 recordings" in capsys.readouterr().err


def test_transcript_too_long_for_the_audio(tmp_path, capsys):
    sf.write(tmp_path / "d.wav", tones("a"), RATE)
    manifest = manifest_with(tmp_path, [[str(tmp_path / "d.wav"), "abcabcabcabcabc"]])
    err = bad(tmp_path, capsys, ["train", "speech", "--data", str(manifest), "--out",
                                 str(tmp_path / "run"), *TINY])
    assert "d.wav is too short for its transcript" in err


def test_characters_outside_the_alphabet(tmp_path, capsys):
    from rnnkit.data.features import FeatureConfig, Featurizer
    from rnnkit.tasks import speech

    manifest = manifest_with(tmp_path, [["train_000.wav", "abz"]])
    argv = ["train", "speech", "--data", str(manifest), "--out", str(tmp_path / "run"),
            "--alphabet", "abc", "--max-steps", "1", *TINY]
    err = bad(tmp_path, capsys, argv)
    assert "train_000.wav has characters outside the alphabet ('z')" in err
    assert run(argv + ["--unknown-chars", "skip"]) == 0
    assert "skipped" in capsys.readouterr().err
    featurizer = Featurizer(FeatureConfig(sample_rate=RATE))
    cfg = speech.SpeechConfig(unknown_chars="drop")
    data = speech.load_data(manifest, featurizer, speech.Alphabet("abc"), cfg, 2)
    assert len(data.texts) == 11 and data.texts[-1] == "ab"


def test_sample_rate_mismatch_without_resampling(tmp_path, capsys):
    sf.write(tmp_path / "odd.wav", tones("ab", 16000), 16000)
    manifest = manifest_with(tmp_path, [[str(tmp_path / "odd.wav"), "ab"]])
    err = bad(tmp_path, capsys, ["train", "speech", "--data", str(manifest), "--out",
                                 str(tmp_path / "run"), "--no-resample", *TINY])
    assert "odd.wav is recorded at 16000 Hz, but 8000 Hz is expected" in err


def test_bad_manifests_and_runs(tmp_path, capsys):
    (tmp_path / "m.csv").write_text("file_name,words\nx.wav,ab\n")
    err = bad(tmp_path, capsys, ["train", "speech", "--data", str(tmp_path / "m.csv"),
                                 "--out", str(tmp_path / "run")])
    assert "m.csv has no audio path column" in err
    bad(tmp_path, capsys, ["train", "speech", "--data", str(tmp_path / "nope.csv"), "--out",
                           str(tmp_path / "run")])
    (tmp_path / "m.jsonl").write_text('{"path": "x.wav"}\n')
    assert "no transcript column" in bad(tmp_path, capsys, [
        "train", "speech", "--data", str(tmp_path / "m.jsonl"), "--out", str(tmp_path / "r")])
    assert "does not exist" in bad(tmp_path, capsys, ["transcribe", str(tmp_path / "none"),
                                                      "x.wav"])
    assert "--beam must be at least 1" in bad(tmp_path, capsys, [
        "transcribe", str(tmp_path), "x.wav", "--beam", "0"])


def test_folder_with_transcripts_in_names_or_a_side_file(tmp_path):
    from rnnkit.data.audio import read_utterances

    sf.write(tmp_path / "ab_01.wav", tones("ab"), RATE)
    sf.write(tmp_path / "c-a_02.flac", tones("ca"), RATE)
    got = {(p.path.name, p.transcript) for p in read_utterances(tmp_path)}
    assert got == {("ab_01.wav", "ab"), ("c-a_02.flac", "c a")}
    (tmp_path / "transcripts.tsv").write_text("ab_01.wav\tA B\nc-a_02\tca\n")
    got = {(p.path.name, p.transcript) for p in read_utterances(tmp_path)}
    assert got == {("ab_01.wav", "a b"), ("c-a_02.flac", "ca")}
    (tmp_path / "m.jsonl").write_text('{"audio": "ab_01.wav", "text": "Ab"}\n')
    [u] = read_utterances(tmp_path / "m.jsonl")
    assert u.path == tmp_path / "ab_01.wav" and u.transcript == "ab"


def test_the_one_way_switches_are_two_way_booleans(tmp_path, capsys):
    from rnnkit.tasks import speech

    assert run(["train", "speech", "--help"]) == 0
    shown = " ".join(capsys.readouterr().out.split())
    for flag in ("--resample", "--no-resample", "--skip-bad", "--no-skip-bad",
                 "--bidirectional", "--unidirectional"):
        assert flag in shown
    config = tmp_path / "c.yaml"
    config.write_text("skip_bad: true\nresample: false\n")
    _, cfg = speech.SPEC.configs({"skip_bad": False}, config)
    assert (cfg.skip_bad, cfg.resample) == (False, False)  # a flag overrides the config file
