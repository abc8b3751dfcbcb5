"""Encoder-decoder with attention for translation (Bahdanau et al. 2015; Luong et al. 2015).

The encoder reads the padded source with a bidirectional recurrent layer (any rnnkit
architecture, lengths respected). The decoder is a unidirectional recurrent layer: at each step it
reads the previous target token (and, with input feeding, the previous attentional vector),
attends over the encoder outputs with its new hidden state, and predicts the next token from
``tanh(W [context; hidden])``. Attention is additive (``v^T tanh(W_k k + W_q q)``) or
multiplicative (``q^T W k``); padded source positions get zero weight.

``Decoder.step`` costs one recurrent step per token (the attention keys are computed once per
sentence), so greedy and beam search decode incrementally. The teacher-forced ``forward`` runs
the recurrence over the whole target in one call when it can (no input feeding, full teacher
forcing) and step by step otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import check_arch, recurrent_layer

ATTENTIONS = ("additive", "multiplicative")


@dataclass
class Seq2SeqConfig:
    """The network's shape; its defaults are the translation task's (rnnkit.tasks.translate
    refers to them rather than repeating them)."""

    src_vocab: int
    tgt_vocab: int
    arch: str = "gru"
    layers: int = 1  # encoder layers, each bidirectional
    dec_layers: int = 1
    hidden: int = 256  # per encoder direction, and the decoder's
    embed: int = 256
    attention: str = "multiplicative"
    input_feeding: bool = True  # feed the last attentional vector into the next step
    dropout: float = 0.3
    tie_embeddings: bool = True  # the output layer reuses the decoder's embedding matrix
    pad_id: int = 0
    bos_id: int = 2
    eos_id: int = 3

    def __post_init__(self):
        check_arch(self.arch)
        if self.attention not in ATTENTIONS:
            raise UserError(f"attention must be one of {', '.join(ATTENTIONS)}, found "
                            f"{self.attention!r}")
        for name in ("layers", "dec_layers", "hidden", "embed"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be a positive whole number, found "
                                f"{getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must be in [0, 1), found {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Seq2SeqConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise UserError(f"the saved model config has unknown keys: {', '.join(unknown)}")
        return cls(**d)


class Memory(NamedTuple):
    """What the decoder attends over: encoder outputs, their precomputed keys, valid positions."""

    outputs: Tensor  # (B, S, 2 * hidden)
    keys: Tensor  # (B, S, hidden)
    mask: Tensor  # (B, S) bool, True at real tokens

    def index_select(self, index: Tensor) -> Memory:
        return Memory(*(t.index_select(0, index) for t in self))


def _rnn(cfg: Seq2SeqConfig, input_size: int, layers: int, bidirectional: bool):
    return recurrent_layer(cfg.arch, input_size, cfg.hidden, layers, batch_first=True,
                           bidirectional=bidirectional,
                           dropout=cfg.dropout if layers > 1 else 0.0)


class Encoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embedding = nn.Embedding(cfg.src_vocab, cfg.embed, padding_idx=cfg.pad_id)
        self.rnn = _rnn(cfg, cfg.embed, cfg.layers, bidirectional=True)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, src: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        """``(outputs (B, S, 2H), final (B, 2H))``: the top layer's last forward and backward
        states, each taken at the sentence's own end."""
        out, state = self.rnn(self.drop(self.embedding(src)), lengths=lengths.cpu())
        h = state[0] if isinstance(state, tuple) else state
        return out, torch.cat([h[-2], h[-1]], dim=1)


