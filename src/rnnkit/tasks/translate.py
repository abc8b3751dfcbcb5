"""Machine translation: sentence pairs in, an encoder-decoder with attention out.

From Python::

    from rnnkit.tasks import translate
    tr = translate.train("train.de", "runs/de-en", tgt="train.en", val_src="val.de",
                         val_tgt="val.en", max_time="30m")
    tr.translate(["Ein Hund läuft im Schnee."])        # -> ["A dog runs in the snow."]
    tr = translate.load("runs/de-en")                   # later, in another process
    tr.evaluate("test.de", "test.en")                   # BLEU, chrF (sacrebleu), perplexity
    tr.plot_attention("Ein Hund läuft.", "attention.png")

Both sides are cut into subwords (BPE or unigram, one joint vocabulary or one per side) trained
on the training pairs; pairs longer than ``max_len`` subwords are left out of training. Batches
hold sentences of similar source length. The loss is label-smoothed cross-entropy; validation
reports the plain per-token loss, its perplexity, and greedy BLEU on some validation sentences.
BLEU and chrF are computed by sacrebleu on detokenized text, as published scores are.
"""

from __future__ import annotations

import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.bucketing import BucketBatchSampler
from rnnkit.data.parallel import ParallelText, describe_skips, filter_long, read_parallel
from rnnkit.data.subword import SubwordTokenizer
from rnnkit.errors import UserError
from rnnkit.models.beam_search import Hypothesis, beam_search, greedy
from rnnkit.models.seq2seq import Seq2Seq, Seq2SeqConfig

TASK = "translate"
MODEL_KEYS = ("arch", "layers", "dec_layers", "hidden", "embed", "attention", "input_feeding",
              "dropout", "tie_embeddings")


@dataclass
class TranslateConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    src: str = ""  # source sentences, one per line (plain or .gz), or a TSV of both sides
    tgt: str | None = None  # target sentences aligned with src; None: src is a TSV
    val_src: str | None = None  # validation pairs; None: val_fraction of the training pairs
    val_tgt: str | None = None
    test_src: str | None = None  # evaluated once after training
    test_tgt: str | None = None
    val_fraction: float = 0.05
    max_len: int = 100  # subwords per side; longer training pairs are skipped
    tokenizer: str = "bpe"  # bpe or unigram
    vocab_size: int = 8000  # subwords per vocabulary
    joint_vocab: bool = True  # one vocabulary for both languages (else one per side)
    # model (see Seq2SeqConfig)
    arch: str = "gru"
    layers: int = 1
    dec_layers: int = 1
    hidden: int = 256
    embed: int = 256
    attention: str = "multiplicative"  # or additive
    input_feeding: bool = True
    dropout: float = 0.3
    tie_embeddings: bool = True
    # training
    label_smoothing: float = 0.1
    teacher_forcing: float = 1.0  # share of steps that read the reference token, at epoch 1
    teacher_forcing_decay: float = 0.0  # subtracted per epoch ...
    teacher_forcing_min: float = 0.0  # ... down to this floor
    eval_bleu_sentences: int = 500  # greedy BLEU on this many validation pairs per evaluation
    # decoding
    beam: int = 5
    length_penalty: float = 0.6
    max_len_ratio: float = 2.0  # output subwords at most ratio * source subwords + max_len_extra
    max_len_extra: int = 10

    def __post_init__(self):
        if self.max_len < 1:
            raise UserError(f"max_len must be a positive number of subwords, found {self.max_len}")
        if not 0 <= self.label_smoothing < 1:
            raise UserError(f"label_smoothing must be in [0, 1), found {self.label_smoothing}")
        for name in ("teacher_forcing", "teacher_forcing_min"):
            if not 0 <= getattr(self, name) <= 1:
                raise UserError(f"{name} must be between 0 and 1, found {getattr(self, name)}")
        if self.beam < 1:
            raise UserError(f"beam must be at least 1, found {self.beam}")
        if not 0 < self.val_fraction < 1:
            raise UserError(f"val_fraction must be between 0 and 1, found {self.val_fraction}")

    def teacher_forcing_at(self, epoch: int) -> float:
        """The teacher-forcing ratio of ``epoch`` (from 0): a linear decay down to the floor."""
        if not self.teacher_forcing_decay:
            return self.teacher_forcing
        return max(self.teacher_forcing_min,
                   self.teacher_forcing - self.teacher_forcing_decay * epoch)

    def decoding(self) -> dict[str, Any]:
        return {"beam": self.beam, "length_penalty": self.length_penalty,
                "max_len_ratio": self.max_len_ratio, "max_len_extra": self.max_len_extra}


