"""The graphs each task exports: tensor-only functions of a loaded model, with named inputs and
outputs, dynamic dimensions, random example inputs, and a reference (the same function on the
original rnnkit model) that the exported graph must match.

A graph's function is written once and run on two models: the export twin (``layers.twin``),
which is what gets traced, and the model the run trained, which is the reference.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.export.layers import twin
from rnnkit.models.classifier import members
from rnnkit.models.seq2seq import Memory
from rnnkit.nn.subword_embedding import SubwordEmbedding


@dataclass
class Graph:
    """One exported graph. ``dims``: input name -> {axis: dimension name}; ``example(batch,
    length, generator)`` -> inputs; ``cases``: (batch, length) pairs of the parity check."""

    name: str
    fn: Callable[..., tuple[Tensor, ...]]
    inputs: list[str]
    outputs: list[str]
    dims: dict[str, dict[int, str]]
    example: Callable[[int, int, torch.Generator], tuple[Tensor, ...]]
    cases: list[tuple[int, int]] = field(default_factory=lambda: [(1, 1), (2, 7), (3, 24)])
    mins: dict[str, int] = field(default_factory=dict)  # smallest sizes a dimension may take


class Traced(nn.Module):
    """``fn(model, *inputs)`` as a module, for the exporters."""

    def __init__(self, fn, model: nn.Module):
        super().__init__()
        self.fn, self.model = fn, model

    def forward(self, *inputs):
        return self.fn(self.model, *inputs)


def _state(parts):
    return tuple(parts) if len(parts) == 2 else parts[0]


def _flat(state) -> tuple[Tensor, ...]:
    return tuple(state) if isinstance(state, tuple | list) else (state,)


def _names(lstm: bool) -> list[str]:
    return ["h", "c"] if lstm else ["h"]


def _randn(g, *shape):
    return torch.randn(*shape, generator=g) * 0.5


def _lengths(g, batch: int, length: int) -> Tensor:
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length  # padded batches are as long as their longest sequence
    return lengths


def _is_lstm(rnn: nn.Module) -> bool:
    return type(rnn).__name__ == "LSTM"


def textgen(p) -> tuple[list[Graph], dict[str, Any]]:
    cfg = p.model.cfg
    names = _names(_is_lstm(p.model.rnn))
    shapes = {n: [cfg.layers, cfg.hidden] for n in names}

    def full(m, tokens, *state):
        logits, s = m(tokens, _state(state))
        return (logits, *_flat(s))

    def step(m, token, *state):
        logits, s = m.step(token, _state(state))
        return (logits, *_flat(s))

    def states(g, batch):
        return tuple(_randn(g, cfg.layers, batch, cfg.hidden) for _ in names)

    dims = {n: {1: "batch"} for n in names}
    outs = [f"{n}_out" for n in names]
    graphs = [
        Graph("full", full, ["tokens", *names], ["logits", *outs],
              {"tokens": {0: "batch", 1: "time"}, **dims},
              lambda b, t, g: (torch.randint(0, cfg.vocab_size, (b, t), generator=g),
                               *states(g, b))),
        Graph("step", step, ["token", *names], ["logits", *outs], {"token": {0: "batch"}, **dims},
              lambda b, t, g: (torch.randint(0, cfg.vocab_size, (b,), generator=g),
                               *states(g, b)), [(1, 1), (4, 1)]),
    ]
    return graphs, {"vocab_size": cfg.vocab_size, "state": shapes}


def sentiment(p) -> tuple[list[Graph], dict[str, Any]]:
    model, cfg = p.model, p.model.cfg
    emb = members(model)[0].embedding
    subword = isinstance(emb, SubwordEmbedding)
    attention = cfg.pooling == "attention"
    rows = emb.indexed if subword else cfg.vocab_size

    def classify(m, tokens, lengths, ngrams=None):
        # the twin's embedding reads each token's buckets beside it; the original knows them
        twinned = ngrams is not None and not isinstance(members(m)[0].embedding, SubwordEmbedding)
        ids = torch.cat([tokens.unsqueeze(-1), ngrams], -1) if twinned else tokens
        encoded = [(c, *c.encode(ids, lengths)) for c in members(m)]
        logp = torch.stack([F.log_softmax(c.output(v).float(), -1) for c, v, _ in encoded])
        probs = torch.exp(torch.logsumexp(logp, 0) - math.log(len(encoded)))
        if not attention:
            return (probs,)
        return probs, torch.stack([w for *_, w in encoded]).mean(0)

    def example(b, t, g):
        tokens = torch.randint(2 if subword else 0, rows, (b, t), generator=g)
        lengths = _lengths(g, b, t)
        pad = cfg.pad_id if cfg.pad_id is not None else 0
        tokens = tokens.masked_fill(torch.arange(t)[None] >= lengths[:, None], pad)
        if not subword:
            return tokens, lengths
        return tokens, lengths, ngram_table(emb)[tokens]

    inputs = ["tokens", "lengths"] + (["ngrams"] if subword else [])
    dims = {"tokens": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
            "ngrams": {0: "batch", 1: "time", 2: "grams"}}
    graph = Graph("full", classify, inputs, ["probabilities"] + (["attention"] * attention),
                  {k: v for k, v in dims.items() if k in inputs}, example)
    facts = {"labels": list(p.labels), "max_len": p.max_len, "pad_id": cfg.pad_id,
             "attention": attention, "subword_buckets": emb.buckets if subword else 0,
             "num_words": cfg.vocab_size}
    return [graph], facts


def ngram_table(emb: SubwordEmbedding) -> Tensor:
    """(indexed ids, most buckets) the buckets of each id the embedding knows, padded with -1."""
    width = max(2, int(emb.count.max()) if len(emb.count) else 0)
    table = torch.full((emb.indexed, width), -1, dtype=torch.long)
    for i, (s, n) in enumerate(zip(emb.start.tolist(), emb.count.tolist(), strict=True)):
        table[i, :n] = emb.flat[s:s + n]
    return table


def translate(p) -> tuple[list[Graph], dict[str, Any]]:
    cfg = p.model.cfg
    names = _names(cfg.arch == "lstm")
    h = cfg.hidden

    def encoder(m, src, lengths):
        memory, (rnn_state, feed) = m.encode(src, lengths)
        return (memory.outputs, memory.keys, *_flat(rnn_state), feed)

    def decoder(m, y_prev, outputs, keys, lengths, *state):
        mask = torch.arange(outputs.shape[1], device=outputs.device)[None] < lengths[:, None]
        logits, (rnn_state, feed), weights = m.decoder.step(
            y_prev, (_state(state[:-1]), state[-1]), Memory(outputs, keys, mask))
        return (logits, weights, *_flat(rnn_state), feed)

    def enc_example(b, t, g):
        return torch.randint(4, cfg.src_vocab, (b, t), generator=g), _lengths(g, b, t)

    def dec_example(b, t, g):
        return (torch.randint(4, cfg.tgt_vocab, (b,), generator=g), _randn(g, b, t, 2 * h),
                _randn(g, b, t, h), _lengths(g, b, t),
                *(_randn(g, cfg.dec_layers, b, h) for _ in names), _randn(g, b, h))

    state_dims = {n: {1: "batch"} for n in names}
    graphs = [
        Graph("encoder", encoder, ["src", "lengths"], ["memory", "keys", *names, "feed"],
              {"src": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}, enc_example),
        Graph("decoder_step", decoder, ["token", "memory", "keys", "lengths", *names, "feed"],
              ["logits", "attention", *(f"{n}_out" for n in names), "feed_out"],
              {"token": {0: "batch"}, "memory": {0: "batch", 1: "time"},
               "keys": {0: "batch", 1: "time"}, "lengths": {0: "batch"}, **state_dims,
               "feed": {0: "batch"}}, dec_example),
    ]
    return graphs, {"bos_id": cfg.bos_id, "eos_id": cfg.eos_id, "pad_id": cfg.pad_id,
                    "state": names}


def speech(p) -> tuple[list[Graph], dict[str, Any]]:
    model, cfg = p.model, p.model.cfg
    if cfg.ensemble > 1:  # its decoding rescores the members' transcripts, outside any graph
        raise UserError(f"export takes a single speech model; this run is an ensemble of "
                        f"{cfg.ensemble} (export one of its members/member-K folders).")
    names = _names(_is_lstm(model.rnn))
    widths = [cfg.input_size] + [cfg.conv_channels] * (len(model.convs) - 1)
    tails = [f"tail{i}" for i in range(len(model.convs))]

    def full(m, feats, lengths):
        log_probs, out_lengths, _ = m(feats, lengths)
        return log_probs, out_lengths

    def step(m, frames, *rest):
        x, new_tails = frames, []
        for conv, tail in zip(m.convs, rest[:len(tails)], strict=True):
            x, tail = conv.stream(x, tail)
            new_tails.append(tail)
        y, s = m.rnn.step(x[:, 0], _state(rest[len(tails):]))
        return (F.log_softmax(m.out(y).float(), -1), *new_tails, *_flat(s))

    graphs = [Graph("full", full, ["features", "lengths"], ["log_probs", "out_lengths"],
                    {"features": {0: "batch", 1: "time"}, "lengths": {0: "batch"}},
                    lambda b, t, g: (torch.randn(b, t, cfg.input_size, generator=g),
                                     _lengths(g, b, t)),
                    [(1, max(4, cfg.subsample + 1)), (2, max(9, 2 * cfg.subsample + 1)), (3, 40)],
                    # torch.export traces a loop over at least two recurrent steps
                    {"time": cfg.subsample + 1})]
    facts = {"subsample": cfg.subsample, "bidirectional": cfg.bidirectional,
             "vocab_size": cfg.vocab_size}
    if not cfg.bidirectional:
        k = cfg.conv_kernel - 1
        graphs.append(Graph(
            "step", step, ["frames", *tails, *names],
            ["log_probs", *(f"{n}_out" for n in tails + names)],
            {n: {0: "batch"} for n in ["frames", *tails]} | {n: {1: "batch"} for n in names},
            lambda b, t, g: (torch.randn(b, cfg.subsample, cfg.input_size, generator=g),
                             *(torch.randn(b, k, w, generator=g) for w in widths[:len(tails)]),
                             *(_randn(g, cfg.layers, b, cfg.hidden) for _ in names)),
            [(1, 1), (3, 1)]))
        facts["state"] = {**{t: [k, w] for t, w in zip(tails, widths, strict=False)},
                          **{n: [cfg.layers, cfg.hidden] for n in names}}
    return graphs, facts


def forecast(p) -> tuple[list[Graph], dict[str, Any]]:
    cfg = p.model.cfg
    inputs = ["x"] + ["cov_past"] * bool(cfg.n_past) + ["cov_future"] * bool(cfg.n_known)

    def run(m, x, *covs):
        given = dict(zip(inputs[1:], covs, strict=True))
        return (m(x, given.get("cov_past"), given.get("cov_future")),)

    def example(b, t, g):
        sizes = {"x": (cfg.lookback, cfg.n_targets), "cov_past": (cfg.lookback, cfg.n_past),
                 "cov_future": (cfg.horizon, cfg.n_known)}
        return tuple(torch.randn(b, *sizes[n], generator=g) for n in inputs)

    graph = Graph("full", run, inputs, ["out"], {n: {0: "batch"} for n in inputs}, example,
                  [(1, cfg.lookback), (3, cfg.lookback), (16, cfg.lookback)])
    return [graph], {"head": cfg.head, "levels": list(cfg.levels),
                     "quantiles": cfg.quantiles(), "inputs": inputs}


TASKS = {"textgen": textgen, "sentiment": sentiment, "translate": translate, "speech": speech,
         "forecast": forecast}


def graphs_of(predictor, loop: bool) -> tuple[list[Graph], dict[str, Any], nn.Module]:
    """The task's graphs, its facts for export.json, and the twin they trace."""
    if predictor.task not in TASKS:
        raise UserError(f"export knows the tasks {', '.join(TASKS)}, not {predictor.task!r}.")
    graphs, facts = TASKS[predictor.task](predictor)
    return graphs, facts, twin(predictor.module, loop)
