"""The web page end to end: the real server on a free loopback port, Debian's chromium driven by
Playwright, every panel used the way a person would, checked by what the page shows.

Screenshots of each panel go to the test's tmp dir, and to ``$RNNKIT_PAGE_SHOTS`` when set (to
look at the page after a change)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")

pytestmark = pytest.mark.usefixtures("one_thread")

CHROMIUM = Path("/usr/bin/chromium")
# no browser download, no network: Debian's chromium with everything that phones home off
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 15_000


def _train(root: Path, task: str, extra: dict) -> Path:
    from rnnkit.tasks import registry

    spec = registry.get(task)
    smoke = spec.smoke(root / f"{task}-data")
    train_cfg, cfg = spec.configs({**smoke.settings, **extra, "quiet": True})
    spec.fit(train_cfg, cfg, root / task)
    return root / task


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Two runs the shared smoke runs lack (attention pooling for the token shading, a quantile
    head for the interval band) and the files a user would upload."""
    import soundfile as sf

    from rnnkit.tasks.speech.smoke import RATE, tones
    from rnnkit.threads import one_thread

    root = tmp_path_factory.mktemp("page")
    with one_thread():
        attention = _train(root, "sentiment", {"pooling": "attention"})
        quantile = _train(root, "forecast", {"head": "quantile", "levels": "0.8,0.95"})
    wav = root / "abc.wav"
    sf.write(wav, tones("abc"), RATE)
    not_audio = root / "notes.wav"
    not_audio.write_text("not a recording", encoding="utf-8")
    no_columns = root / "other.csv"
    no_columns.write_text("when,value\n2024-01-01,1\n2024-01-02,2\n", encoding="utf-8")
    return {"sentiment": attention, "forecast": quantile, "wav": wav, "not_audio": not_audio,
            "csv": root / "forecast-data" / "series.csv", "no_columns": no_columns}


@pytest.fixture(scope="module")
def server(smoke_runs, files):
    """The server of every panel's models, in a thread, on a socket bound before it starts."""
    import uvicorn

    from rnnkit.serve.app import create_app

    models = {name: smoke_runs[name] for name in ("textgen", "translate", "speech",
                                                  "speech_stream")}
    models.update(sentiment=files["sentiment"], forecast=files["forecast"],
                  sentiment_max=smoke_runs["sentiment"])
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(models), log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as res:
                if res.status == 200:
                    break
        except OSError:  # not listening yet, or 503 while the models load
            pass
        assert time.monotonic() < deadline, "the server did not become healthy within 60 s"
        time.sleep(0.1)
    yield base
    srv.should_exit = True
    thread.join(timeout=10)
    sock.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1000, "height": 820})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems = []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(server + "/")
    page.wait_for_selector("#model:not([disabled])")
    yield page
    context.close()
    assert not problems, f"the page raised: {problems}"


def _pick(page, model: str, task: str):
    page.select_option("#model", model)
    assert page.inner_text("#task") == task
    panel = page.locator(f"#panel-{task}")
    assert panel.is_visible()
    assert page.locator(".panel:visible").count() == 1
    return panel


def _shot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"page-{name}.png"
    page.screenshot(path=str(path), full_page=True)
    if os.environ.get("RNNKIT_PAGE_SHOTS"):
        shutil.copy(path, Path(os.environ["RNNKIT_PAGE_SHOTS"]) / path.name)


def test_the_picker_lists_every_model_and_follows_its_task(page):
    options = page.locator("#model option").all_inner_texts()
    assert "textgen (textgen)" in options and "forecast (forecast)" in options
    assert len(options) == 7
    _pick(page, "speech_stream", "speech")
    assert page.locator("#live-pick").is_visible()  # a unidirectional model can stream
    _pick(page, "speech", "speech")
    assert not page.locator("#live-pick").is_visible()
    page.reload()  # the choice is kept in the address
    page.wait_for_selector("#model:not([disabled])")
    assert page.input_value("#model") == "speech"


def test_generated_text_streams_in_and_a_session_continues(page, tmp_path):
    panel = _pick(page, "textgen", "textgen")
    bodies = []
    page.on("request", lambda r: r.url.endswith("/v1/completions") and
            bodies.append(json.loads(r.post_data)))
    page.fill("#prompt", "the cat")
    page.fill("#max-tokens", "40")
    page.check("#keep-session")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#usage').textContent.includes('streamed')")
    first = page.locator("#output .completion").inner_text()
    assert first and page.locator("#output .prompt").inner_text() == "the cat"
    assert bodies[0]["stream"] is True and bodies[0]["max_tokens"] == 40
    session = bodies[0]["session_id"]
    assert session in page.inner_text("#session-info")

    page.fill("#prompt", " and")  # the session's conversation goes on below the first reply
    page.click("#generate")
    page.wait_for_function("document.querySelectorAll('#output .completion').length == 2 && "
                           "!document.querySelector('#generate').disabled")
    assert bodies[1]["session_id"] == session
    assert page.locator("#output .completion").nth(0).inner_text() == first
    _shot(page, tmp_path, "textgen")

    with page.expect_response(lambda r: r.request.method == "DELETE") as deleted:
        page.uncheck("#keep-session")  # forgetting the session deletes it on the server
    assert deleted.value.url.endswith(f"/v1/sessions/{session}") and deleted.value.ok
    assert page.inner_text("#session-info") == ""

    # a long generation: the text grows on screen while it streams, and Stop ends it early (the
    # page itself clicks Stop on the third change, so the click cannot come after the end)
    page.fill("#max-tokens", "2000")
    page.evaluate("""() => {
        window.lengths = [];
        const watch = new MutationObserver(() => {
            const piece = document.querySelector('#output .completion');
            const n = piece ? piece.textContent.length : 0;
            if (n && n !== window.lengths.at(-1)) window.lengths.push(n);
            if (window.lengths.length === 3) {
                watch.disconnect();
                document.querySelector('#stop').click();
            }
        });
        watch.observe(document.querySelector('#output'),
                   {subtree: true, characterData: true, childList: true});
    }""")
    page.click("#generate")
    page.wait_for_function("!document.querySelector('#generate').disabled")
    assert "stopped" in page.inner_text("#usage")
    lengths = page.evaluate("window.lengths")
    assert lengths[:3] == sorted(set(lengths[:3])) and lengths[2] < 2000
    assert len(page.locator("#output .completion").inner_text()) < 2000
    assert panel.locator(".error").is_hidden()

    # "!" is not in the tiny model's vocabulary: it is read as the unknown symbol, no error
    page.fill("#max-tokens", "5")
    page.fill("#prompt", "the cat!")
    page.click("#generate")
    page.wait_for_function("document.querySelector('#usage').textContent.includes('max tokens')"
                           " && !document.querySelector('#generate').disabled")
    assert page.inner_text("#output").startswith("the cat!")
    assert len(page.locator("#output .completion").last.text_content()) == 5
    assert panel.locator(".error").is_hidden()


