"""Predictors that run an ONNX export (``rnnkit export RUN_DIR --format onnx``) with onnxruntime
and numpy alone: nothing on this module's import path imports torch.

``load_onnx(export_dir)`` gives, by the export's task, a predictor with the PyTorch predictor's
``task``, ``config`` and ``predict(...)`` outputs: ``OnnxTextGenerator`` (which is also the
server's Stepper), ``OnnxSentimentClassifier`` and ``OnnxForecaster``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np

from rnnkit.errors import UserError, require
from rnnkit.export.sampling import sample_next
from rnnkit.models.sampling_checks import check_sampling

EXPORT_FILE = "export.json"
BATCH = 256  # texts per classification run, as the PyTorch predictor


class Graphs:
    """The export's onnxruntime sessions by graph name: ``run(name, *inputs) -> outputs``."""

    def __init__(self, directory: Path, meta: dict[str, Any], threads: int | None):
        ort = require("onnxruntime", "export", "running an ONNX export")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        options.log_severity_level = 3
        self.meta = meta
        self.sessions = {
            name: ort.InferenceSession(str(directory / g["file"]), options,
                                       providers=["CPUExecutionProvider"])
            for name, g in meta["graphs"].items()}

    def run(self, name: str, *inputs: np.ndarray) -> list[np.ndarray]:
        names = self.meta["graphs"][name]["inputs"]
        return self.sessions[name].run(None, dict(zip(names, inputs, strict=True)))


