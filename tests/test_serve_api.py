"""The HTTP server's core and per-task endpoints (rnnkit.serve.app), through FastAPI's TestClient
and once through a real uvicorn on loopback."""

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import soundfile as sf
from fastapi.testclient import TestClient

from rnnkit.cli import run
from rnnkit.serve import models as served_models
from rnnkit.serve.app import create_app
from rnnkit.serve.limits import Limits

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ("textgen", "sentiment", "translate", "speech", "speech_stream", "forecast")


def wait_ready(client, seconds=30.0):
    deadline = time.monotonic() + seconds
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline, client.get("/health").json()
        time.sleep(0.02)


def open_client(models, **options):
    client = TestClient(create_app(models, **options), raise_server_exceptions=False)
    client.__enter__()
    wait_ready(client)
    return client


@pytest.fixture(scope="module")
def runs(smoke_runs, tmp_path_factory):
    """The smoke runs, and an attention-pooling classifier for ``explain``."""
    from rnnkit.tasks import registry
    from rnnkit.threads import one_thread

    spec = registry.get("sentiment")
    root = tmp_path_factory.mktemp("attention")
    smoke = spec.smoke(root / "data")
    with one_thread():
        train_cfg, cfg = spec.configs({**smoke.settings, "pooling": "attention", "quiet": True})
        spec.fit(train_cfg, cfg, root / "run")
    return {**{k: smoke_runs[k] for k in NAMES}, "attention": root / "run"}


@pytest.fixture(scope="module")
def client(runs):
    c = open_client(runs)
    yield c
    c.__exit__(None, None, None)


def error_of(response, status):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type"}
    return body["error"]


def recording(runs, key):
    return next((runs[key].parent / f"{key}-data").glob("*.wav"))


def test_models_list_each_task_with_facts(client):
    data = client.get("/v1/models").json()
    assert data["object"] == "list"
    by_id = {m["id"]: m for m in data["data"]}
    assert set(by_id) == {*NAMES, "attention"}
    assert all(m["object"] == "model" and m["owned_by"] == "rnnkit" for m in by_id.values())
    assert by_id["sentiment"]["task"] == "sentiment"
    assert by_id["sentiment"]["config"]["labels"] == ["neg", "pos"]
    assert by_id["speech_stream"]["config"]["streaming"] is True
    assert by_id["speech"]["config"]["sample_rate"] == 8000
    assert by_id["forecast"]["config"]["columns"] == ["load"]


def test_classify_matches_the_predictor(client, runs):
    from rnnkit.tasks import load

    texts = ["a good film", "the plot was dull"]
    body = client.post("/v1/classify", json={"model": "sentiment", "texts": texts}).json()
    expected = load(runs["sentiment"]).predict(texts)
    assert body["model"] == "sentiment"
    assert [r["label"] for r in body["results"]] == [e["label"] for e in expected]
    for got, want in zip(body["results"], expected, strict=True):
        assert got["probabilities"] == pytest.approx(want["probabilities"], abs=1e-6)


def test_classify_explain_gives_attention_weights(client):
    body = client.post("/v1/classify", json={"model": "attention", "texts": ["a good film"],
                                             "explain": True}).json()
    pairs = body["results"][0]["attention"]
    assert [tok for tok, _ in pairs] == ["a", "good", "film"]
    assert sum(w for _, w in pairs) == pytest.approx(1.0, abs=1e-5)
    message = error_of(client.post("/v1/classify", json={
        "model": "sentiment", "texts": ["a"], "explain": True}), 400)["message"]
    assert "no attention weights" in message