def test_classification_shows_a_bar_per_label_and_the_attention(page, tmp_path):
    labels = page.evaluate("fetch('/v1/models').then(r => r.json()).then(m => m.data"
                           ".find(x => x.id === 'sentiment').config.labels)")
    _pick(page, "sentiment", "sentiment")
    page.fill("#sentence", "a good film")
    page.click("#classify")
    page.wait_for_selector("#bars .bar")
    bars = page.locator("#bars .bar")
    assert bars.count() == len(labels) == 2
    names = bars.locator(".name").all_inner_texts()
    assert sorted(names) == sorted(labels)
    assert page.inner_text("#label") == names[0]  # the most probable label comes first
    shares = [float(v.rstrip("%")) for v in bars.locator(".value").all_inner_texts()]
    assert shares == sorted(shares, reverse=True) and abs(sum(shares) - 100) < 0.5
    tokens = page.locator("#attention .token")
    assert tokens.all_inner_texts() == ["a", "good", "film"]
    shades = [float(t.evaluate("e => getComputedStyle(e).getPropertyValue('--w')"))
              for t in tokens.all()]
    assert max(shades) == 1.0 and min(shades) >= 0
    _shot(page, tmp_path, "sentiment")

    _pick(page, "sentiment_max", "sentiment")  # max pooling: probabilities, no attention
    page.click("#classify")
    page.wait_for_function("document.querySelector('#attention').textContent"
                           ".includes('no attention')")
    assert page.locator("#bars .bar").count() == 2


def test_translation_is_shown(page, tmp_path):
    _pick(page, "translate", "translate")
    page.fill("#source", "a b")
    page.click("#translate")
    page.wait_for_selector("#translation:not([hidden])")
    assert page.inner_text("#translation").strip()
    _shot(page, tmp_path, "translate")


def test_a_recording_is_transcribed_uploaded_or_streamed(page, files, tmp_path):
    panel = _pick(page, "speech", "speech")
    page.set_input_files("#audio", str(files["not_audio"]))
    page.click("#transcribe")
    panel.locator(".error").wait_for()
    assert "audio" in panel.locator(".error").inner_text()

    page.set_input_files("#audio", str(files["wav"]))
    page.click("#transcribe")
    page.wait_for_selector("#transcript:not([hidden])")
    assert panel.locator(".error").is_hidden()
    assert page.inner_text("#transcript").strip()

    _pick(page, "speech_stream", "speech")
    page.check("#live")
    sockets = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.click("#transcribe")
    page.wait_for_function("!document.querySelector('#transcribe').disabled")
    assert panel.locator(".error").is_hidden(), panel.locator(".error").inner_text()
    assert page.inner_text("#transcript").strip()
    assert sockets and "/v1/transcribe/stream?model=speech_stream" in sockets[0]
    _shot(page, tmp_path, "speech")


def test_the_forecast_chart_has_history_forecast_and_bands(page, files, tmp_path):
    panel = _pick(page, "forecast", "forecast")
    page.set_input_files("#csv", str(files["no_columns"]))
    page.click("#forecast")
    panel.locator(".error").wait_for()
    assert "load" in panel.locator(".error").inner_text()  # names the missing column

    page.set_input_files("#csv", str(files["csv"]))
    page.click("#forecast")
    page.wait_for_selector("#chart path.band")
    assert panel.locator(".error").is_hidden()
    bands = page.locator("#chart path.band")
    assert sorted(bands.evaluate_all("ps => ps.map(p => p.dataset.level)")) == ["80", "95"]
    for cls in ("band", "history", "forecast"):
        d = page.locator(f"#chart path.{cls}").first.get_attribute("d")
        assert d.startswith("M") and d.count("L") >= 5
    assert page.locator("#chart .axis-label").all_text_contents() == ["date", "load"]
    assert page.locator("#chart text.tick").count() >= 6
    assert page.locator("#forecast-table tr").count() == 1 + 6  # header + the horizon
    _shot(page, tmp_path, "forecast")
