"""The server's batched generation engine, the torch Stepper and the session store."""

import threading
import time

import numpy as np
import pytest
import torch

from rnnkit.data.tokenizers import CharTokenizer
from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.serve.generation import Engine, Job
from rnnkit.serve.sessions import Sessions
from rnnkit.serve.stepper import TorchStepper
from rnnkit.tasks.textgen.predictor import TextGenerator

pytestmark = pytest.mark.usefixtures("one_thread")

ALPHABET = list("abcdefghij .,")


class FakeStepper:
    """A stepper whose state is the tuple of token ids fed so far (so a test can read exactly
    what a state has seen) and whose next token follows a fixed script of the state's length.
    Tokens may be several characters long."""

    def __init__(self, vocab=("a", "b", "c", "d", "xy", "x", "y"), script=(0, 1, 2, 3, 4), delay=0.0):
        self.vocab, self.script, self.delay = list(vocab), script, delay
        self.vocab_size = len(vocab)
        self.prefills: list[list[int]] = []
        self.batches: list[int] = []

    def encode(self, text):
        ids = []
        while text:
            i = max((i for i, t in enumerate(self.vocab) if text.startswith(t)),
                    key=lambda i: len(self.vocab[i]))
            ids.append(i)
            text = text[len(self.vocab[i]):]
        return ids

    def stream_decoder(self):
        vocab = self.vocab

        class Decoder:
            def feed(self, token):
                return vocab[token]

            def flush(self):
                return ""

        return Decoder()

    def _logits(self, state):
        out = np.zeros(self.vocab_size, np.float32)
        out[self.script[len(state) % len(self.script)]] = 1.0
        return out

    def prefill(self, ids, state):
        self.prefills.append(list(ids))
        state = (state or ()) + tuple(ids)
        return self._logits(state), state

    def step(self, tokens, states):
        time.sleep(self.delay)
        self.batches.append(len(tokens))
        new = [s + (int(t),) for t, s in zip(tokens, states, strict=True)]
        return np.stack([self._logits(s) for s in new]), new

    def state_nbytes(self, state):
        return 8 * len(state)


def run(engine, ids, state=None, logits=None, n=1, **settings):
    """Submit ``n`` jobs and wait for them: [(Result, pieces)] in job order."""
    done = [threading.Event() for _ in range(n)]
    pieces = [[] for _ in range(n)]
    results = [None] * n

    def job(i):
        def finish(result):
            results[i] = result
            done[i].set()
        return Job(on_text=pieces[i].append, on_done=finish, **settings)

    engine.submit(ids, [job(i) for i in range(n)], state, logits)
    for event in done:
        assert event.wait(10)
    return list(zip(results, pieces, strict=True))


@pytest.fixture
def engine():
    engines = []

    def make(stepper):
        engines.append(Engine(stepper))
        return engines[-1]

    yield make
    for e in engines:
        e.close()


def tiny_generator(arch="lstm", seed=1):
    """An untrained two-layer model; weights larger than the default's so that its greedy text
    depends on the prompt instead of settling on one letter."""
    torch.manual_seed(seed)
    model = LanguageModel(LanguageModelConfig(vocab_size=len(ALPHABET), arch=arch, layers=2,
                                              hidden=24))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.5)
    return TextGenerator(model, CharTokenizer(ALPHABET), {})


# --- the engine, on the scripted stepper ---

def test_max_tokens_and_streamed_pieces(engine):
    stepper = FakeStepper()
    [(result, pieces)] = run(engine(stepper), [0], max_tokens=4, temperature=0)
    # the state holds one token, so the script goes on from its second entry
    assert result.text == "bcdxy" and "".join(pieces) == result.text
    assert result.finish_reason == "length" and result.tokens == 4
    assert stepper.batches == [1, 1, 1]  # the last token is not fed unless the state is kept
    [(result, _)] = run(engine(FakeStepper()), [0], max_tokens=0)
    assert result.text == "" and result.finish_reason == "length"


def test_stop_string_cuts_and_is_never_streamed(engine):
    [(result, pieces)] = run(engine(FakeStepper()), [0], max_tokens=20, temperature=0,
                             stop=("xya", "zz"))
    assert result.text == "bcd" and result.finish_reason == "stop" and result.tokens == 5
    assert "".join(pieces) == "bcd"  # "xy" was held back until it turned out to be the stop
    [(result, pieces)] = run(engine(FakeStepper()), [0], max_tokens=20, temperature=0,
                             stop=("xyz",))
    assert result.finish_reason == "length" and "".join(pieces) == result.text
    assert "xya" in result.text  # held back, then sent once it could no longer be "xyz"


