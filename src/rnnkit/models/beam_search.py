"""Greedy and beam-search decoding for ``Seq2Seq``, batched, one decoder step per token.

A hypothesis ends at the end token or at its sentence's length limit,
``ceil(max_len_ratio * source length) + max_len_extra`` tokens. Beam search keeps ``beam`` live
hypotheses per sentence; from the ``2 * beam`` best extensions, those ending in the end token
that rank among the best ``beam`` are set aside as finished, the best ``beam`` others continue. A
sentence is done when it has ``beam`` finished hypotheses (or reaches its limit, when the live
ones count as finished). The winner maximises the length-normalised score
``log p / ((5 + length) / 6) ** length_penalty`` (Wu et al. 2016); ``length_penalty = 0`` ranks by
plain log-probability.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from rnnkit.models.seq2seq import Seq2Seq, reorder_state


@dataclass
class Hypothesis:
    tokens: list[int]  # without the start and end tokens
    score: float  # log-probability, the end token's included when it ended
    ended: bool  # False when cut at the length limit

    def normalised(self, length_penalty: float) -> float:
        n = len(self.tokens) + int(self.ended)
        return self.score / (((5 + n) / 6) ** length_penalty)


def length_limits(lengths: Tensor, max_len_ratio: float, max_len_extra: int) -> list[int]:
    return [math.ceil(max_len_ratio * int(n)) + max_len_extra for n in lengths.tolist()]


@torch.no_grad()
def greedy(model: Seq2Seq, src: Tensor, lengths: Tensor, max_len_ratio: float = 2.0,
           max_len_extra: int = 10) -> list[Hypothesis]:
    """The likeliest token at each step, for each sentence of the padded batch ``src``."""
    cfg = model.cfg
    memory, state = model.encode(src, lengths)
    limits = length_limits(lengths, max_len_ratio, max_len_extra)
    b = src.shape[0]
    y = torch.full((b,), cfg.bos_id, dtype=torch.long, device=src.device)
    hyps = [Hypothesis([], 0.0, False) for _ in range(b)]
    live = set(range(b))
    for t in range(max(limits)):
        logits, state, _ = model.decoder.step(y, state, memory)
        logp, y = F.log_softmax(logits.float(), -1).max(-1)
        for i, (tok, lp) in enumerate(zip(y.tolist(), logp.tolist(), strict=True)):
            if i not in live:
                continue
            hyps[i].score += lp
            if tok == cfg.eos_id:
                hyps[i].ended = True
            else:
                hyps[i].tokens.append(tok)
            if hyps[i].ended or t + 1 >= limits[i]:
                live.discard(i)
        if not live:
            break
    return hyps


@torch.no_grad()
def beam_search(model: Seq2Seq, src: Tensor, lengths: Tensor, beam: int = 5,
                length_penalty: float = 0.6, max_len_ratio: float = 2.0, max_len_extra: int = 10
                ) -> list[Hypothesis]:
    """The best hypothesis of a beam search for each sentence of the padded batch ``src``."""
    if beam < 1:
        raise ValueError(f"expected a beam size of at least 1, found {beam}")
    cfg = model.cfg
    b, k, dev = src.shape[0], beam, src.device
    memory, state = model.encode(src, lengths)
    flat = torch.arange(b, device=dev).repeat_interleave(k)
    memory, state = memory.index_select(flat), reorder_state(state, flat)
    limits = length_limits(lengths, max_len_ratio, max_len_extra)
    scores = torch.full((b, k), float("-inf"), device=dev)
    scores[:, 0] = 0.0  # all beams start equal: keep one, or every hypothesis comes k times
    history = torch.zeros(b, k, 0, dtype=torch.long, device=dev)
    y = torch.full((b * k,), cfg.bos_id, dtype=torch.long, device=dev)
    finished: list[list[Hypothesis]] = [[] for _ in range(b)]
    done = [False] * b
    for t in range(max(limits)):
        logits, state, _ = model.decoder.step(y, state, memory)
        logp = F.log_softmax(logits.float(), -1)
        v = logp.shape[1]
        cand = (scores[:, :, None] + logp.view(b, k, v)).view(b, k * v)
        top, pos = cand.topk(min(2 * k, k * v), dim=1)
        src_beam, tok = pos // v, pos % v
        is_eos = tok == cfg.eos_id
        # finished: end tokens among the best k extensions
        for i, j in (is_eos[:, :k] & torch.isfinite(top[:, :k])).nonzero().tolist():
            if not done[i]:
                tokens = history[i, src_beam[i, j]].tolist()
                finished[i].append(Hypothesis(tokens, float(top[i, j]), True))
        keep = top.masked_fill(is_eos, float("-inf")).topk(k, dim=1).indices
        scores = top.gather(1, keep).masked_fill(is_eos.gather(1, keep), float("-inf"))
        parent, tok = src_beam.gather(1, keep), tok.gather(1, keep)
        history = torch.cat([history.gather(1, parent[:, :, None].expand_as(history)),
                             tok[:, :, None]], dim=2)
        for i in range(b):
            if done[i]:
                continue
            if t + 1 >= limits[i]:  # out of length: the live hypotheses count as finished
                for j in range(k):
                    if math.isfinite(float(scores[i, j])):
                        finished[i].append(Hypothesis(history[i, j].tolist(),
                                                      float(scores[i, j]), False))
            done[i] = len(finished[i]) >= k or t + 1 >= limits[i]
        if all(done):
            break
        index = (torch.arange(b, device=dev)[:, None] * k + parent).view(-1)
        state = reorder_state(state, index)
        y = tok.reshape(-1)
    return [max(f, key=lambda h: h.normalised(length_penalty)) for f in finished]