# Trainer settings for sentence-pair training, below any config file and flag.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 2e-3, "batch_size": 64, "epochs": 10, "schedule": "cosine", "warmup_steps": 200,
    "weight_decay": 0.0, "clip_norm": 1.0,
}


def _note(message: str) -> None:
    print(message, file=sys.stderr)


# -- data ---------------------------------------------------------------------------------------

class Vocabularies:
    """The source and target tokenizers (the same object when the vocabulary is joint)."""

    def __init__(self, src: SubwordTokenizer, tgt: SubwordTokenizer):
        self.src, self.tgt = src, tgt

    @classmethod
    def train(cls, data: ParallelText, cfg: TranslateConfig) -> Vocabularies:
        if cfg.joint_vocab:
            joint = SubwordTokenizer.train(data.src + data.tgt, cfg.tokenizer, cfg.vocab_size)
            return cls(joint, joint)
        return cls(SubwordTokenizer.train(data.src, cfg.tokenizer, cfg.vocab_size),
                   SubwordTokenizer.train(data.tgt, cfg.tokenizer, cfg.vocab_size))

    def to_dict(self) -> dict:
        if self.src is self.tgt:
            return {"joint": self.src.to_dict()}
        return {"src": self.src.to_dict(), "tgt": self.tgt.to_dict()}

    @classmethod
    def from_dict(cls, d: dict) -> Vocabularies:
        if "joint" in d:
            joint = SubwordTokenizer.from_dict(d["joint"])
            return cls(joint, joint)
        return cls(SubwordTokenizer.from_dict(d["src"]), SubwordTokenizer.from_dict(d["tgt"]))


@dataclass
class EncodedPairs:
    src: list[torch.Tensor]  # subword ids, no start or end token
    tgt: list[torch.Tensor]  # subword ids followed by the end token
    text: ParallelText


def encode_pairs(data: ParallelText, vocab: Vocabularies, max_len: int | None = None
                 ) -> EncodedPairs:
    """Subword ids of both sides; with ``max_len``, longer pairs are left out (and counted)."""
    src = vocab.src.encode_batch(data.src)
    tgt = vocab.tgt.encode_batch(data.tgt)
    if max_len is not None:
        data, keep = filter_long(data, [len(s) for s in src], [len(t) for t in tgt], max_len)
        src, tgt = [src[i] for i in keep], [tgt[i] for i in keep]
        if not src:
            raise UserError(f"every sentence pair in {data.source} is longer than max_len "
                            f"{max_len} subwords; raise --max-len")
    eos = vocab.tgt.eos_id
    return EncodedPairs([torch.tensor(s or [vocab.src.unk_id], dtype=torch.long) for s in src],
                        [torch.tensor([*t, eos], dtype=torch.long) for t in tgt], data)


def pad(seqs: Sequence[torch.Tensor], pad_id: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (batch, longest), lengths)``, padded with ``pad_id``."""
    lengths = torch.tensor([len(s) for s in seqs], dtype=torch.long)
    out = torch.full((len(seqs), int(lengths.max())), pad_id, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, lengths


def make_batch(src: Sequence[torch.Tensor], tgt: Sequence[torch.Tensor], bos_id: int
               ) -> tuple[torch.Tensor, ...]:
    """``(src, src_lengths, tgt_in, tgt_out)``: tgt_in starts with the start token, tgt_out is
    the same shifted by one and ends with the end token; padding is 0."""
    src_ids, src_len = pad(src)
    tgt_out, _ = pad(tgt)
    bos = torch.full((len(tgt), 1), bos_id, dtype=torch.long)
    tgt_in = torch.cat([bos, tgt_out[:, :-1]], dim=1)
    return src_ids, src_len, tgt_in, tgt_out


# -- the task for the trainer -------------------------------------------------------------------

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
        return _Epoch(self, epoch)

    def collate(self, indices: list[int]) -> tuple[torch.Tensor, ...]:
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


class _Epoch:
    """One epoch's batches, with a length so the trainer can plan its schedule."""

    def __init__(self, task: TranslateTask, epoch: int):
        self.task, self.epoch = task, epoch

    def __len__(self) -> int:
        return len(self.task.sampler)

    def __iter__(self):
        for indices in self.task.sampler.batches(self.epoch):
            yield self.task.collate(indices)