def test_translate_transcribe_forecast(client, runs):
    from rnnkit.tasks import load

    body = client.post("/v1/translate", json={"model": "translate", "texts": ["ein hund lauft"],
                                              "beam": 2}).json()
    assert body["translations"] == load(runs["translate"]).translate(["ein hund lauft"], beam=2)

    wav = recording(runs, "speech")
    body = client.post("/v1/transcribe", files={"file": ("clip.wav", wav.read_bytes())},
                       data={"model": "speech"}).json()
    assert body == {"model": "speech", "text": load(runs["speech"]).predict(wav)[0]}

    csv = runs["forecast"].parent / "forecast-data" / "series.csv"
    by_file = client.post("/v1/forecast", files={"file": ("series.csv", csv.read_bytes())},
                          data={"model": "forecast"}).json()
    assert by_file["columns"] == ["date", "load"] and len(by_file["forecast"]) == 6
    assert by_file["forecast"][0]["date"].startswith("2024-01-13T12:00:00")
    import pandas as pd

    rows = json.loads(pd.read_csv(csv).to_json(orient="records"))
    by_json = client.post("/v1/forecast", json={"model": "forecast", "data": rows}).json()
    assert by_json["forecast"] == by_file["forecast"]


@pytest.mark.parametrize("request_kwargs, status, words", [
    ({"content": b"{not json", "headers": {"content-type": "application/json"}}, 400,
     "not valid JSON"),
    ({"content": b"garbage"}, 400, "the request body must be a JSON object"),
    ({"json": ["a list"]}, 400, "the request body must be a JSON object"),
    ({"json": {"model": "sentiment", "texts": "one text"}}, 400, "texts: input should be"),
    ({"json": {"model": "sentiment", "texts": [1, 2]}}, 400, "texts[0]"),
    ({"json": {"texts": ["a"]}}, 400, "model is required"),
    ({"json": {"model": "sentiment", "texts": ["a"], "temprature": 1}}, 400, "temprature"),
    ({"json": {"model": "nope", "texts": ["a"]}}, 404, "unknown model 'nope'"),
    ({"json": {"model": "textgen", "texts": ["a"]}}, 400,
     "textgen model; /v1/classify needs a sentiment model"),
    ({"json": {"model": "sentiment", "texts": []}}, 400, "texts is empty"),
])
def test_classify_mistakes_are_json_errors(client, request_kwargs, status, words):
    error = error_of(client.post("/v1/classify", **request_kwargs), status)
    assert words in error["message"]
    assert error["type"] == ("not_found_error" if status == 404 else "invalid_request_error")
    assert client.post("/v1/classify", json={"model": "sentiment", "texts": ["a"]}).status_code \
        == 200


def test_task_mistakes_are_json_errors(client, runs):
    e = error_of(client.post("/v1/transcribe", files={"file": ("notes.txt", b"hello there")},
                             data={"model": "speech"}), 400)
    assert e["message"].startswith("upload notes.txt is not a readable audio file")
    e = error_of(client.post("/v1/transcribe", files={"file": ("a.wav", b"x")},
                             data={"model": "translate"}), 400)
    assert "/v1/transcribe needs a speech model" in e["message"]
    e = error_of(client.post("/v1/forecast", files={"file": ("s.csv", b"a,b\n1,2\n")},
                             data={"model": "forecast"}), 400)
    assert e["message"] == ("upload s.csv has no columns 'date', 'load', which model forecast "
                            "reads (it needs date, load; found a, b).")
    e = error_of(client.post("/v1/forecast", json={"model": "forecast", "data": [
        {"date": "2024-01-01", "load": 1.0}]}), 400)
    assert "rows" in e["message"]
    e = error_of(client.post("/v1/translate", json={"model": "translate", "texts": ["€"]}), 400)
    assert "'€'" in e["message"]
    assert error_of(client.get("/v1/nothing"), 404)["type"] == "not_found_error"
    assert "does not take GET" in error_of(client.get("/v1/classify"), 405)["message"]
    assert client.get("/health").json() == {"status": "ok"}


def test_unexpected_errors_are_500_and_the_server_goes_on(client):
    served = client.app.state.rnnkit.models["translate"]
    original = served.predictor.predict
    served.predictor.predict = lambda *a, **k: 1 / 0
    try:
        e = error_of(client.post("/v1/translate", json={"model": "translate", "texts": ["x"]}),
                     500)
        assert e["type"] == "server_error" and "ZeroDivisionError" in e["message"]
    finally:
        served.predictor.predict = original
    assert client.post("/v1/translate", json={"model": "translate", "texts": ["katze im haus"]}
                       ).status_code == 200


