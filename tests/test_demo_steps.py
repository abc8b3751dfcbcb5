"""``rnnkit demo``: its steps in order, and the sentiment, translation and speech steps end to
end on a tiny budget (each skips when the package shipping its data is missing)."""

import re

import pytest
from typer.testing import CliRunner

from rnnkit.cli import demo as demo_cli

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"hidden": 8, "embed": 8, "max_steps": 4, "epochs": 1}


def _picture(lines: list[str]):
    from pathlib import Path

    found = re.search(r"picture: (\S+\.png)", "\n".join(lines))
    assert found, lines
    path = Path(found.group(1))
    assert path.stat().st_size > 5000 and path.read_bytes()[:4] == b"\x89PNG"
    return path


def test_demo_runs_every_application_in_order(tmp_path, monkeypatch):
    from rnnkit.cli import app

    titles = [title.split(":")[0] for title, _ in demo_cli.STEPS]
    assert titles == ["vanishing gradients", "text generation", "sentiment", "translation",
                      "speech recognition", "forecasting"]
    calls = []
    monkeypatch.setattr(demo_cli, "STEPS", [
        (title, lambda out, quiet, t=title: calls.append((t, out, quiet)) or [f"  ran {t}"])
        for title, _ in demo_cli.STEPS])
    result = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert [c[0] for c in calls] == [t for t, _ in demo_cli.STEPS]
    assert all(out == tmp_path / "d" and quiet for _, out, quiet in calls)
    assert "[3/6] sentiment" in result.output and "  ran speech recognition" in result.output
    assert result.output.rstrip().endswith(f"results and pictures in {tmp_path / 'd'}/")


def test_sentiment_step(tmp_path):
    pytest.importorskip("vaderSentiment")
    from rnnkit.tasks.sentiment import examples

    for _ in range(2):  # a rerun replaces the demo's own run rather than failing on it
        lines = examples.demo(tmp_path, quiet=True, max_time="20s", max_words=200, shown=6,
                              **TINY)
    found = re.search(r"held out (\d+) of 200 words: accuracy ([\d.]+)%", lines[0])
    assert found and int(found.group(1)) == 30, lines
    assert 0 <= float(found.group(2)) <= 100 and "always guessing the larger class" in lines[0]
    assert _picture(lines) == tmp_path / "sentiment.png"
    assert (tmp_path / "sentiment" / "confusion_test.png").exists()


def test_translation_step(tmp_path):
    pytest.importorskip("pycountry")
    from rnnkit.tasks.translate import examples

    lines = examples.demo(tmp_path, quiet=True, max_time="20s", max_pairs=80, vocab_size=60,
                          eval_bleu_sentences=4, beam=2, **TINY)
    assert re.search(r"8 held-out names of 80: chrF [\d.]+, BLEU [\d.]+ \(copying the "
                     r"English: chrF [\d.]+", lines[0]), lines
    assert "(reference " in lines[0]
    assert _picture(lines) == tmp_path / "translate.png"
    assert len((tmp_path / "translate_data" / "train.de").read_text("utf-8").splitlines()) == 72


def test_speech_step(tmp_path):
    pytest.importorskip("espeakng_loader")
    from rnnkit.tasks.speech import examples

    lines = examples.demo(tmp_path, quiet=True, max_time="20s", n_train=16, n_test=4,
                          conv_channels=8, layers=1, batch_size=8, **{
                              k: v for k, v in TINY.items() if k != "embed"})
    assert re.search(r"4 digit strings by 48 unheard voices .*trained on 16 by 16 other "
                     r"variants\): [\d.]+% exactly right, [\d.]+% of digits wrong", lines[0]), \
        lines
    assert _picture(lines) == tmp_path / "speech.png"