def _batches_by_length(src: Sequence[torch.Tensor], batch_size: int):
    order = sorted(range(len(src)), key=lambda i: len(src[i]))
    for start in range(0, len(order), batch_size):
        yield order[start:start + batch_size]


@torch.no_grad()
def token_loss(model: Seq2Seq, pairs: EncodedPairs, batch_size: int = 128) -> float:
    """Mean cross-entropy per target token (nats), without label smoothing."""
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for idx in _batches_by_length(pairs.src, batch_size):
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
    for idx in _batches_by_length(src, batch_size):
        ids, lengths = pad([src[i] for i in idx])
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


# -- building from data -------------------------------------------------------------------------

def read_pairs(src: str, tgt: str | None, what: str) -> ParallelText:
    if tgt is None and not str(src).lower().removesuffix(".gz").endswith(".tsv"):
        raise UserError(f"{what} {src} needs its target-side file too (or give a .tsv file with "
                        "source and target columns)")
    return read_parallel(src, tgt)


def _split(data: ParallelText, fraction: float, seed: int) -> tuple[ParallelText, ParallelText]:
    n_val = max(1, round(len(data) * fraction))
    if len(data) - n_val < 1:
        raise UserError(f"{data.source} has {len(data)} sentence pairs, too few to hold out "
                        "validation pairs; give --val-src and --val-tgt")
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed)).tolist()
    val, train = data.subset(sorted(order[:n_val])), data.subset(sorted(order[n_val:]))
    val.skipped_empty = val.skipped_long = 0
    return train, val


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
        describe_skips(val, note=_note)
    else:
        train, val = _split(train, cfg.val_fraction, seed)
    vocab = Vocabularies.train(train, cfg) if saved is None else \
        Vocabularies.from_dict(saved["tokenizer"])
    train_ids = encode_pairs(train, vocab, cfg.max_len)
    describe_skips(train_ids.text, cfg.max_len, note=_note)
    val_ids = encode_pairs(val, vocab)
    if saved is not None:
        model_cfg = Seq2SeqConfig.from_dict(saved["model"])
    else:
        model_cfg = Seq2SeqConfig(src_vocab=vocab.src.vocab_size, tgt_vocab=vocab.tgt.vocab_size,
                                  pad_id=vocab.tgt.pad_id, bos_id=vocab.tgt.bos_id,
                                  eos_id=vocab.tgt.eos_id,
                                  **{k: getattr(cfg, k) for k in MODEL_KEYS})
    task = TranslateTask(cfg, vocab, model_cfg, train_ids, val_ids, batch_size, seed)
    seed_everything(seed)  # the same seed gives the same initial weights
    return task, Seq2Seq(model_cfg)


def configs(settings: dict[str, Any], config_file: str | Path | None = None,
            resume_from: str | Path | None = None) -> tuple[Any, TranslateConfig]:
    """``(TrainConfig, TranslateConfig)``: see ``rnnkit.train.task_configs``."""
    from rnnkit.train import task_configs

    return tuple(task_configs(TranslateConfig, TASK, TRAIN_DEFAULTS, settings, config_file,
                              resume_from))


