"""Decoding CTC outputs: greedy (best path) and prefix beam search with a character n-gram LM.

Prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech recognition
using bi-directional recurrent DNNs") keeps, for each candidate labelling, the probability of
the paths that end in a blank and of those that end in its last character, so that all the
paths that collapse to one labelling are added up. With a language model the score of a prefix
is ``log P_ctc + lm_weight * log P_lm + length_bonus * characters``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable

import numpy as np
import torch

from rnnkit.errors import UserError

BLANK = 0
NEG_INF = -math.inf


def greedy_decode(log_probs: torch.Tensor, blank: int = BLANK) -> list[int]:
    """The best path of ``log_probs (T, V)`` with repeats merged and blanks removed."""
    best = log_probs.argmax(-1).tolist()
    out, prev = [], blank
    for k in best:
        if k != prev and k != blank:
            out.append(k)
        prev = k
    return out


def _logsumexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


class CharNgramLM:
    """A character n-gram model with interpolated Witten-Bell smoothing; ids are the
    recogniser's label ids (1..V-1), histories start with ``order - 1`` start symbols (0)."""

    def __init__(self, order: int, vocab_size: int, counts: dict[tuple[int, ...], Counter]):
        self.order, self.vocab_size, self.counts = order, vocab_size, counts
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    @classmethod
    def train(cls, sequences: Iterable[list[int]], vocab_size: int, order: int = 3
              ) -> CharNgramLM:
        if order < 1:
            raise UserError(f"the language model order must be at least 1, found {order}.")
        counts: dict[tuple[int, ...], Counter] = defaultdict(Counter)
        for seq in sequences:
            padded = [BLANK] * (order - 1) + list(seq)
            for i in range(order - 1, len(padded)):
                for n in range(order):  # every history length 0..order-1
                    counts[tuple(padded[i - n:i])][padded[i]] += 1
        return cls(order, vocab_size, dict(counts))

    def probs(self, history: tuple[int, ...]) -> np.ndarray:
        """``P(next | history)`` over all ids (0 for the blank), using the last order-1 ids."""
        history = tuple(([BLANK] * (self.order - 1) + list(history))[-(self.order - 1):]) \
            if self.order > 1 else ()
        if history in self._cache:
            return self._cache[history]
        p = np.full(self.vocab_size, 1.0 / (self.vocab_size - 1))
        p[BLANK] = 0.0
        for n in range(len(history) + 1):  # from the empty history up to the longest
            h = history[len(history) - n:]
            c = self.counts.get(h)
            if not c:
                continue
            total, types = sum(c.values()), len(c)
            ml = np.zeros(self.vocab_size)
            for k, v in c.items():
                ml[k] = v
            lam = total / (total + types)
            p = lam * ml / total + (1 - lam) * p
        self._cache[history] = p
        return p

    def log_prob(self, history: tuple[int, ...], k: int) -> float:
        return float(np.log(max(self.probs(history)[k], 1e-12)))

    def to_dict(self) -> dict:
        return {"order": self.order, "vocab_size": self.vocab_size,
                "counts": [[list(h), {str(k): v for k, v in c.items()}]
                           for h, c in self.counts.items()]}

    @classmethod
    def from_dict(cls, d: dict) -> CharNgramLM:
        counts = {tuple(h): Counter({int(k): v for k, v in c.items()}) for h, c in d["counts"]}
        return cls(int(d["order"]), int(d["vocab_size"]), counts)


def prefix_beam_search(log_probs: torch.Tensor, beam: int = 8, lm: CharNgramLM | None = None,
                       lm_weight: float = 0.5, length_bonus: float = 0.0,
                       blank: int = BLANK, prune: float = -12.0) -> list[int]:
    """The best labelling of ``log_probs (T, V)`` found with a beam of ``beam`` prefixes.

    Characters whose frame log-probability is below ``prune`` are not tried (they cannot win
    but cost time). Ties keep the earlier candidate; the result is the prefix of highest score.
    """
    if beam < 1:
        raise UserError(f"the beam width must be at least 1, found {beam}.")
    lp = log_probs.detach().float().cpu().numpy().astype(np.float64)
    # prefix -> (log P(paths ending in blank), log P(paths ending in the last character))
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    lm_score: dict[tuple[int, ...], float] = {(): 0.0}

    def score(prefix: tuple[int, ...], pb: float, pnb: float) -> float:
        return _logsumexp(pb, pnb) + lm_score[prefix] + length_bonus * len(prefix)

    for frame in lp:
        candidates = [k for k in range(len(frame)) if k != blank and frame[k] >= prune]
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logsumexp(pb, pnb)
            stay = nxt[prefix]  # the blank, or the last character again (merged)
            stay[0] = _logsumexp(stay[0], total + frame[blank])
            if prefix:
                stay[1] = _logsumexp(stay[1], pnb + frame[prefix[-1]])
            for k in candidates:
                new = prefix + (k,)
                if new not in lm_score:
                    lm_score[new] = lm_score[prefix] + (
                        lm_weight * lm.log_prob(prefix, k) if lm is not None else 0.0)
                # a repeated character is a new one only after a blank
                via = pb if prefix and k == prefix[-1] else total
                ext = nxt[new]
                ext[1] = _logsumexp(ext[1], via + frame[k])
        ranked = sorted(nxt.items(), key=lambda kv: score(kv[0], *kv[1]), reverse=True)
        beams = {p: (v[0], v[1]) for p, v in ranked[:beam]}
    best = max(beams.items(), key=lambda kv: score(kv[0], *kv[1]))
    return list(best[0])


def ctc_log_likelihood(log_probs: torch.Tensor, labels: list[int], blank: int = BLANK) -> float:
    """``log P(labels | log_probs (T, V))``: every CTC path that collapses to ``labels``."""
    if not labels:
        return float(log_probs[:, blank].sum())
    nll = torch.nn.functional.ctc_loss(
        log_probs.float()[:, None], torch.tensor([labels]), torch.tensor([len(log_probs)]),
        torch.tensor([len(labels)]), blank=blank, reduction="sum")
    return -float(nll)  # inf (a labelling too long for the frames): -inf


def rescore(member_log_probs: torch.Tensor, candidates: Iterable[list[int]],
            lm: CharNgramLM | None = None, lm_weight: float = 0.0) -> list[int]:
    """The candidate labelling that the members of an ensemble (``(M, T, V)``, one row per
    member) find most probable together: the highest mean CTC log-likelihood, plus
    ``lm_weight`` times its LM log-probability; ties keep the earlier candidate."""
    def score(labels: list[int]) -> float:
        acoustic = sum(ctc_log_likelihood(lp, labels) for lp in member_log_probs)
        lm_part = 0.0
        if lm is not None and lm_weight:
            lm_part = lm_weight * sum(lm.log_prob(tuple(labels[:i]), k)
                                      for i, k in enumerate(labels))
        return acoustic / len(member_log_probs) + lm_part

    unique = list(dict.fromkeys(tuple(c) for c in candidates))
    return list(max(unique, key=lambda c: score(list(c))))
