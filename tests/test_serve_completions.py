"""POST /v1/completions and sessions through the app, on the smoke textgen run."""

import json
import re
import threading

import pytest
import torch

from rnnkit.serve.limits import Limits

pytestmark = pytest.mark.usefixtures("one_thread")

fastapi = pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402

from rnnkit.serve.app import create_app  # noqa: E402


@pytest.fixture(scope="module")
def server(smoke_runs):
    runs = {"tg": smoke_runs["textgen"], "tg2": smoke_runs["textgen"],
            "sent": smoke_runs["sentiment"]}
    app = create_app(runs, limits=Limits(max_tokens=64, max_sessions=3))
    with TestClient(app) as client:
        for _ in range(600):
            if client.get("/health").status_code == 200:
                break
            threading.Event().wait(0.05)
        state = app.state.rnnkit
        yield client, state


def complete(client, **body):
    r = client.post("/v1/completions", json={"model": "tg", **body})
    assert r.status_code == 200, r.text
    return r.json()


def text_of(client, **body):
    return complete(client, **body)["choices"][0]["text"]


def greedy(state, prompt, n):
    return state.models["tg"].predictor.generate(prompt, n, temperature=0)


def test_greedy_completion_equals_textgenerator_generate(server):
    client, state = server
    reply = complete(client, prompt="the cat ", max_tokens=20, temperature=0)
    assert reply["object"] == "text_completion" and reply["id"].startswith("cmpl-")
    assert reply["model"] == "tg" and isinstance(reply["created"], int)
    [choice] = reply["choices"]
    assert choice["text"] == greedy(state, "the cat ", 20)
    assert choice["index"] == 0 and choice["finish_reason"] == "length"
    assert reply["usage"] == {"prompt_tokens": 8, "completion_tokens": 20, "total_tokens": 28}


def test_n_choices_and_prompt_lists_with_seeds(server):
    client, _ = server
    reply = complete(client, prompt="a dog", max_tokens=24, n=3, seed=7)
    texts = [c["text"] for c in reply["choices"]]
    assert [c["index"] for c in reply["choices"]] == [0, 1, 2] and len(set(texts)) > 1
    # choice i of a seed does not depend on how many choices were asked for
    assert [c["text"] for c in complete(client, prompt="a dog", max_tokens=24, n=2,
                                        seed=7)["choices"]] == texts[:2]
    both = complete(client, prompt=["a dog", "the cat "], max_tokens=5, temperature=0)
    assert [c["index"] for c in both["choices"]] == [0, 1]
    assert both["usage"]["prompt_tokens"] == 5 + 8


def test_stop_strings_cut_the_text(server):
    client, _ = server
    # the smoke model's greedy text is one letter over and over: sample, with a seed
    free = text_of(client, prompt="a dog", max_tokens=40, seed=5)
    stop = free[10:12]
    [choice] = complete(client, prompt="a dog", max_tokens=40, seed=5,
                        stop=[stop, "#"])["choices"]
    assert choice == {"index": 0, "text": free[: free.find(stop)], "logprobs": None,
                      "finish_reason": "stop"}