def fit(train_cfg, cfg: TranslateConfig, out: str | Path, resume: bool = False,
        fit_fn: Callable | None = None) -> dict[str, Any]:
    """Build, train, then evaluate the best checkpoint with beam search on the validation (and
    test) pairs: the metrics go to ``metrics_val.json`` / ``metrics_test.json``.
    ``fit_fn(trainer, resume)`` lets the CLI turn Ctrl-C into exit 130."""
    from rnnkit.train import Trainer, read_run_config

    saved = read_run_config(out, TASK) if resume else {}
    test = None
    if cfg.test_src is not None:
        test = read_pairs(cfg.test_src, cfg.test_tgt, "the test source")
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, saved or None)
    trainer = Trainer(model, task, train_cfg, Path(out))
    last = fit_fn(trainer, resume) if fit_fn else trainer.fit(resume=resume)
    tr = load(out)
    report: dict[str, Any] = {"train": last, "val": tr.evaluate_pairs(task.val.text)}
    if test is not None:
        report["test"] = tr.evaluate_pairs(test)
    for split in ("val", "test"):
        if split in report:
            (Path(out) / f"metrics_{split}.json").write_text(
                json.dumps(report[split], indent=2) + "\n", encoding="utf-8")
    return report


def train(src: str | Path, out: str | Path, *, tgt: str | Path | None = None,
          val_src: str | Path | None = None, val_tgt: str | Path | None = None,
          test_src: str | Path | None = None, test_tgt: str | Path | None = None,
          resume: bool = False, config: str | Path | None = None, **settings) -> Translator:
    """Train a translation model on the pairs ``src``/``tgt`` (or a TSV ``src``) into run
    directory ``out``. ``settings`` are any TranslateConfig or TrainConfig fields (``arch="lstm"``,
    ``attention="additive"``, ``max_time="10m"``, ...). Returns the trained translator; its
    metrics are in ``.metrics``."""
    paths = {"src": src, "tgt": tgt, "val_src": val_src, "val_tgt": val_tgt,
             "test_src": test_src, "test_tgt": test_tgt}
    settings = {**settings, **{k: None if v is None else str(v) for k, v in paths.items()}}
    train_cfg, cfg = configs(settings, config, resume_from=out if resume else None)
    report = fit(train_cfg, cfg, out, resume)
    tr = load(out)
    tr.metrics = report
    return tr


# -- inference ----------------------------------------------------------------------------------