def test_kept_state_is_after_exactly_the_returned_text(engine):
    stepper = FakeStepper()
    [(result, _)] = run(engine(stepper), [0], max_tokens=4, temperature=0, keep_state=True)
    assert result.state == (0, 1, 2, 3, 4) and result.fed == 5 and result.pending == []
    assert np.argmax(result.logits) == 0  # the next token after the whole text
    # a stop string inside the multi-character token "xy": the state stops before that token
    # and the part of it before the cut waits in `pending`
    [(result, _)] = run(engine(FakeStepper()), [0], max_tokens=20, temperature=0,
                        keep_state=True, stop=("ya",))
    assert result.text == "bcdx" and result.finish_reason == "stop"
    assert result.state == (0, 1, 2, 3) and result.pending == [5]


def test_requests_share_steps(engine):
    stepper = FakeStepper(delay=0.002)
    eng = engine(stepper)
    run(eng, [0], n=3, max_tokens=10, temperature=0)
    assert stepper.batches == [3] * 9  # one step call for the three choices, every time
    stepper.batches.clear()
    finished = []
    jobs = [Job(on_text=lambda _: None, on_done=finished.append, max_tokens=30)
            for _ in range(2)]
    eng.submit([0], jobs[:1])
    eng.submit([1], jobs[1:])  # joins between two steps of the first
    deadline = time.time() + 10
    while len(finished) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert len(finished) == 2 and max(stepper.batches) == 2
    assert sum(stepper.batches) == 58 and len(stepper.batches) < 58


def test_each_row_samples_with_its_own_generator(engine):
    def texts(seeds):
        out = []
        for seed in seeds:
            [(result, _)] = run(engine(FakeStepper()), [0], max_tokens=12, temperature=1.0,
                                rng=np.random.default_rng(seed))
            out.append(result.text)
        return out

    assert texts([1, 1]) == texts([1, 1])[::-1]
    assert len(set(texts([1, 2, 3, 4]))) > 1


def test_cancel_stops_a_row_and_spares_the_others(engine):
    stepper = FakeStepper(delay=0.002)
    eng = engine(stepper)
    results = {}
    jobs = [Job(on_text=lambda _: None, on_done=lambda r, i=i: results.__setitem__(i, r),
                max_tokens=500) for i in range(2)]
    jobs[1].max_tokens = 20
    eng.submit([0], jobs)
    time.sleep(0.05)
    jobs[0].cancel()
    deadline = time.time() + 10
    while len(results) < 2 and time.time() < deadline:
        time.sleep(0.01)
    assert results[0].finish_reason == "cancelled" and results[0].tokens < 500
    assert results[1].finish_reason == "length" and results[1].tokens == 20


def test_a_failing_step_ends_its_rows_and_the_loop_goes_on(engine):
    stepper = FakeStepper()
    eng = engine(stepper)
    real = stepper.step
    stepper.step = lambda tokens, states: (_ for _ in ()).throw(RuntimeError("boom"))
    [(result, _)] = run(eng, [0], max_tokens=5)
    assert result.finish_reason == "error" and "boom" in result.error
    stepper.step = real
    [(result, _)] = run(eng, [0], max_tokens=5, temperature=0)
    assert result.finish_reason == "length" and result.tokens == 5


# --- the torch stepper ---

@pytest.mark.parametrize("arch", ["lstm", "gru"])
def test_greedy_equals_textgenerator_generate(engine, arch):
    gen = tiny_generator(arch)
    eng = engine(TorchStepper(gen))
    prompts = ["abc", "hide a bag", "j.i,h"]
    expected = [gen.generate(p, 25, temperature=0) for p in prompts]
    assert len(set(expected)) == 3
    results = {}
    # three prompts at once: rows with different states share each step
    threads = [threading.Thread(target=lambda p=p: results.__setitem__(
        p, run(eng, gen.tokenizer.encode(p), max_tokens=25, temperature=0)[0][0].text))
        for p in prompts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[p] for p in prompts] == expected
    assert eng.rows_stepped == 3 * 24


def test_torch_step_never_writes_into_a_state():
    gen = tiny_generator("lstm")
    stepper = TorchStepper(gen)
    _, a = stepper.prefill(stepper.encode("abc"), None)
    _, b = stepper.prefill(stepper.encode("ji"), None)
    before = [t.clone() for t in a + b]
    logits, (a2, b2) = stepper.step(np.array([1, 2]), [a, b])
    assert logits.shape == (2, len(ALPHABET)) and logits.dtype == np.float32
    assert all(torch.equal(x, y) for x, y in zip(before, a + b, strict=True))
    assert a2[0].shape == (2, 1, 24) and a2[0].untyped_storage().data_ptr() != \
        b2[0].untyped_storage().data_ptr()
    # the batched step equals each row stepped alone
    alone, [a1] = stepper.step(np.array([1]), [a])
    np.testing.assert_allclose(alone[0], logits[0], atol=1e-5)
    torch.testing.assert_close(a1, a2)
    assert stepper.state_nbytes(a2) == 2 * 2 * 24 * 4