class Attention(nn.Module):
    """Scores of queries against encoder outputs; padded positions get weight zero."""

    def __init__(self, kind: str, query_size: int, memory_size: int):
        super().__init__()
        self.kind = kind
        self.key = nn.Linear(memory_size, query_size, bias=False)
        if kind == "additive":
            self.query = nn.Linear(query_size, query_size)
            self.v = nn.Linear(query_size, 1, bias=False)

    def keys(self, outputs: Tensor) -> Tensor:
        """Computed once per sentence, reused at every decoder step."""
        return self.key(outputs)

    def forward(self, query: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        """``query (B, T, H)`` -> ``(context (B, T, 2H), weights (B, T, S))``."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(memory.keys[:, None] + self.query(query)[:, :, None]))
            scores = scores.squeeze(-1)
        else:
            scores = torch.bmm(query, memory.keys.transpose(1, 2))
        scores = scores.masked_fill(~memory.mask[:, None], float("-inf"))
        weights = torch.softmax(scores, dim=-1)
        return torch.bmm(weights, memory.outputs), weights


class Decoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        h = cfg.hidden
        self.embedding = nn.Embedding(cfg.tgt_vocab, cfg.embed, padding_idx=cfg.pad_id)
        self.rnn = _rnn(cfg, cfg.embed + (h if cfg.input_feeding else 0), cfg.dec_layers,
                        bidirectional=False)
        self.attention = Attention(cfg.attention, h, 2 * h)
        self.combine = nn.Linear(3 * h, h)
        self.bridge = nn.Linear(2 * h, cfg.dec_layers * h)
        self.drop = nn.Dropout(cfg.dropout)
        width = h
        self.to_embed = None
        if cfg.tie_embeddings and cfg.embed != h:
            self.to_embed = nn.Linear(h, cfg.embed, bias=False)
            width = cfg.embed
        self.out = nn.Linear(width, cfg.tgt_vocab)
        if cfg.tie_embeddings:
            self.out.weight = self.embedding.weight

    def init_state(self, final: Tensor) -> tuple[Any, Tensor]:
        """``(recurrent state, attentional feed)`` from the encoder's final states."""
        b = final.shape[0]
        h0 = torch.tanh(self.bridge(final)).view(b, self.cfg.dec_layers, -1)
        h0 = h0.transpose(0, 1).contiguous()
        rnn_state = (h0, torch.zeros_like(h0)) if self.cfg.arch == "lstm" else h0
        return rnn_state, final.new_zeros(b, self.cfg.hidden)

    def logits(self, attentional: Tensor) -> Tensor:
        x = self.drop(attentional)
        return self.out(self.to_embed(x) if self.to_embed is not None else x)

    def _attend(self, h: Tensor, memory: Memory) -> tuple[Tensor, Tensor]:
        context, weights = self.attention(h, memory)
        return torch.tanh(self.combine(torch.cat([context, h], dim=-1))), weights

    def step(self, y_prev: Tensor, state: tuple[Any, Tensor], memory: Memory
             ) -> tuple[Tensor, tuple[Any, Tensor], Tensor]:
        """One target token ``y_prev (B,)`` -> ``(logits (B, V), state, weights (B, S))``."""
        rnn_state, feed = state
        x = self.drop(self.embedding(y_prev))
        if self.cfg.input_feeding:
            x = torch.cat([x, feed], dim=1)
        h, rnn_state = self.rnn.step(x, rnn_state)
        attentional, weights = self._attend(h[:, None], memory)
        attentional = attentional[:, 0]
        return self.logits(attentional), (rnn_state, attentional), weights[:, 0]

    def forward(self, tgt_in: Tensor, state: tuple[Any, Tensor], memory: Memory,
                teacher_forcing: float = 1.0, stepwise: bool = False) -> tuple[Tensor, Tensor]:
        """Logits ``(B, T, V)`` and attention ``(B, T, S)`` for the target inputs ``tgt_in``.

        With ``teacher_forcing < 1`` each sentence, at each step after the first, reads its own
        last prediction instead of the reference token with probability ``1 - teacher_forcing``
        (scheduled sampling, Bengio et al. 2015). ``stepwise`` runs the step loop even where the
        whole-sequence path applies: the reference that path is tested against."""
        if not self.cfg.input_feeding and teacher_forcing >= 1.0 and not stepwise:
            h, _ = self.rnn(self.drop(self.embedding(tgt_in)), state[0])
            attentional, weights = self._attend(h, memory)
            return self.logits(attentional), weights
        logits, weights = [], []
        y = tgt_in[:, 0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                y = tgt_in[:, t]
                if teacher_forcing < 1.0:
                    own = torch.rand(y.shape, device=y.device) >= teacher_forcing
                    y = torch.where(own, logits[-1].argmax(-1), y)
            out, state, w = self.step(y, state, memory)
            logits.append(out)
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)


def reorder_state(state: tuple[Any, Tensor], index: Tensor) -> tuple[Any, Tensor]:
    """The decoder state of the sentences (or hypotheses) ``index``, in that order."""
    rnn_state, feed = state
    if isinstance(rnn_state, tuple):
        rnn_state = tuple(s.index_select(1, index) for s in rnn_state)
    else:
        rnn_state = rnn_state.index_select(1, index)
    return rnn_state, feed.index_select(0, index)


class Seq2Seq(nn.Module):
    """``forward(src, src_lengths, tgt_in) -> (logits (B, T, V), attention (B, T, S))``."""

    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)

    def encode(self, src: Tensor, lengths: Tensor) -> tuple[Memory, tuple[Any, Tensor]]:
        """The attention memory and the decoder's initial state."""
        outputs, final = self.encoder(src, lengths)
        mask = torch.arange(src.shape[1], device=src.device)[None] < lengths.to(src.device)[:, None]
        memory = Memory(outputs, self.decoder.attention.keys(outputs), mask)
        return memory, self.decoder.init_state(final)

    def forward(self, src: Tensor, lengths: Tensor, tgt_in: Tensor,
                teacher_forcing: float = 1.0) -> tuple[Tensor, Tensor]:
        memory, state = self.encode(src, lengths)
        return self.decoder(tgt_in, state, memory, teacher_forcing)

    @torch.no_grad()
    def sequence_logprob(self, src: Tensor, lengths: Tensor, tgt_out: Tensor) -> Tensor:
        """Log-probability ``(B,)`` of each target ``tgt_out`` (padded with pad_id, without the
        start token): the score beam search ranks hypotheses by."""
        bos = torch.full_like(tgt_out[:, :1], self.cfg.bos_id)
        logits, _ = self(src, lengths, torch.cat([bos, tgt_out[:, :-1]], 1))
        logp = F.log_softmax(logits.float(), -1).gather(2, tgt_out[:, :, None]).squeeze(2)
        return logp.masked_fill(tgt_out == self.cfg.pad_id, 0.0).sum(1)
