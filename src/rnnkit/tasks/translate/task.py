"""The translation task for ``rnnkit.train.Trainer``: building it from sentence pairs, and
``fit``, which trains and then scores the best checkpoint with beam search."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch.nn.functional as F

from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.pairs import EncodedPairs, Vocabularies, encode_pairs, make_batch
from rnnkit.data.parallel import describe_skips, read_pairs, split_pairs
from rnnkit.errors import UserError
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig
from rnnkit.tasks.epochs import SamplerEpoch
from rnnkit.tasks.runs import write_reports
from rnnkit.tasks.translate.config import TASK, TranslateConfig
from rnnkit.tasks.translate.decoding import bleu_chrf, decode, token_loss
from rnnkit.tasks.translate.predictor import load


class TranslateTask:
    """The translation task for ``rnnkit.train.Trainer`` (see ``rnnkit.train.protocol``)."""

    def __init__(self, cfg: TranslateConfig, vocab: Vocabularies, model_config: Seq2SeqConfig,
                 train: EncodedPairs, val: EncodedPairs, batch_size: int, seed: int = 0):
        self.cfg, self.vocab, self.model_config = cfg, vocab, model_config
        self.train, self.val = train, val
        self.sampler = BucketBatchSampler([len(s) for s in train.src], batch_size, seed=seed)
        self.teacher_forcing = cfg.teacher_forcing

    def train_batches(self, epoch: int):
        self.teacher_forcing = self.cfg.teacher_forcing_at(epoch)
        return SamplerEpoch(self, epoch)

    def collate(self, indices: list[int]) -> tuple:
        return make_batch([self.train.src[i] for i in indices],
                          [self.train.tgt[i] for i in indices], self.vocab.tgt.bos_id)

    def training_step(self, model, batch, state):
        src, src_len, tgt_in, tgt_out = batch
        logits, _ = model(src, src_len, tgt_in, self.teacher_forcing)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), tgt_out.flatten(),
                               ignore_index=0, label_smoothing=self.cfg.label_smoothing)
        return loss, int((tgt_out != 0).sum()), None

    def evaluate(self, model) -> dict[str, float]:
        loss = token_loss(model, self.val)
        metrics = {"val_loss": loss, "val_ppl": math.exp(min(loss, 50.0))}
        n = min(self.cfg.eval_bleu_sentences, len(self.val.src))
        if n:
            hyps = decode(model, self.val.src[:n], beam=1, **{
                k: v for k, v in self.cfg.decoding().items() if k != "beam"})
            out = [self.vocab.tgt.decode(h.tokens) for h in hyps]
            metrics["val_bleu_greedy"] = bleu_chrf(out, self.val.text.tgt[:n])["bleu"]
        return metrics

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": self.model_config.to_dict(),
                "tokenizer": self.vocab.to_dict(), "translate": asdict(self.cfg)}


def build(cfg: TranslateConfig, batch_size: int, seed: int = 0, saved: dict | None = None
          ) -> tuple[TranslateTask, Seq2Seq]:
    """Read the pairs, train the tokenizers (or take a resumed run's ``saved`` config), and make
    the task and a freshly initialised model."""
    from rnnkit.train import seed_everything

    if not cfg.src:
        raise UserError("no training data was given; pass --src FILE --tgt FILE (or --src "
                        "pairs.tsv)")
    train = read_pairs(cfg.src, cfg.tgt, "the training source")
    if cfg.val_tgt is not None and cfg.val_src is None:
        raise UserError("--val-tgt needs --val-src (or give neither, to hold out val_fraction "
                        "of the training pairs)")
    if cfg.val_src is not None:
        val = read_pairs(cfg.val_src, cfg.val_tgt, "the validation source")
        describe_skips(val)
    else:
        train, val = split_pairs(train, cfg.val_fraction, seed)
    if saved is None:
        vocab = Vocabularies.train(train, cfg.tokenizer, cfg.vocab_size, cfg.joint_vocab)
    else:
        vocab = Vocabularies.from_dict(saved["tokenizer"])
    train_ids = encode_pairs(train, vocab, cfg.max_len)
    describe_skips(train_ids.text, cfg.max_len)
    val_ids = encode_pairs(val, vocab)
    model_cfg = cfg.model_config(vocab) if saved is None else \
        Seq2SeqConfig.from_dict(saved["model"])
    task = TranslateTask(cfg, vocab, model_cfg, train_ids, val_ids, batch_size, seed)
    seed_everything(seed)  # the same seed gives the same initial weights
    return task, Seq2Seq(model_cfg)


def fit(train_cfg, cfg: TranslateConfig, out: str | Path, resume: bool = False
        ) -> dict[str, Any]:
    """Build, train, then evaluate the best checkpoint with beam search on the validation (and
    test) pairs: the report's ``val`` / ``test`` also go to ``metrics_val.json`` /
    ``metrics_test.json``."""
    from rnnkit.train import Trainer, read_run_config

    saved = read_run_config(out, TASK) if resume else {}
    test = None
    if cfg.test_src is not None:  # read before training: a bad test file fails at once
        test = read_pairs(cfg.test_src, cfg.test_tgt, "the test source")
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    last = Trainer(model, task, train_cfg, Path(out)).fit(resume=resume)
    translator = load(out)
    report: dict[str, Any] = {"train": last, "val": translator.evaluate_pairs(task.val.text)}
    if test is not None:
        report["test"] = translator.evaluate_pairs(test)
    write_reports(out, report)
    return report