def test_prefill_in_chunks_equals_one_forward(monkeypatch):
    import rnnkit.serve.stepper as module

    stepper = TorchStepper(tiny_generator("gru"))
    ids = stepper.encode("abcdefghij" * 5)
    whole, s1 = stepper.prefill(ids, None)
    monkeypatch.setattr(module, "_CHUNK", 7)
    chunked, s2 = stepper.prefill(ids, None)
    np.testing.assert_allclose(whole, chunked, atol=1e-5)
    torch.testing.assert_close(s1, s2)


def test_continuing_a_state_equals_the_whole_history(engine):
    gen = tiny_generator("lstm")
    stepper = TorchStepper(gen)
    eng = engine(stepper)
    first = "a cab"
    [(r1, _)] = run(eng, stepper.encode(first), max_tokens=15, temperature=0, keep_state=True)
    stepper_prefill = stepper.prefill
    seen = []
    stepper.prefill = lambda ids, state: seen.append(list(ids)) or stepper_prefill(ids, state)
    [(r2, _)] = run(eng, stepper.encode("bad"), r1.state, max_tokens=15, temperature=0)
    assert seen == [stepper.encode("bad")]  # only the new text is read
    history = first + r1.text + "bad"
    assert r2.text == gen.generate(history, 15, temperature=0)
    assert r2.text != gen.generate("bad", 15, temperature=0)  # the history mattered
    # no new text: the kept logits continue the same history
    [(r3, _)] = run(eng, [], r1.state, r1.logits, max_tokens=10, temperature=0)
    assert r3.text == gen.generate(first + r1.text, 10, temperature=0)


def test_state_cut_at_a_stop_string_equals_reading_the_text(engine):
    gen = tiny_generator("gru", seed=3)
    stepper = TorchStepper(gen)
    free = gen.generate("abc", 30, temperature=0)
    stop = free[12:14]
    [(result, _)] = run(engine(stepper), stepper.encode("abc"), max_tokens=30, temperature=0,
                        keep_state=True, stop=(stop,))
    assert result.finish_reason == "stop" and result.text == free[: free.find(stop)]
    expected_logits, expected_state = stepper.prefill(stepper.encode("abc" + result.text), None)
    torch.testing.assert_close(result.state, expected_state, atol=1e-5, rtol=1e-4)
    np.testing.assert_allclose(result.logits, expected_logits, atol=1e-4)


# --- sessions ---

class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def save(sessions, sid, model="m", nbytes=10, state="s"):
    session = sessions.open(sid, model)
    sessions.save(session, state, None, [], 3, nbytes)
    return session


def test_sessions_expire_after_their_ttl():
    clock = Clock()
    sessions = Sessions(ttl_s=10, max_sessions=10, max_bytes=1000, clock=clock)
    save(sessions, "a")
    clock.now = 5
    save(sessions, "b")
    clock.now = 12
    assert len(sessions) == 1 and sessions.nbytes == 10
    assert sessions.open("a", "m").state is None  # a fresh session under the old id
    assert sessions.open("b", "m").state == "s"


def test_sessions_evict_the_least_recently_used_by_count_and_bytes():
    clock = Clock()
    sessions = Sessions(ttl_s=100, max_sessions=3, max_bytes=100, clock=clock)
    for i, sid in enumerate("abc"):
        clock.now = i
        save(sessions, sid)
    clock.now = 3
    save(sessions, "a")  # a is now the most recent
    save(sessions, "d")
    assert len(sessions) == 3 and not sessions.delete("b")  # b was the least recently used
    save(sessions, "e", nbytes=85)  # 10 + 10 + 10 + 85 > 100: c and then a go
    assert len(sessions) == 2 and sessions.nbytes == 95
    assert not sessions.delete("c") and not sessions.delete("a")
    assert sessions.delete("d") and sessions.nbytes == 85


def test_a_session_belongs_to_one_model_and_one_request_at_a_time():
    sessions = Sessions(ttl_s=100, max_sessions=10, max_bytes=1000)
    session = sessions.open("a", "m")
    with pytest.raises(UserError, match="busy"):
        sessions.open("a", "m")
    sessions.save(session, "s", None, [], 3, 10)
    with pytest.raises(UserError, match="belongs to model 'm'"):
        sessions.open("a", "other")
    other = sessions.open("x", "m")
    sessions.release(other)  # a request that failed leaves no empty session behind
    assert len(sessions) == 1
    session = sessions.open("a", "m")
    assert sessions.delete("a")
    sessions.save(session, "s2", None, [], 3, 10)  # deleted while generating: not brought back
    assert len(sessions) == 0 and sessions.nbytes == 0