def test_limits_on_size_length_and_count(runs):
    limits = Limits(max_body_bytes=2000, max_input_chars=10, max_texts=2)
    with TestClient(create_app({"sentiment": runs["sentiment"]}, limits=limits)) as c:
        wait_ready(c)
        e = error_of(c.post("/v1/classify", json={"model": "sentiment",
                                                  "texts": ["a" * 3000]}), 413)
        assert "larger than the limit of 2000 bytes" in e["message"]

        def chunks():  # no Content-Length: the limit holds while the body is read
            yield b'{"model": "sentiment", "texts": ["'
            yield b"a" * 3000
            yield b'"]}'

        e = error_of(c.post("/v1/classify", content=chunks(),
                            headers={"content-type": "application/json"}), 413)
        e = error_of(c.post("/v1/classify", json={"model": "sentiment",
                                                  "texts": ["a good film!"]}), 400)
        assert e["message"] == "texts[0] is 12 characters long, more than the limit of 10."
        e = error_of(c.post("/v1/classify", json={"model": "sentiment", "texts": ["a"] * 3}),
                     400)
        assert "holds 3 texts, more than the limit of 2" in e["message"]
        assert c.post("/v1/classify", json={"model": "sentiment", "texts": ["good"]}
                      ).status_code == 200


class Blocked:
    """Replaces a predictor's ``predict`` with one that waits for ``release``."""

    def __init__(self, served):
        self.served, self.original = served, served.predictor.predict
        self.entered, self.release = threading.Event(), threading.Event()
        served.predictor.predict = self

    def __call__(self, *args, **kwargs):
        self.entered.set()
        self.release.wait(10)
        return self.original(*args, **kwargs)

    def restore(self):
        self.release.set()
        self.served.predictor.predict = self.original


def test_429_with_retry_after_when_the_cap_is_reached(runs):
    limits = Limits(max_inflight=1)
    models = {"translate": runs["translate"], "speech_stream": runs["speech_stream"]}
    with TestClient(create_app(models, limits=limits)) as c, ThreadPoolExecutor(1) as pool:
        wait_ready(c)
        blocked = Blocked(c.app.state.rnnkit.models["translate"])
        try:
            first = pool.submit(c.post, "/v1/translate",
                                json={"model": "translate", "texts": ["katze im haus"]})
            assert blocked.entered.wait(10)
            second = c.post("/v1/translate", json={"model": "translate", "texts": ["katze"]})
            assert error_of(second, 429)["type"] == "rate_limit_error"
            assert second.headers["retry-after"] == "1"
            with c.websocket_connect("/v1/transcribe/stream?model=speech_stream") as ws:
                assert ws.receive_json()["error"]["type"] == "rate_limit_error"
                assert ws.receive()["code"] == 1013
            blocked.release.set()
            assert first.result(10).status_code == 200
        finally:
            blocked.restore()
        assert c.post("/v1/translate", json={"model": "translate", "texts": ["katze"]}
                      ).status_code == 200


def test_a_request_over_the_time_limit_is_408(runs):
    limits = Limits(request_timeout_s=0.2)
    with TestClient(create_app({"translate": runs["translate"]}, limits=limits)) as c:
        wait_ready(c)
        blocked = Blocked(c.app.state.rnnkit.models["translate"])
        try:
            e = error_of(c.post("/v1/translate", json={"model": "translate", "texts": ["x"]}),
                         408)
            assert e["type"] == "timeout_error" and "0.2 s" in e["message"]
        finally:
            blocked.restore()


def test_concurrent_classify_requests_run_as_one_batch(runs):
    app = create_app({"sentiment": runs["sentiment"]}, batch_window_s=0.3)
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        wait_ready(c)
        served = app.state.rnnkit.models["sentiment"]
        calls = []
        original = served.predictor.predict
        served.predictor.predict = lambda texts: calls.append(list(texts)) or original(texts)
        texts = [["a good film"], ["the plot was dull", "fine"]]
        replies = list(pool.map(lambda t: c.post("/v1/classify", json={
            "model": "sentiment", "texts": t}).json(), texts))
        served.predictor.predict = original
        assert len(calls) == 1 and sorted(calls[0]) == sorted(texts[0] + texts[1])
        for t, reply in zip(texts, replies, strict=True):
            alone = original(t)
            assert [r["label"] for r in reply["results"]] == [a["label"] for a in alone]
            assert reply["results"][0]["probabilities"] == pytest.approx(
                alone[0]["probabilities"], abs=1e-5)
        metrics = c.get("/metrics").text
        assert 'rnnkit_batch_size_count{model="sentiment"} 1.0' in metrics
        assert 'rnnkit_batch_size_sum{model="sentiment"} 3.0' in metrics