def test_streaming_is_server_sent_events_ending_in_done(server):
    client, _ = server
    r = client.post("/v1/completions", json={"model": "tg", "prompt": "the cat ",
                                             "max_tokens": 20, "seed": 2, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    body = r.text
    assert re.fullmatch(r"(data: \{[^\n]*\}\n\n)+data: \[DONE\]\n\n", body)
    chunks = [json.loads(e[len("data: "):]) for e in body.split("\n\n")[:-2]]
    assert all(c["object"] == "text_completion" and c["model"] == "tg" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert "".join(c["choices"][0]["text"] for c in chunks) == text_of(
        client, prompt="the cat ", max_tokens=20, seed=2)
    assert [c["choices"][0]["finish_reason"] for c in chunks][-1] == "length"
    assert len(chunks) > 2  # the text came piece by piece


def test_a_session_continues_with_only_the_new_prompt(server, monkeypatch):
    client, state = server
    stepper = state.models["tg"].stepper
    seen = []
    real = stepper.prefill
    monkeypatch.setattr(stepper, "prefill", lambda ids, s: seen.append(ids) or real(ids, s))
    # sampled with seeds (the smoke model's greedy text is one letter): a seed drives only the
    # new tokens, so the same seed gives the same continuation of the same history
    first = text_of(client, prompt="the cat ", max_tokens=15, seed=1, session_id="s1")
    second = text_of(client, prompt=" a dog", max_tokens=15, seed=2, session_id="s1")
    assert seen[-1] == stepper.encode(" a dog")
    history = "the cat " + first + " a dog"
    assert second == text_of(client, prompt=history, max_tokens=15, seed=2)
    # the smoke model barely looks back, so check the kept state itself
    session = state.sessions.open("s1", "tg")
    _, expected = real(stepper.encode(history + second), None)
    torch.testing.assert_close(session.state, expected, atol=1e-5, rtol=1e-4)
    state.sessions.release(session)
    third = text_of(client, prompt="dog", max_tokens=15, temperature=0, session_id="s1")
    assert third == text_of(client, prompt=history + second + "dog", max_tokens=15,
                            temperature=0)
    session = state.sessions.open("s1", "tg")
    assert session.tokens == len(history + second + "dog" + third)  # one token a character
    state.sessions.release(session)


def test_sessions_do_not_see_each_other(server):
    client, _ = server
    a1 = text_of(client, prompt="the cat ", max_tokens=10, seed=1, session_id="a")
    b1 = text_of(client, prompt="a dog a dog", max_tokens=10, seed=1, session_id="b")
    a2 = text_of(client, prompt=" the", max_tokens=10, seed=2, session_id="a")
    assert a2 == text_of(client, prompt="the cat " + a1 + " the", max_tokens=10, seed=2)
    b2 = text_of(client, prompt=" the", max_tokens=10, seed=2, session_id="b")
    assert b2 == text_of(client, prompt="a dog a dog" + b1 + " the", max_tokens=10, seed=2)
    # an empty prompt continues the session from where its last reply ended
    a3 = text_of(client, prompt="", max_tokens=10, seed=3, session_id="a")
    assert a3 == text_of(client, prompt="the cat " + a1 + " the" + a2, max_tokens=10, seed=3)


def test_delete_and_evict_sessions(server):
    client, state = server
    fresh = text_of(client, prompt="dog", max_tokens=8, seed=4)
    text_of(client, prompt="the cat ", max_tokens=8, seed=4, session_id="d")
    assert client.delete("/v1/sessions/d").json() == {"id": "d", "object": "session",
                                                      "deleted": True}
    r = client.delete("/v1/sessions/d")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    # a deleted session starts over
    assert text_of(client, prompt="dog", max_tokens=8, seed=4, session_id="d") == fresh
    for sid in ("e1", "e2", "e3"):  # max_sessions is 3: d goes first
        text_of(client, prompt="dog", max_tokens=2, temperature=0, session_id=sid)
    assert len(state.sessions) == 3 and client.delete("/v1/sessions/d").status_code == 404


def test_a_session_belongs_to_its_model(server):
    client, _ = server
    text_of(client, prompt="dog", max_tokens=2, session_id="own")
    r = client.post("/v1/completions", json={"model": "tg2", "prompt": "dog",
                                             "session_id": "own"})
    assert r.status_code == 400 and "belongs to model 'tg'" in r.json()["error"]["message"]


def test_concurrent_requests_share_steps(server, monkeypatch):
    client, state = server
    stepper = state.models["tg"].stepper
    batches = []
    real = stepper.step

    def step(tokens, states):
        batches.append(len(tokens))
        threading.Event().wait(0.002)  # long enough for the requests to overlap
        return real(tokens, states)

    alone = [text_of(client, prompt="the cat ", max_tokens=40, seed=i) for i in range(4)]
    monkeypatch.setattr(stepper, "step", step)
    replies = {}
    threads = [threading.Thread(target=lambda i=i: replies.__setitem__(i, text_of(
        client, prompt="the cat ", max_tokens=40, seed=i))) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [replies[i] for i in range(4)] == alone  # rows keep their own state and generator
    assert sum(batches) == 4 * 39 and max(batches) > 1 and len(batches) < 4 * 39


def metric(client, name):
    text = client.get("/metrics").text
    found = re.search(rf"^{re.escape(name)} (\S+)$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_tokens_and_sessions(server):
    client, state = server
    tokens = 'rnnkit_tokens_generated_total{model="tg"}'
    before = metric(client, tokens)
    complete(client, prompt="dog", max_tokens=9, n=2)
    client.post("/v1/completions", json={"model": "tg", "prompt": "dog", "max_tokens": 5,
                                         "stream": True})
    assert metric(client, tokens) == before + 23
    text_of(client, prompt="dog", max_tokens=1, session_id="m")
    assert metric(client, "rnnkit_sessions_active") == len(state.sessions) > 0


@pytest.mark.parametrize(("body", "status", "says"), [
    ({"max_tokens": 65}, 400, "max_tokens must be 0 to 64"),
    ({"prompt": ""}, 400, "the prompt is empty"),
    ({"model": "sent"}, 400, "model sent is a sentiment model; /v1/completions needs"),
    ({"model": "nope"}, 404, "unknown model 'nope'"),
    ({"temperature": -1}, 400, "temperature must be zero"),
    ({"top_p": 0}, 400, "top_p must be in (0, 1]"),
    ({"n": 2, "session_id": "x"}, 400, "one prompt and n = 1"),
    ({"session_id": "a b"}, 400, "session_id must be"),
    ({"stop": ""}, 400, "a stop string is empty"),
    ({"echo": True}, 400, "echo=true is not supported"),
    ({"colour": 1}, 400, "unknown field 'colour'"),
    ({"max_tokens": "many"}, 400, "max_tokens"),
])
def test_bad_requests_get_one_sentence(server, body, status, says):
    client, _ = server
    r = client.post("/v1/completions", json={"model": "tg", "prompt": "dog", **body})
    assert r.status_code == status
    error = r.json()["error"]
    assert says in error["message"] and set(error) == {"message", "type"}
    assert client.post("/v1/completions", json={"model": "tg", "prompt": "dog",
                                                "logprobs": None, "user": "u"}).status_code \
        == 200


def test_a_prompt_with_unknown_characters_is_completed_and_counted(server):
    client, state = server  # "Q" is not in the model's vocabulary: read as its unknown symbol
    reply = complete(client, prompt="the cat Q", max_tokens=5, temperature=0)
    assert reply["choices"][0]["text"] == greedy(state, "the cat Q", 5)
    assert reply["usage"]["prompt_tokens"] == 9 and reply["usage"]["unknown_chars"] == 1


def test_a_client_that_goes_away_cancels_its_generation(smoke_runs):
    """Over a real socket: closing a stream mid-way ends its row at the next step, and frees its
    session and in-flight slot."""
    import socket

    import httpx
    import uvicorn

    app = create_app({"tg": smoke_runs["textgen"]}, limits=Limits(max_tokens=2048))
    state = app.state.rnnkit
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            threading.Event().wait(0.05)
        stepper = state.models["tg"].stepper
        real = stepper.step
        stepper.step = lambda tokens, states: threading.Event().wait(0.01) or real(tokens,
                                                                                    states)
        body = {"model": "tg", "prompt": "dog", "max_tokens": 2048, "stream": True,
                "session_id": "gone"}
        with httpx.stream("POST", f"{url}/v1/completions", json=body) as r:
            assert r.status_code == 200
            next(r.iter_lines())
        engine = state.extras[("generation", "tg")]
        for _ in range(200):
            if not engine._rows and state.inflight == 0:
                break
            threading.Event().wait(0.05)
        assert engine.rows_stepped < 1000 and state.inflight == 0
        # the session is free again, and as it was (empty): nothing kept of the cancelled reply
        reply = httpx.post(f"{url}/v1/completions", json={**body, "stream": False,
                                                          "max_tokens": 3}).json()
        assert reply["choices"][0]["finish_reason"] == "length"
        session = state.sessions.open("gone", "tg")
        assert session.tokens == len("dog") + 3
    finally:
        server.should_exit = True
        thread.join(10)
