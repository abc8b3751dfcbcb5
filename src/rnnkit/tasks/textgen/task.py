"""Training a language model: the stream read once, tokenized, cut into ``batch_size``
contiguous rows and fed in windows of ``seq_len`` tokens with the recurrent state carried across
windows (truncated BPTT)."""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.text import StreamBatches, training_texts
from rnnkit.data.tokenizers import tokenizer_from_dict, train_tokenizer
from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel
from rnnkit.tasks.textgen.config import TASK, TextGenConfig


class TextGenTask:
    """The textgen task for ``rnnkit.train.Trainer`` (see ``rnnkit.train.protocol``)."""

    def __init__(self, cfg: TextGenConfig, tokenizer, train_ids: torch.Tensor,
                 val_ids: torch.Tensor, val_text_len: tuple[int, int], batch_size: int,
                 seed: int = 0):
        self.cfg = cfg
        self.tokenizer = tokenizer
        self.batches = StreamBatches(train_ids, batch_size, cfg.seq_len, seed=seed)
        if len(val_ids) < 2:
            raise UserError("the validation text is shorter than two tokens; give a longer "
                            "--val file or more text")
        self.val_ids = val_ids
        # tokens per character and per UTF-8 byte of the validation text, for bpc and bpb
        chars, nbytes = val_text_len
        self.tokens_per_char = len(val_ids) / chars
        self.tokens_per_byte = len(val_ids) / nbytes
        self.model_config = cfg.model_config(tokenizer.vocab_size)

    def train_batches(self, epoch: int):
        return _Epoch(self.batches, epoch)

    def training_step(self, model, batch, state):
        x, y = batch
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())
        return loss, y.numel(), state

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        ids = self.val_ids
        if self.cfg.eval_tokens is not None:
            ids = ids[:self.cfg.eval_tokens + 1]
        loss = stream_loss(model, ids.to(device), self.cfg.seq_len)
        return {"val_loss": loss, "val_ppl": math.exp(min(loss, 700.0)),
                "val_bpc": loss * self.tokens_per_char / math.log(2),
                "val_bpb": loss * self.tokens_per_byte / math.log(2)}

    def checkpoint_config(self) -> dict[str, Any]:
        return {"task": TASK, "model": self.model_config.to_dict(),
                "tokenizer": self.tokenizer.to_dict(), "textgen": asdict(self.cfg)}


class _Epoch:
    """One epoch's windows, with a length so the trainer can plan its schedule."""

    def __init__(self, batches: StreamBatches, epoch: int):
        self.batches, self.epoch = batches, epoch

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        return self.batches.epoch(self.epoch)


@torch.no_grad()
def stream_loss(model, ids: torch.Tensor, seq_len: int, rows: int = 16) -> float:
    """Mean next-token loss in nats over a token stream, read as ``rows`` contiguous rows with
    the state carried across windows (a few tail tokens that do not fill a row are skipped)."""
    rows = max(1, min(rows, (len(ids) - 1) // max(1, seq_len)))
    n = (len(ids) - 1) // rows
    x = ids[:rows * n].view(rows, n)
    y = ids[1:rows * n + 1].view(rows, n)
    total, count, state = 0.0, 0, None
    for start in range(0, n, seq_len):
        logits, state = model(x[:, start:start + seq_len], state)
        target = y[:, start:start + seq_len]
        total += F.cross_entropy(logits.flatten(0, 1).float(), target.flatten(),
                                 reduction="sum").item()
        count += target.numel()
    return total / count


def text_size(text: str) -> tuple[int, int]:
    """Characters and UTF-8 bytes, the units of bits per character and per byte."""
    return len(text), len(text.encode("utf-8"))


def build(cfg: TextGenConfig, batch_size: int, seed: int = 0, tokenizer=None
          ) -> tuple[TextGenTask, LanguageModel]:
    """Read the corpus, train the tokenizer (unless given: a resumed run keeps its own), and make
    the task and a freshly initialised model."""
    from rnnkit.train import seed_everything

    train_text, val_text = training_texts(cfg.data, cfg.val, cfg.val_fraction, cfg.errors)
    if tokenizer is None:
        # A character that happens to occur only in the validation text is still a character of
        # the corpus: the vocabulary has it. BPE merges are learned on the training text alone
        # (byte-level, so it encodes any text).
        texts = [train_text, val_text] if cfg.tokenizer == "char" else [train_text]
        tokenizer = train_tokenizer(cfg.tokenizer, texts, cfg.bpe_vocab)
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    val_ids = torch.tensor(tokenizer.encode(val_text, what="the validation text"),
                           dtype=torch.long)
    task = TextGenTask(cfg, tokenizer, train_ids, val_ids, text_size(val_text), batch_size, seed)
    seed_everything(seed)  # the same seed gives the same initial weights
    model = LanguageModel(task.model_config)
    return task, model


def fit(train_cfg, cfg: TextGenConfig, out: str | Path, resume: bool = False
        ) -> dict[str, dict[str, float]]:
    """Build and train into run directory ``out``; the report's ``train`` holds the final
    evaluation's validation metrics (val_loss, val_ppl, val_bpc, val_bpb)."""
    from rnnkit.train import Trainer

    tokenizer = saved_tokenizer(out) if resume else None
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, tokenizer)
    last = Trainer(model, task, train_cfg, Path(out)).fit(resume=resume)
    plot_losses(out)
    return {"train": last}


def saved_tokenizer(out: str | Path):
    """The tokenizer of a run being resumed, so its token ids keep their meaning."""
    from rnnkit.train import read_run_config

    saved = read_run_config(out, TASK)
    return tokenizer_from_dict(saved["tokenizer"]) if saved else None


def plot_losses(run_dir: str | Path, path: str | Path | None = None) -> Path:
    """Training and validation loss (nats/token) against training time, from metrics.csv."""
    import csv

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    with open(run_dir / "metrics.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, label in (("train_loss", "training"), ("val_loss", "validation")):
        points = [(float(r["time"]), float(r[key])) for r in rows if r.get(key)]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o" if key == "val_loss" else None,
                    label=label)
    ax.set_xlabel("training time (s)")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title("language model loss")
    ax.grid(alpha=0.3)
    ax.legend()
    path = Path(path) if path is not None else run_dir / "loss.png"
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