def test_a_bad_request_in_a_batch_fails_alone(runs):
    app = create_app({"translate": runs["translate"], "sentiment": runs["sentiment"]},
                     batch_window_s=0.3)
    with TestClient(app) as c, ThreadPoolExecutor(2) as pool:
        wait_ready(c)
        served = app.state.rnnkit.models["sentiment"]
        original = served.predictor.predict

        def predict(texts):
            if "poison" in texts:
                from rnnkit.errors import UserError
                raise UserError("poison is not a text this model reads.")
            return original(texts)

        served.predictor.predict = predict
        good, bad = pool.map(lambda t: c.post("/v1/classify", json={
            "model": "sentiment", "texts": t}), [["good"], ["poison"]])
        served.predictor.predict = original
        assert good.status_code == 200
        assert error_of(bad, 400)["message"] == "poison is not a text this model reads."


def test_health_is_503_while_loading_then_200(runs, monkeypatch):
    gate = threading.Event()
    load = served_models.load_served

    def slow(*args, **kwargs):
        gate.wait(10)
        return load(*args, **kwargs)

    monkeypatch.setattr("rnnkit.serve.app.load_served", slow)
    with TestClient(create_app({"sentiment": runs["sentiment"]})) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json() == {"status": "loading"}
        e = error_of(c.post("/v1/classify", json={"model": "sentiment", "texts": ["a"]}), 503)
        assert "still loading" in e["message"]
        gate.set()
        wait_ready(c)
        assert c.get("/health").json() == {"status": "ok"}


def test_health_says_why_loading_failed(tmp_path):
    with TestClient(create_app({"broken": tmp_path})) as c:
        deadline = time.monotonic() + 10
        while c.get("/health").json()["status"] == "loading" and time.monotonic() < deadline:
            time.sleep(0.02)
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "failed"
        assert "loading broken" in r.json()["error"]


def stream_chunks(samples, size):
    return [samples[i:i + size].astype("<f4").tobytes() for i in range(0, len(samples), size)]


def test_websocket_streams_the_growing_transcript(client, runs):
    from rnnkit.tasks import load

    wav = recording(runs, "speech_stream")
    samples, rate = sf.read(wav, dtype="float32")
    expected = list(load(runs["speech_stream"]).stream(
        [samples[i:i + 800] for i in range(0, len(samples), 800)]))
    got = []
    with client.websocket_connect("/v1/transcribe/stream?model=speech_stream") as ws:
        for frame in stream_chunks(samples, 800):
            ws.send_bytes(frame)
            got.append(ws.receive_json()["text"])
        ws.send_text(json.dumps({"event": "end"}))
        final = ws.receive_json()
    assert got == expected
    assert final == {"text": expected[-1], "final": True}

    from rnnkit.data.audio import resample

    at_16k = resample(samples, rate, 16000)
    with client.websocket_connect("/v1/transcribe/stream?model=speech_stream") as ws:
        ws.send_text(json.dumps({"sample_rate": 16000}))
        for frame in stream_chunks(at_16k, 1600):
            ws.send_bytes(frame)
            ws.receive_json()
        ws.send_text(json.dumps({"event": "end"}))
        assert ws.receive_json()["final"] is True


