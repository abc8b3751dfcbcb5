"""Scoring and decoding many sentences with a ``Seq2Seq``: per-token loss, greedy or beam search
batched by length, and BLEU / chrF of the detokenized output."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from rnnkit.data.padding import pad_batch
from rnnkit.data.pairs import EncodedPairs, batches_by_length, make_batch
from rnnkit.models.beam_search import Hypothesis, beam_search, greedy
from rnnkit.models.seq2seq import Seq2Seq


@torch.no_grad()
def token_loss(model: Seq2Seq, pairs: EncodedPairs, batch_size: int = 128) -> float:
    """Mean cross-entropy per target token (nats), without label smoothing."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for idx in batches_by_length(pairs.src, batch_size):
        src, src_len, tgt_in, tgt_out = (t.to(device) for t in make_batch(
            [pairs.src[i] for i in idx], [pairs.tgt[i] for i in idx], model.cfg.bos_id))
        logits, _ = model(src, src_len, tgt_in)
        total += float(F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.flatten(),
                                       ignore_index=0, reduction="sum"))
        count += int((tgt_out != 0).sum())
    return total / max(1, count)


@torch.no_grad()
def decode(model: Seq2Seq, src: Sequence[torch.Tensor], beam: int = 5, length_penalty: float = 0.6,
           max_len_ratio: float = 2.0, max_len_extra: int = 10, batch_size: int = 64
           ) -> list[Hypothesis]:
    """The best hypothesis for each source, in order: greedy when ``beam`` is 1, batched by
    length."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out: list[Hypothesis | None] = [None] * len(src)
    for idx in batches_by_length(src, batch_size):
        ids, lengths = pad_batch([src[i] for i in idx])
        ids, lengths = ids.to(device), lengths.to(device)
        if beam == 1:
            hyps = greedy(model, ids, lengths, max_len_ratio, max_len_extra)
        else:
            hyps = beam_search(model, ids, lengths, beam, length_penalty, max_len_ratio,
                               max_len_extra)
        for i, h in zip(idx, hyps, strict=True):
            out[i] = h
    model.train(was_training)
    return out  # type: ignore[return-value]


def bleu_chrf(hypotheses: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Corpus BLEU and chrF of detokenized text (sacrebleu's defaults: 13a tokenization)."""
    import sacrebleu

    return {"bleu": sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score,
            "chrf": sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score}