class OnnxTextGenerator:
    """A language model export: ``generate`` / ``predict`` as ``TextGenerator``, and the
    Stepper interface (``prefill``, ``step``) for batched serving. A state is a tuple of arrays
    (layers, 1, hidden), never changed in place."""

    task = "textgen"

    def __init__(self, graphs: Graphs):
        from rnnkit.data.tokenizers import tokenizer_from_dict

        self.graphs, self.config = graphs, graphs.meta["config"]
        self.tokenizer = tokenizer_from_dict(self.config["tokenizer"])
        self.vocab_size = int(graphs.meta["model"]["vocab_size"])
        self._shapes = list(graphs.meta["model"]["state"].values())
        self.metrics: dict[str, Any] = {}

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, what="the prompt")

    def stream_decoder(self):
        return self.tokenizer.stream_decoder()

    def zero_state(self, batch: int = 1) -> tuple[np.ndarray, ...]:
        return tuple(np.zeros((layers, batch, hidden), np.float32)
                     for layers, hidden in self._shapes)

    def prefill(self, ids: list[int], state=None) -> tuple[np.ndarray, tuple]:
        if not ids:
            raise UserError("there is nothing to read: the prompt has no tokens")
        tokens = np.asarray([ids], dtype=np.int64)
        logits, *new = self.graphs.run("full", tokens, *(state or self.zero_state(1)))
        return logits[0, -1], tuple(new)

    def step(self, tokens: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        parts = [np.concatenate([s[i] for s in states], axis=1) for i in range(len(self._shapes))]
        logits, *new = self.graphs.run("step", np.asarray(tokens, dtype=np.int64), *parts)
        return logits, [tuple(n[:, j:j + 1].copy() for n in new) for j in range(len(states))]

    def state_nbytes(self, state) -> int:
        return sum(a.nbytes for a in state)

    def generate(self, prompt: str, length: int = 200, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, samples: int = 1,
                 seed: int | None = None, include_prompt: bool = False,
                 on_text: Callable[[int, str], None] | None = None) -> str | list[str]:
        """As ``TextGenerator.generate``; sampling draws from numpy's generator, so only greedy
        decoding (temperature 0) gives the PyTorch predictor's exact text."""
        check_sampling(length, temperature, top_k, top_p, samples)
        if not prompt:
            raise UserError("the prompt is empty; give at least one character to start from")
        ids = self.encode(prompt)
        if not ids:  # an old vocabulary without an unknown symbol skipped every character
            raise UserError(f"the prompt has none of the {self.tokenizer.vocab_size} characters "
                            "of the model's vocabulary")
        rng = np.random.default_rng(seed)
        streams = [self.tokenizer.stream_decoder() for _ in range(samples)]
        pieces: list[list[str]] = [[] for _ in range(samples)]

        def emit(i: int, piece: str) -> None:
            if piece:
                pieces[i].append(piece)
                if on_text is not None:
                    on_text(i, piece)

        tokens = np.repeat(np.asarray([ids], dtype=np.int64), samples, axis=0)
        logits, *state = self.graphs.run("full", tokens, *self.zero_state(samples))
        logits = logits[:, -1]
        for n in range(length):
            token = sample_next(logits, temperature, top_k, top_p, rng).astype(np.int64)
            for i, t in enumerate(token.tolist()):
                emit(i, streams[i].feed(t))
            if n + 1 < length:
                logits, *state = self.graphs.run("step", token, *state)
        for i, stream in enumerate(streams):
            emit(i, stream.flush())
        texts = [(prompt if include_prompt else "") + "".join(p) for p in pieces]
        return texts[0] if samples == 1 else texts

    def predict(self, prompts: str | Sequence[str], length: int = 200, **sampling: Any
                ) -> str | list[str]:
        if isinstance(prompts, str):
            return self.generate(prompts, length, **sampling)
        for i, prompt in enumerate(prompts):
            if not isinstance(prompt, str):
                raise UserError(f"predict takes a prompt (str) or a list of prompts, found "
                                f"{type(prompt).__name__}")
            self.tokenizer.encode(prompt, what=f"prompt {i + 1}")
        return [self.generate(p, length, **sampling) for p in prompts]


class OnnxSentimentClassifier:
    """A classifier export: ``predict``, ``predict_proba`` and ``explain`` as
    ``SentimentClassifier``."""

    task = "sentiment"

    def __init__(self, graphs: Graphs):
        from rnnkit.data.text_encoders import encoder_from_dict

        self.graphs, self.config = graphs, graphs.meta["config"]
        facts = graphs.meta["model"]
        self.labels = list(facts["labels"])
        self.max_len, self.attention = int(facts["max_len"]), bool(facts["attention"])
        self.buckets = int(facts["subword_buckets"])
        self.encoder = encoder_from_dict(self.config["tokenizer"])
        self.pad_id = self.encoder.pad_id if self.encoder.pad_id is not None else 0
        self._grams: dict[int, list[int]] = {}
        self.metrics: dict[str, Any] = {}

    def _ids(self, texts: Sequence[str], source: str) -> list[list[int]]:
        from rnnkit.data.vocab import Vocab

        out, cut = [], 0
        for text in texts:
            ids = self.encoder.encode(text) or [Vocab.unk_id]
            if len(ids) > self.max_len:
                ids, cut = ids[:self.max_len], cut + 1
            out.append(ids)
        if cut:
            print(f"warning: {cut} of {len(texts)} texts in {source} are longer than max_len "
                  f"{self.max_len} tokens and were truncated.", file=sys.stderr)
        return out

    def _ngrams(self, batch: list[list[int]], width: int) -> np.ndarray:
        """Each token's n-gram buckets (ids 0 and 1, padding and unknown, have none)."""
        from rnnkit.data.vocab import char_ngrams

        for i in {i for ids in batch for i in ids} - self._grams.keys():
            self._grams[i] = char_ngrams(self.encoder.vocab.tokens[i], self.buckets) \
                if i >= 2 else []
        most = max([1] + [len(self._grams[i]) for ids in batch for i in ids])
        table = np.full((len(batch), width, most), -1, dtype=np.int64)
        for b, ids in enumerate(batch):
            for t, i in enumerate(ids):
                table[b, t, :len(self._grams[i])] = self._grams[i]
        return table

    def _run(self, batch: list[list[int]]) -> list[np.ndarray]:
        width = max(len(ids) for ids in batch)
        tokens = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        for b, ids in enumerate(batch):
            tokens[b, :len(ids)] = ids
        inputs = [tokens, np.asarray([len(ids) for ids in batch], dtype=np.int64)]
        if self.buckets:
            inputs.append(self._ngrams(batch, width))
        return self.graphs.run("full", *inputs)

    def predict_proba(self, texts: Sequence[str] | str, source: str = "the input"
                      ) -> np.ndarray:
        """Class probabilities (len(texts), classes), columns in the order of ``labels``."""
        seqs = self._ids([texts] if isinstance(texts, str) else list(texts), source)
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = np.empty((len(seqs), len(self.labels)), np.float32)
        for start in range(0, len(order), BATCH):
            idx = order[start:start + BATCH]
            out[idx] = self._run([seqs[i] for i in idx])[0]
        return out

    def predict(self, texts: Sequence[str] | str, source: str = "the input"
                ) -> list[dict[str, Any]]:
        return [{"label": self.labels[int(np.argmax(row))],
                 "probabilities": dict(zip(self.labels, row.tolist(), strict=True))}
                for row in self.predict_proba(texts, source)]

    def explain(self, text: str) -> list[tuple[str, float]]:
        if not self.attention:
            raise UserError("--explain needs a model trained with attention pooling; this one "
                            "has none.")
        ids = self._ids([text], "the text")[0]
        weights = self._run([ids])[1][0]
        if hasattr(self.encoder, "vocab"):
            tokens = self.encoder.tokens(text)[:len(ids)]
        else:
            tokens = [self.encoder.tokenizer.decode([i]) for i in ids]
        if len(tokens) < len(ids):  # a text with no word was read as one unknown word
            tokens = ["<unk>"] * len(ids)
        return list(zip(tokens, weights.tolist(), strict=True))


class OnnxForecaster:
    """A forecaster export: ``predict(df, future=None)`` as ``TrainedForecaster.predict``."""

    task = "forecast"

    def __init__(self, graphs: Graphs):
        from rnnkit.data.series_inputs import SeriesSpec

        self.graphs, self.config = graphs, graphs.meta["config"]
        self.facts = graphs.meta["model"]
        self.spec = SeriesSpec(**self.config["data"])
        self.metrics: dict[str, Any] = {}

    def _point_and_bounds(self, out: np.ndarray):
        head, qs = self.facts["head"], self.facts["quantiles"]
        point = out[..., qs.index(0.5)] if head == "quantile" else out[..., 0]
        bounds = {}
        for level in self.facts["levels"] if head != "point" else []:
            if head == "gaussian":
                z = NormalDist().inv_cdf(0.5 + level / 2)
                bounds[level] = (out[..., 0] - z * out[..., 1], out[..., 0] + z * out[..., 1])
            else:  # quantile heads may cross; sorting uncrosses them
                ordered = np.sort(out, axis=-1)
                lo, hi = qs.index(round((1 - level) / 2, 6)), qs.index(round((1 + level) / 2, 6))
                bounds[level] = (ordered[..., lo], ordered[..., hi])
        return point, bounds

    def predict(self, df, future=None):
        """The ``horizon`` steps after the last row of ``df`` (a frame or a CSV / Parquet
        file), with interval columns for an interval head."""
        import pandas as pd

        from rnnkit.data import series as S
        from rnnkit.data.series_inputs import Arrays, future_covariates

        def frame_of(data):
            return data if isinstance(data, pd.DataFrame) else S.read_table(data)

        spec = self.spec
        series = self.spec.series_of(frame_of(df))
        if len(series.frame) < spec.lookback:
            raise UserError(f"the data has {len(series.frame)} rows, fewer than the lookback "
                            f"{spec.lookback} the model reads.")
        arrays = Arrays(series, spec)
        index = S.future_index(series.index, spec.freq, spec.horizon)
        ahead = future_covariates(index, None if future is None else frame_of(future), spec)
        known = np.concatenate([arrays.known, ahead])
        end = len(arrays)
        window = {"x": arrays.y[end - spec.lookback:end],
                  "cov_past": arrays.past[end - spec.lookback:end],
                  "cov_future": known[end:end + spec.horizon]}
        inputs = [np.ascontiguousarray(window[n][None], dtype=np.float32)
                  for n in self.facts["inputs"]]
        (out,) = self.graphs.run("full", *inputs)
        undo = spec.scaler("target").inverse
        point, bounds = self._point_and_bounds(out.astype(np.float64))
        frame = pd.DataFrame(index=index)
        for j, col in enumerate(spec.targets):
            frame[col] = undo(point)[0, :, j]
            for level, (lo, hi) in bounds.items():
                tag = f"{round(level * 100):d}"
                frame[f"{col}_lo{tag}"] = undo(lo)[0, :, j]
                frame[f"{col}_hi{tag}"] = undo(hi)[0, :, j]
        frame.index.name = spec.time_col or "step"
        return frame.reset_index()


PREDICTORS = {"textgen": OnnxTextGenerator, "sentiment": OnnxSentimentClassifier,
              "forecast": OnnxForecaster}


def read_meta(export_dir: str | Path) -> dict[str, Any]:
    """The export.json of ``export_dir``; a UserError when it is not an ONNX export."""
    file = Path(export_dir) / EXPORT_FILE
    if not file.is_file():
        raise UserError(f"{export_dir} is not an rnnkit export: {EXPORT_FILE} is missing "
                        f"(make one with rnnkit export RUN_DIR --format onnx).")
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
    except ValueError:
        raise UserError(f"{file} is truncated or corrupt (not valid JSON).") from None
    if meta.get("format") != "onnx":
        raise UserError(f"{export_dir} holds a {meta.get('format')!r} export, not an ONNX one.")
    return meta


def load_onnx(export_dir: str | Path, threads: int | None = None):
    """The onnxruntime predictor of an ONNX export directory (``threads``: onnxruntime's
    intra-op threads, default its own choice)."""
    meta = read_meta(export_dir)
    task = meta.get("task")
    if task not in PREDICTORS:
        raise UserError(f"the onnxruntime predictor runs {', '.join(PREDICTORS)} exports, not "
                        f"{task!r}; use the PyTorch predictor for it.")
    return PREDICTORS[task](Graphs(Path(export_dir), meta, threads))
