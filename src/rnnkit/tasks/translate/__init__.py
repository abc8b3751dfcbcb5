"""Machine translation: sentence pairs in, an encoder-decoder with attention out.

From Python::

    from rnnkit.tasks import translate
    tr = translate.train("train.de", "runs/de-en", tgt="train.en", val_src="val.de",
                         val_tgt="val.en", max_time="30m")
    tr.predict(["Ein Hund läuft im Schnee."])          # -> ["A dog runs in the snow."]
    tr = translate.load("runs/de-en")                   # later, in another process
    tr.evaluate(["test.de", "test.en"])                 # BLEU, chrF (sacrebleu), perplexity
    tr.plot_attention("Ein Hund läuft.", "attention.png")

Both sides are cut into subwords (BPE or unigram, one joint vocabulary or one per side) trained
on the training pairs; pairs longer than ``max_len`` subwords are left out of training. Batches
hold sentences of similar source length. The loss is label-smoothed cross-entropy; validation
reports the plain per-token loss, its perplexity, and greedy BLEU on some validation sentences.
BLEU and chrF are computed by sacrebleu on detokenized text, as published scores are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rnnkit.data.pairs import EncodedPairs, Vocabularies, encode_pairs, make_batch
from rnnkit.data.parallel import read_pairs
from rnnkit.tasks import registry
from rnnkit.tasks.registry import TaskSpec
from rnnkit.tasks.runs import path_settings
from rnnkit.tasks.translate.config import TASK, TRAIN_DEFAULTS, TranslateConfig
from rnnkit.tasks.translate.decoding import bleu_chrf, decode, token_loss
from rnnkit.tasks.translate.predictor import Translator, load
from rnnkit.tasks.translate.smoke import smoke
from rnnkit.tasks.translate.task import TranslateTask, build, fit

__all__ = [
    "SPEC", "TASK", "TRAIN_DEFAULTS", "TranslateConfig", "TranslateTask", "Translator",
    "Vocabularies", "EncodedPairs", "encode_pairs", "make_batch", "read_pairs",
    "bleu_chrf", "decode", "token_loss", "build", "configs", "fit", "load", "train", "summary",
]


def summary(report: dict[str, Any], out: Path) -> list[str]:
    """What ``rnnkit train translate`` prints after training."""
    lines = []
    for split in ("val", "test"):
        if split in report:
            m = report[split]
            lines.append(f"{split}: BLEU {m['bleu']:.2f}  chrF {m['chrf']:.2f}  perplexity "
                         f"{m['ppl']:.2f}  (beam {int(m['beam'])}, {int(m['sentences'])} "
                         "sentences)")
    lines.append(f"run saved in {out}/ (translate with: rnnkit translate {out} --text \"...\")")
    return lines


SPEC = TaskSpec(
    name=TASK,
    config=TranslateConfig,
    fit=fit,
    load=load,
    help="Train an encoder-decoder with attention on sentence pairs; scores BLEU and chrF "
         "(metrics_val.json / metrics_test.json).",
    example="rnnkit train translate --src train.de --tgt train.en --val-src val.de --val-tgt "
            "val.en --out runs/de-en --max-time 30m",
    train_defaults=TRAIN_DEFAULTS,
    summary=summary,
    smoke=smoke,
)

# (TrainConfig, TranslateConfig) from settings, a config file and a resumed run
configs = SPEC.configs


def train(src: str | Path, out: str | Path, *, tgt: str | Path | None = None,
          val_src: str | Path | None = None, val_tgt: str | Path | None = None,
          test_src: str | Path | None = None, test_tgt: str | Path | None = None,
          resume: bool = False, config: str | Path | None = None, **settings) -> Translator:
    """Train a translation model on the pairs ``src``/``tgt`` (or a TSV ``src``) into run
    directory ``out``. ``settings`` are any TranslateConfig or TrainConfig fields (``arch="lstm"``,
    ``attention="additive"``, ``max_time="10m"``, ...). Returns the trained translator; its
    report is in ``.metrics``."""
    return registry.train(TASK, out, config=config, resume=resume, **settings, **path_settings(
        src=src, tgt=tgt, val_src=val_src, val_tgt=val_tgt, test_src=test_src, test_tgt=test_tgt))