@pytest.mark.parametrize("model, frames, words", [
    ("speech", [], "is bidirectional"),
    ("nope", [], "unknown model"),
    ("speech_stream", [b"abc"], "multiple of 4 bytes"),
    ("speech_stream", ["hello"], "must be JSON"),
    ("speech_stream", [b"\0\0\0\0", json.dumps({"sample_rate": 16000})], "first frame"),
])
def test_websocket_mistakes_answer_an_error_and_close(client, model, frames, words):
    with client.websocket_connect(f"/v1/transcribe/stream?model={model}") as ws:
        for frame in frames:
            (ws.send_bytes if isinstance(frame, bytes) else ws.send_text)(frame)
        message = ws.receive_json()
        while "error" not in message:
            message = ws.receive_json()
        assert words in message["error"]["message"]
        assert ws.receive()["type"] == "websocket.close"


def test_metrics_count_requests_by_endpoint_model_and_status(client):
    client.post("/v1/classify", json={"model": "sentiment", "texts": ["good"]})
    client.post("/v1/classify", json={"model": "nope", "texts": ["good"]})
    r = client.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'rnnkit_requests_total{endpoint="/v1/classify",model="sentiment",status="200"}' in text
    assert 'rnnkit_requests_total{endpoint="/v1/classify",model="",status="404"}' in text
    assert 'rnnkit_request_seconds_bucket{endpoint="/v1/classify",le="0.5",model="sentiment"}' \
        in text
    for name in ("rnnkit_tokens_generated_total", "rnnkit_sessions_active",
                 "rnnkit_requests_inflight"):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_the_page_and_its_files_are_served(client):
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    assert client.get("/static/app.js").status_code == 200


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_real_uvicorn_on_loopback(runs):
    import uvicorn

    port = free_port()
    app = create_app({"sentiment": runs["sentiment"]})
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not come up"
            time.sleep(0.05)
        r = httpx.post(f"{base}/v1/classify", json={"model": "sentiment", "texts": ["good"]},
                       timeout=10)
        assert r.status_code == 200 and r.json()["results"][0]["label"] in ("neg", "pos")
        r = httpx.post(f"{base}/v1/classify", content=b"x" * (11 << 20), timeout=10,
                       headers={"content-type": "application/json"})
        assert r.status_code == 413
        assert httpx.get(f"{base}/health", timeout=2).status_code == 200
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize("argv, words", [
    (["serve", "/no/such/run"], "run directory /no/such/run does not exist."),
    (["serve", "{run}", "--engine", "tpu"], "--engine must be torch or onnx"),
    (["serve", "{run}", "--max-inflight", "0"], "--max-inflight must be positive"),
    (["serve", "a={run}", "a={run}"], "two models are called 'a'"),
])
def test_serve_command_bad_input_is_exit_2_with_one_sentence(runs, capsys, argv, words):
    argv = [a.replace("{run}", str(runs["sentiment"])) for a in argv]
    assert run(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and words in err and "\n" not in err


def test_serve_command_refuses_a_port_in_use(runs, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert run(["serve", str(runs["sentiment"]), "--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_onnx_engine_exports_on_the_fly_and_serves(runs, tmp_path):
    import shutil

    pytest.importorskip("onnxruntime")
    from rnnkit.tasks import load

    copies = {}
    for key in ("textgen", "forecast", "translate"):
        copies[key] = tmp_path / key
        shutil.copytree(runs[key], copies[key], ignore=shutil.ignore_patterns("export-*"))
    with TestClient(create_app(copies, engine="onnx")) as c:
        wait_ready(c, seconds=120)
        engines = {m["id"]: m["config"]["engine"] for m in c.get("/v1/models").json()["data"]}
        assert engines == {"textgen": "onnx", "forecast": "onnx", "translate": "torch"}
        assert (copies["textgen"] / "export-onnx" / "export.json").is_file()
        body = c.post("/v1/completions", json={"model": "textgen", "prompt": "the ",
                                               "max_tokens": 5, "seed": 3}).json()
        assert body["usage"]["completion_tokens"] == 5
        csv = runs["forecast"].parent / "forecast-data" / "series.csv"
        got = c.post("/v1/forecast", files={"file": ("s.csv", csv.read_bytes())},
                     data={"model": "forecast"}).json()
        want = load(runs["forecast"]).predict(csv)
        assert [row["load"] for row in got["forecast"]] == pytest.approx(
            want["load"].tolist(), abs=1e-4)