class Translator:
    """A trained model with its tokenizers and decoding settings."""

    def __init__(self, model: Seq2Seq, vocab: Vocabularies, config: dict[str, Any]):
        self.model = model.eval()
        self.vocab = vocab
        self.config = config
        defaults = TranslateConfig()
        saved = config.get("translate", {})
        self.decoding = {k: saved.get(k, v) for k, v in defaults.decoding().items()}
        self.metrics: dict[str, Any] = {}

    def _settings(self, **given) -> dict[str, Any]:
        return {**self.decoding, **{k: v for k, v in given.items() if v is not None}}

    def encode(self, texts: Sequence[str], source: str = "the text",
               numbers: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Source ids; a character the model never saw is a UserError naming the line
        (``numbers``: each text's 1-based line, default 1, 2, ...)."""
        out = []
        numbers = numbers or range(1, len(texts) + 1)
        for n, text in zip(numbers, texts, strict=True):
            what = source if len(texts) == 1 and n == 1 else f"line {n} of {source}"
            ids = self.vocab.src.encode(text.strip(), what=what)
            out.append(torch.tensor(ids, dtype=torch.long))
        return out

    def translate(self, texts: Sequence[str] | str, beam: int | None = None,
                  length_penalty: float | None = None, max_len_ratio: float | None = None,
                  source: str = "the text") -> list[str]:
        """Detokenized translations of ``texts`` (beam search; ``beam=1`` is greedy). Empty
        texts translate to empty strings."""
        if isinstance(texts, str):
            texts = [texts]
        settings = self._settings(beam=beam, length_penalty=length_penalty,
                                  max_len_ratio=max_len_ratio)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        ids = self.encode([texts[i] for i in keep], source, [i + 1 for i in keep])
        out = [""] * len(texts)
        for i, h in zip(keep, decode(self.model, ids, **settings), strict=True):
            out[i] = self.vocab.tgt.decode(h.tokens)
        return out

    def evaluate_pairs(self, data: ParallelText, beam: int | None = None) -> dict[str, float]:
        """BLEU and chrF of the translations, perplexity of the references, speed."""
        pairs = encode_pairs(data, self.vocab)
        unknown = sum(int((s == self.vocab.src.unk_id).any()) for s in pairs.src)
        if unknown:
            _note(f"note: {unknown} source sentences in {data.source} have characters the model "
                  "never saw; they are read as unknown")
        loss = token_loss(self.model, pairs)
        settings = self._settings(beam=beam)
        t0 = time.perf_counter()
        hyps = decode(self.model, pairs.src, **settings)
        seconds = time.perf_counter() - t0
        out = [self.vocab.tgt.decode(h.tokens) for h in hyps]
        return {**bleu_chrf(out, data.tgt), "loss": loss, "ppl": math.exp(min(loss, 50.0)),
                "sentences": float(len(out)), "sentences_per_s": len(out) / max(seconds, 1e-9),
                "beam": float(settings["beam"])}

    def evaluate(self, src: str | Path, tgt: str | Path | None = None, beam: int | None = None
                 ) -> dict[str, float]:
        """``evaluate_pairs`` on two aligned files (or one TSV ``src``)."""
        data = read_pairs(str(src), None if tgt is None else str(tgt), "the source")
        describe_skips(data, note=_note)
        return self.evaluate_pairs(data, beam)

    @torch.no_grad()
    def attention(self, text: str, beam: int | None = None
                  ) -> tuple[list[str], list[str], torch.Tensor]:
        """``(source subwords, output subwords, weights (output, source))`` for the translation
        of ``text``; the last output row is the end token's."""
        ids = self.encode([text])[0]
        settings = self._settings(beam=beam)
        h = decode(self.model, [ids], **settings)[0]
        out = torch.tensor([*h.tokens, self.model.cfg.eos_id])
        tgt_in = torch.cat([torch.tensor([self.model.cfg.bos_id]), out[:-1]])
        device = next(self.model.parameters()).device
        _, weights = self.model(ids[None].to(device), torch.tensor([len(ids)]),
                                tgt_in[None].to(device))
        return (self.vocab.src.pieces(ids.tolist()), self.vocab.tgt.pieces(out.tolist()),
                weights[0].float().cpu())

    def plot_attention(self, text: str, path: str | Path, beam: int | None = None) -> Path:
        """Save the attention heat map of ``text``'s translation as a PNG."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        src, out, weights = self.attention(text, beam)
        fig, ax = plt.subplots(figsize=(max(4, 0.45 * len(src) + 2), max(3, 0.4 * len(out) + 2)))
        ax.imshow(weights.numpy(), cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
        ax.set_xticks(range(len(src)), src, rotation=60, ha="right")
        ax.set_yticks(range(len(out)), out)
        ax.set_xlabel("source subwords")
        ax.set_ylabel("output subwords")
        ax.set_title("attention")
        path = Path(path)
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        return path


def load(run_dir: str | Path, device: str = "cpu", which: str = "best") -> Translator:
    """The translator of a translation run directory (its best checkpoint, else the last)."""
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model_cfg = Seq2SeqConfig.from_dict(config["model"])
        vocab = Vocabularies.from_dict(config["tokenizer"])
    except (KeyError, TypeError) as e:
        raise UserError(f"the config of {run_dir} is missing translation settings ({e}); was it "
                        "written by rnnkit?") from None
    model = Seq2Seq(model_cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"the weights in {run_dir} do not fit the model its config describes "
                        "(edited or mixed-up checkpoint files)") from None
    return Translator(model.to(device), vocab, config)


def evaluate_run(run_dir: str | Path, data: Sequence[str | Path] | str | Path, **kwargs
                 ) -> dict[str, float]:
    """``rnnkit evaluate`` for translation runs: ``data`` is a source and a target file, or one
    TSV file; returns BLEU, chrF, perplexity and speed of beam search."""
    paths = [data] if isinstance(data, str | Path) else list(data)
    if len(paths) not in (1, 2):
        raise UserError(f"evaluate takes a source and a target file (or one .tsv) for a "
                        f"translation run, found {len(paths)} files")
    return load(run_dir).evaluate(paths[0], paths[1] if len(paths) == 2 else None)
