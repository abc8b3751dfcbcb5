"""CTC decoding: greedy collapsing, prefix beam search, the character n-gram LM."""

import itertools
import math

import pytest
import torch

from rnnkit.models.ctc_decoding import (
    CharNgramLM,
    ctc_log_likelihood,
    greedy_decode,
    prefix_beam_search,
    rescore,
)


def log_probs(rows):
    return torch.tensor(rows, dtype=torch.float64).log()


def test_greedy_collapses_repeats_and_drops_blanks():
    # best path: a a - a b b - - c  ->  a a b c
    best = [1, 1, 0, 1, 2, 2, 0, 0, 3]
    lp = torch.full((len(best), 4), -5.0)
    lp[torch.arange(len(best)), torch.tensor(best)] = 0.0
    assert greedy_decode(lp) == [1, 1, 2, 3]
    assert greedy_decode(torch.zeros(0, 4)) == []


def collapse(path):
    out, prev = [], 0
    for k in path:
        if k != prev and k != 0:
            out.append(k)
        prev = k
    return tuple(out)


def labelling_probs(probs):
    """Every labelling's probability, summing all paths (brute force)."""
    totals = {}
    T, V = probs.shape
    for path in itertools.product(range(V), repeat=T):
        p = math.prod(float(probs[t, k]) for t, k in enumerate(path))
        totals[collapse(path)] = totals.get(collapse(path), 0.0) + p
    return totals


def test_beam_search_finds_the_likeliest_labelling_where_greedy_fails():
    # blank .5, "a" .4, "b" .1 in both frames: the best path is blank-blank (""), but "a" has
    # paths aa, a-, -a worth .16 + .2 + .2 = .56 > .25.
    probs = torch.tensor([[0.5, 0.4, 0.1], [0.5, 0.4, 0.1]], dtype=torch.float64)
    assert greedy_decode(probs.log()) == []
    totals = labelling_probs(probs)
    best = max(totals, key=totals.get)
    assert best == (1,) and totals[best] == pytest.approx(0.56)
    assert prefix_beam_search(probs.log(), beam=4) == [1]


@pytest.mark.parametrize("seed", range(6))
def test_beam_search_matches_brute_force_on_small_random_outputs(seed):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(5, 3, generator=g, dtype=torch.float64) * 2, 1)
    totals = labelling_probs(probs)
    best = max(totals, key=totals.get)
    # a beam as wide as every prefix is exact
    assert tuple(prefix_beam_search(probs.log(), beam=64, prune=-math.inf)) == best


@pytest.mark.parametrize("seed", range(10))
def test_beam_one_equals_greedy_on_confident_outputs(seed):
    g = torch.Generator().manual_seed(seed)
    T, V = 30, 6
    best = torch.randint(0, V, (T,), generator=g)
    logits = torch.randn(T, V, generator=g)
    logits[torch.arange(T), best] += 6.0  # the argmax holds most of each frame's mass
    lp = torch.log_softmax(logits, 1)
    assert prefix_beam_search(lp, beam=1) == greedy_decode(lp)


def test_language_model_steers_beam_search():
    lm = CharNgramLM.train([[1, 2, 1, 2, 1, 2]] * 5, vocab_size=4, order=2)
    # after 1 the LM expects 2; its distributions are proper and never give the blank mass
    assert lm.probs((1,))[2] > 0.8 and lm.probs((1,))[0] == 0
    assert lm.probs((1,)).sum() == pytest.approx(1.0)
    # the acoustics slightly prefer "1 3" over "1 2"
    probs = torch.tensor([[0.02, 0.96, 0.01, 0.01], [0.05, 0.01, 0.44, 0.50]],
                         dtype=torch.float64)
    assert prefix_beam_search(probs.log(), beam=4) == [1, 3]
    assert prefix_beam_search(probs.log(), beam=4, lm=lm, lm_weight=1.0) == [1, 2]
    again = CharNgramLM.from_dict(lm.to_dict())
    assert again.probs((1,)).tolist() == lm.probs((1,)).tolist()


@pytest.mark.parametrize("seed", range(4))
def test_ctc_log_likelihood_sums_every_path_of_the_labelling(seed):
    g = torch.Generator().manual_seed(seed)
    probs = torch.softmax(torch.randn(4, 3, generator=g, dtype=torch.float64) * 2, 1)
    totals = labelling_probs(probs)
    for labels in [(), (1,), (2, 1), (1, 1), (1, 2, 1)]:
        assert ctc_log_likelihood(probs.log(), list(labels)) == pytest.approx(
            math.log(totals[labels]), rel=1e-5)
    assert ctc_log_likelihood(probs.log(), [1, 1, 1]) == -math.inf  # needs 5 frames


def test_an_ensemble_takes_the_labelling_likeliest_for_all_members():
    # each member's spike sits on another frame: averaging their frames gives blank everywhere,
    # but both members find "a" far likelier than "" or "b"
    early = log_probs([[0.1, 0.85, 0.05], [0.9, 0.05, 0.05], [0.9, 0.05, 0.05]])
    late = log_probs([[0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.1, 0.85, 0.05]])
    mean = ((early.exp() + late.exp()) / 2).log()
    assert greedy_decode(mean) == []
    assert rescore(torch.stack([early, late]), [[], [1], [2]]) == [1]
    # a member sure of "b" outvotes one that barely prefers "a"
    sure_b = log_probs([[0.05, 0.05, 0.9]] * 3)
    barely_a = log_probs([[0.3, 0.36, 0.34]] * 3)
    assert greedy_decode(barely_a) == [1]
    assert rescore(torch.stack([sure_b, barely_a]), [[1], [2]]) == [2]
    # the LM can tip a near tie: it has only ever seen "b"
    lm = CharNgramLM.train([[2, 2], [2]], vocab_size=3, order=2)
    tie = log_probs([[0.2, 0.41, 0.39]] * 2)
    assert rescore(tie[None], [[1], [2]]) == [1]
    assert rescore(tie[None], [[1], [2]], lm, lm_weight=1.0) == [2]
