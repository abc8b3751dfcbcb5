"""rnnkit export: ONNX and pt2 graphs of every task, their parity with the PyTorch models,
stepping against the full sequence, and the command's exit codes."""

import json

import numpy as np
import pytest
import torch

from rnnkit.cli import run
from rnnkit.export.exporter import export
from rnnkit.tasks import load, registry

pytestmark = pytest.mark.usefixtures("one_thread")
ort = pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def onnx_exports(smoke_runs, tmp_path_factory):
    root = tmp_path_factory.mktemp("onnx")
    with torch.inference_mode(False):
        return {name: export(run_dir, "onnx", root / name, echo=None)
                for name, run_dir in smoke_runs.items()}


def session(directory, graph):
    meta = json.loads((directory / "export.json").read_text())
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    s = ort.InferenceSession(str(directory / meta["graphs"][graph]["file"]), options)
    return lambda *xs: s.run(None, dict(zip(meta["graphs"][graph]["inputs"], xs, strict=True)))


def test_every_task_exports_with_parity(onnx_exports):
    for name, directory in onnx_exports.items():
        meta = json.loads((directory / "export.json").read_text())
        assert meta["task"] == name.split("_")[0] and meta["format"] == "onnx"
        for graph in meta["graphs"].values():
            assert (directory / graph["file"]).is_file()
        assert all(r["ok"] and r["max_abs_error"] < 1e-5 for r in meta["parity"]), name
        stepped = [r for r in meta["parity"] if r["graph"] == "step == full"]
        assert bool(stepped) == (name in ("textgen", "speech_stream")), name
    speech = json.loads((onnx_exports["speech"] / "export.json").read_text())
    assert "step" not in speech["graphs"]  # bidirectional: nothing to stream
    assert {"labels", "tokenizer"} <= set(json.loads(
        (onnx_exports["sentiment"] / "export.json").read_text())["config"])


def test_language_model_graphs_take_any_batch_length_and_state(smoke_runs, onnx_exports):
    model = load(smoke_runs["textgen"]).model
    full, step = session(onnx_exports["textgen"], "full"), session(onnx_exports["textgen"], "step")
    g = torch.Generator().manual_seed(0)
    tokens = torch.randint(0, model.cfg.vocab_size, (5, 50), generator=g)
    h, c = (torch.randn(1, 5, model.cfg.hidden, generator=g) for _ in range(2))
    with torch.no_grad():
        want, (wh, wc) = model(tokens, (h, c))
    logits, oh, oc = full(tokens.numpy(), h.numpy(), c.numpy())
    np.testing.assert_allclose(logits, want.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(oc, wc.numpy(), rtol=1e-4, atol=1e-5)
    state = (h.numpy(), c.numpy())
    for t in range(tokens.shape[1]):  # the one-step graph walks the same sequence
        out, *state = step(tokens[:, t].numpy(), *state)
        np.testing.assert_allclose(out, want[:, t].numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(state[0], wh.numpy(), rtol=1e-4, atol=1e-5)


def test_classifier_graph_ignores_padding(onnx_exports):
    directory = onnx_exports["sentiment"]
    meta = json.loads((directory / "export.json").read_text())
    classify = session(directory, "full")
    tokens = np.array([[3, 9, 8, 0, 0, 0], [5, 12, 8, 4, 10, 2]], dtype=np.int64)
    grams = np.full((2, 6, 3), -1, dtype=np.int64)
    grams[:, :, 0] = 7
    inputs = [tokens, np.array([3, 6], dtype=np.int64)]
    inputs += [grams] if meta["model"]["subword_buckets"] else []
    batch = classify(*inputs)[0]
    alone = classify(tokens[:1, :3], inputs[1][:1], *[g[:1, :3] for g in inputs[2:]])[0]
    np.testing.assert_allclose(batch[0], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(batch.sum(1), 1.0, rtol=1e-5)


def test_mingru_exports_as_a_loop(tmp_path):
    spec = registry.get("textgen")
    smoke = spec.smoke(tmp_path / "data")
    train_cfg, cfg = spec.configs({**smoke.settings, "arch": "mingru", "layers": 2,
                                   "quiet": True})
    spec.fit(train_cfg, cfg, tmp_path / "run")
    meta = json.loads((export(tmp_path / "run", "onnx", echo=None) / "export.json").read_text())
    assert all(r["ok"] for r in meta["parity"])
    assert (tmp_path / "run" / "export-onnx" / "step.onnx").is_file()


@pytest.mark.parametrize("name", ["textgen", "speech_stream"])
def test_pt2_export_and_parity(smoke_runs, tmp_path, name):
    out = export(smoke_runs[name], "pt2", tmp_path / name, echo=None)
    meta = json.loads((out / "export.json").read_text())
    assert meta["format"] == "pt2" and all(r["ok"] for r in meta["parity"])
    assert any(r["graph"] == "step == full" for r in meta["parity"])
    if name == "textgen":  # a batch and length the export never saw
        program = torch.export.load(str(out / "full.pt2")).module()
        model = load(smoke_runs[name]).model
        tokens = torch.randint(0, model.cfg.vocab_size, (3, 13))
        state = tuple(torch.zeros(1, 3, model.cfg.hidden) for _ in range(2))
        with torch.no_grad():
            got, want = program(tokens, *state)[0], model(tokens, state)[0]
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_command_line(smoke_runs, tmp_path, capsys):
    assert run(["export", str(smoke_runs["forecast"]), "--out", str(tmp_path / "f")]) == 0
    printed = capsys.readouterr().out
    assert "max abs error" in printed and "wrote" in printed
    assert (tmp_path / "f" / "export.json").is_file()
    assert run(["export", str(tmp_path / "missing")]) == 2
    assert run(["export", str(smoke_runs["forecast"]), "--format", "tflite"]) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 2 and "onnx or pt2" in err
