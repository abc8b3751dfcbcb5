"""The onnxruntime predictors of ONNX exports: the PyTorch predictors' outputs, the Stepper
interface against the PyTorch model, and no torch import."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from rnnkit.errors import UserError
from rnnkit.export.exporter import export
from rnnkit.export.runtime import load_onnx
from rnnkit.tasks import load

pytestmark = pytest.mark.usefixtures("one_thread")
pytest.importorskip("onnxruntime")
TASKS = ("textgen", "sentiment", "forecast")


@pytest.fixture(scope="module")
def exports(smoke_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("ort")
    return {t: export(smoke_runs[t], "onnx", root / t, echo=None) for t in TASKS}


def test_greedy_text_equals_torch(smoke_runs, exports):
    onnx, torch_gen = load_onnx(exports["textgen"], threads=1), load(smoke_runs["textgen"])
    assert onnx.task == "textgen" and onnx.config == torch_gen.config
    for prompt in ("the ", "a cat"):
        want = torch_gen.generate(prompt, 60, temperature=0)
        pieces: list[str] = []
        got = onnx.generate(prompt, 60, temperature=0,
                            on_text=lambda i, p, pieces=pieces: pieces.append(p))
        assert got == want and "".join(pieces) == got
    assert onnx.predict(["the ", "a "], 20, temperature=0) == \
        torch_gen.predict(["the ", "a "], 20, temperature=0)
    sampled = onnx.generate("the ", 30, temperature=0.9, top_k=5, seed=3, samples=2)
    assert sampled == onnx.generate("the ", 30, temperature=0.9, top_k=5, seed=3, samples=2)
    with pytest.raises(UserError):
        onnx.generate("the ", 5, top_p=2.0)
    # a character the model lacks is read as the unknown symbol, the same in both
    assert onnx.generate("\u2603 the", 10, temperature=0) == \
        torch_gen.generate("\u2603 the", 10, temperature=0)
    with pytest.raises(UserError, match="empty"):
        onnx.generate("", 5)


def test_stepper_matches_the_torch_model(smoke_runs, exports):
    stepper, model = load_onnx(exports["textgen"], threads=1), load(smoke_runs["textgen"]).model
    prompts = [stepper.encode(t) for t in ("the cat", "a", "dog and ")]
    logits, states = [], []
    for ids in prompts:  # prefill in two parts continues the state
        _, state = stepper.prefill(ids[:1], None)
        last, state = stepper.prefill(ids[1:], state) if len(ids) > 1 else (_, state)
        with torch.no_grad():
            want, (h, c) = model(torch.tensor([ids]))
        np.testing.assert_allclose(last, want[0, -1].numpy(), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(state[1], c.numpy(), rtol=1e-4, atol=1e-5)
        logits.append(last)
        states.append(state)
    assert stepper.state_nbytes(states[0]) == sum(a.nbytes for a in states[0])
    before = [tuple(a.copy() for a in s) for s in states]
    tokens = np.array([3, 5, 7])
    out, new = stepper.step(tokens, states)
    for old, kept in zip(states, before, strict=True):  # states are never changed in place
        assert all(np.array_equal(a, b) for a, b in zip(old, kept, strict=True))
    stacked = tuple(torch.from_numpy(np.concatenate([s[i] for s in states], 1)) for i in (0, 1))
    with torch.no_grad():
        want, (h, _) = model.step(torch.from_numpy(tokens), stacked)
    assert out.shape == (3, stepper.vocab_size) and len(new) == 3
    np.testing.assert_allclose(out, want.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(new[1][0], h[:, 1:2].numpy(), rtol=1e-4, atol=1e-5)
    decoder = stepper.stream_decoder()
    assert "".join(decoder.feed(i) for i in prompts[0]) + decoder.flush() == "the cat"


def test_classifier_matches_torch(smoke_runs, exports):
    onnx, torch_clf = load_onnx(exports["sentiment"], threads=1), load(smoke_runs["sentiment"])
    texts = ["a very good film", "the plot was awful and dull", "unheardof lovely",
             "", "great " * 300]
    got, want = onnx.predict(texts), torch_clf.predict(texts)
    assert [g["label"] for g in got] == [w["label"] for w in want]
    for g, w in zip(got, want, strict=True):
        for label in onnx.labels:
            assert abs(g["probabilities"][label] - w["probabilities"][label]) < 1e-4


def test_forecaster_matches_torch(smoke_runs, exports):
    onnx, torch_fc = load_onnx(exports["forecast"], threads=1), load(smoke_runs["forecast"])
    data = torch_fc.config["forecast"]["data"]
    frame = pd.read_csv(data[0] if isinstance(data, list) else data)
    got, want = onnx.predict(frame), torch_fc.predict(frame)
    assert list(got.columns) == list(want.columns) and len(got) == len(want)
    pd.testing.assert_frame_equal(got, want, rtol=1e-4, atol=1e-4)
    with pytest.raises(UserError):
        onnx.predict(frame.head(3))


def test_runtime_never_imports_torch(exports):
    code = f"""
import sys
import numpy as np
from rnnkit.export.runtime import load_onnx
exports = {({t: str(p) for t, p in exports.items()})!r}
gen = load_onnx(exports["textgen"], threads=1)
gen.generate("the ", 10, temperature=0)
gen.step(np.array([1]), [gen.prefill([1], None)[1]])
load_onnx(exports["sentiment"], threads=1).predict(["a good film"])
fc = load_onnx(exports["forecast"], threads=1)
data = fc.config["forecast"]["data"]
fc.predict(data[0] if isinstance(data, list) else data)
print("torch" in sys.modules)
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_load_errors(smoke_runs, tmp_path):
    with pytest.raises(UserError, match="export.json is missing"):
        load_onnx(smoke_runs["textgen"])
    pt2 = export(smoke_runs["forecast"], "pt2", tmp_path / "pt2", echo=None)
    with pytest.raises(UserError, match="not an ONNX one"):
        load_onnx(pt2)
