"""Word and character error rates (with ``jiwer``), overall and per utterance."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path


def error_rates(refs: Sequence[str], hyps: Sequence[str]) -> dict[str, float]:
    """Corpus WER and CER: edit operations summed over utterances, over reference words/chars."""
    import jiwer

    if len(refs) != len(hyps):
        raise ValueError(f"expected as many hypotheses as references, found {len(hyps)} and "
                         f"{len(refs)}")
    if not refs:
        return {"wer": 0.0, "cer": 0.0}
    words = jiwer.process_words(list(refs), list(hyps))
    chars = jiwer.process_characters(list(refs), list(hyps))
    return {"wer": float(words.wer), "cer": float(chars.cer)}


def write_utterance_errors(path: str | Path, names: Sequence[str], refs: Sequence[str],
                           hyps: Sequence[str]) -> Path:
    """A CSV row per utterance: name, reference, hypothesis, its WER and CER."""
    path = Path(path)
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["utterance", "reference", "hypothesis", "wer", "cer"])
        for name, ref, hyp in zip(names, refs, hyps, strict=True):
            m = error_rates([ref], [hyp])
            w.writerow([name, ref, hyp, f"{m['wer']:.4f}", f"{m['cer']:.4f}"])
    return path
