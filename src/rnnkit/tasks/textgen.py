"""Text generation: a recurrent language model trained on text files, then sampled from.

From Python::

    from rnnkit.tasks import textgen
    gen = textgen.train("corpus.txt", "runs/lm", max_time="3m")
    print(gen.generate("ROMEO:", 200, temperature=0.8))
    gen = textgen.load("runs/lm")          # later, in another process

The training stream is read once, tokenized, cut into ``batch_size`` contiguous rows and fed in
windows of ``seq_len`` tokens with the recurrent state carried across windows (truncated BPTT).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from rnnkit.data.text import StreamBatches, read_corpus, split_validation
from rnnkit.data.tokenizers import tokenizer_from_dict, train_tokenizer
from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModel, LanguageModelConfig
from rnnkit.models.sampling import check_sampling, generate

TASK = "textgen"


@dataclass
class TextGenConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    data: list[str] | str = field(default_factory=list)  # text files or directories
    val: str | None = None  # validation file; None: the last val_fraction of the stream
    val_fraction: float = 0.1
    errors: str = "strict"  # non-UTF-8 bytes: "strict" (an error) or "replace" (U+FFFD)
    tokenizer: str = "char"  # char, byte or bpe
    bpe_vocab: int = 1024
    seq_len: int = 128  # tokens per window of truncated BPTT
    # validation tokens per evaluation (the first ones; None: all): big corpora's 10% would make
    # every evaluation take minutes
    eval_tokens: int | None = 1_000_000
    # model (see LanguageModelConfig); one 256-wide LSTM layer learns the most per CPU-second
    # in a few minutes of training (BENCHMARKS.md); bigger models pay off in longer runs
    arch: str = "lstm"
    layers: int = 1
    hidden: int = 256
    embed: int | None = None
    dropout: float = 0.0
    tie_weights: bool = False
    init: str = "default"
    forget_bias: float | None = None

    def model_config(self, vocab_size: int) -> LanguageModelConfig:
        names = {f.name for f in fields(LanguageModelConfig)} - {"vocab_size"}
        return LanguageModelConfig(vocab_size=vocab_size,
                                   **{k: v for k, v in asdict(self).items() if k in names})


# Where textgen's trainer settings differ from TrainConfig's (below any config file and flag):
# large AdamW steps that learn quickly, no weight decay, a cosine decay to a tenth.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 3e-3, "schedule": "cosine", "warmup_steps": 50, "min_lr": 3e-4, "weight_decay": 0.0,
}


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


def _text_size(text: str) -> tuple[int, int]:
    return len(text), len(text.encode("utf-8"))


def build(cfg: TextGenConfig, batch_size: int, seed: int = 0, tokenizer=None
          ) -> tuple[TextGenTask, LanguageModel]:
    """Read the corpus, train the tokenizer (unless given: a resumed run keeps its own), and make
    the task and a freshly initialised model."""
    from rnnkit.train import seed_everything

    data = [cfg.data] if isinstance(cfg.data, str) else cfg.data
    if not data:
        raise UserError("no training text was given; pass --data FILE_OR_DIRECTORY")
    text = read_corpus([Path(p) for p in data], cfg.errors)
    if cfg.val is not None:
        train_text, val_text = text, read_corpus([Path(cfg.val)], cfg.errors)
    else:
        if not 0.0 < cfg.val_fraction < 1.0:
            raise UserError(f"val_fraction must be between 0 and 1, got {cfg.val_fraction}")
        train_text, val_text = split_validation(text, cfg.val_fraction)
    if tokenizer is None:
        tokenizer = train_tokenizer(cfg.tokenizer, [train_text], cfg.bpe_vocab)
    train_ids = torch.tensor(tokenizer.encode(train_text), dtype=torch.long)
    # A character-level vocabulary comes from the training text: a validation character
    # it lacks is an error naming that character.
    val_ids = torch.tensor(tokenizer.encode(val_text, what="the validation text"),
                           dtype=torch.long)
    task = TextGenTask(cfg, tokenizer, train_ids, val_ids, _text_size(val_text), batch_size, seed)
    seed_everything(seed)  # the same seed gives the same initial weights
    model = LanguageModel(task.model_config)
    return task, model


def configs(settings: dict[str, Any], config_file: str | Path | None = None,
            resume_from: str | Path | None = None) -> tuple[Any, TextGenConfig]:
    """``(TrainConfig, TextGenConfig)``: see ``rnnkit.train.task_configs``."""
    from rnnkit.train import task_configs

    return tuple(task_configs(TextGenConfig, TASK, TRAIN_DEFAULTS, settings, config_file,
                              resume_from))


def fit(train_cfg, cfg: TextGenConfig, out: str | Path, resume: bool = False,
        fit_fn: Callable | None = None) -> dict[str, float]:
    """Build and train; ``fit_fn(trainer, resume)`` lets the CLI turn Ctrl-C into exit 130."""
    from rnnkit.train import Trainer

    tokenizer = saved_tokenizer(out) if resume else None
    task, model = build(cfg, train_cfg.batch_size, train_cfg.seed, tokenizer)
    trainer = Trainer(model, task, train_cfg, Path(out))
    metrics = fit_fn(trainer, resume) if fit_fn else trainer.fit(resume=resume)
    plot_losses(out)
    return metrics


def saved_tokenizer(out: str | Path):
    """The tokenizer of a run being resumed, so its token ids keep their meaning."""
    import json

    file = Path(out) / "config.json"
    if not file.is_file():
        return None
    return tokenizer_from_dict(json.loads(file.read_text(encoding="utf-8"))["tokenizer"])


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


def train(data: str | Path | Sequence[str | Path], out: str | Path, *, val: str | Path | None = None,
          resume: bool = False, config: str | Path | None = None, **settings) -> TextGenerator:
    """Train a language model on ``data`` (files or directories) into run directory ``out``.

    ``settings`` are any TextGenConfig or TrainConfig fields (``arch="gru"``, ``hidden=256``,
    ``max_time="3m"``, ...). Returns the trained model, ready to ``generate``; its validation
    metrics are in ``.metrics``.
    """
    paths = [data] if isinstance(data, str | Path) else list(data)
    settings = {**settings, "data": [str(p) for p in paths],
                "val": None if val is None else str(val)}
    train_cfg, cfg = configs(settings, config, resume_from=out if resume else None)
    metrics = fit(train_cfg, cfg, out, resume)
    gen = load(out)
    gen.metrics = metrics
    return gen


class TextGenerator:
    """A trained language model with its tokenizer, for sampling and evaluation."""

    def __init__(self, model: LanguageModel, tokenizer, config: dict[str, Any]):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.config = config
        self.metrics: dict[str, float] = {}

    def check(self, prompt: str, length: int = 200, *, temperature: float = 1.0,
              top_k: int | None = None, top_p: float | None = None, samples: int = 1) -> None:
        """Raise the UserError ``generate`` would raise for these settings, before any output."""
        check_sampling(length, temperature, top_k, top_p, samples)
        if not prompt:
            raise UserError("the prompt is empty; give at least one character to start from")
        self.tokenizer.encode(prompt, what="the prompt")

    def generate(self, prompt: str, length: int = 200, *, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, samples: int = 1,
                 seed: int | None = None, include_prompt: bool = False,
                 on_text: Callable[[int, str], None] | None = None) -> str | list[str]:
        """Continue ``prompt`` by ``length`` tokens.

        Returns the new text (``include_prompt``: prompt + new text); a list of ``samples`` texts
        when ``samples > 1``. ``on_text(sample_index, piece)`` receives each sample's text as it
        is produced (whole characters only: a multi-byte character waits for its last byte).
        """
        check_sampling(length, temperature, top_k, top_p, samples)
        prompt_ids = self.tokenizer.encode(prompt, what="the prompt")
        streams = [self.tokenizer.stream_decoder() for _ in range(samples)]
        pieces: list[list[str]] = [[] for _ in range(samples)]

        def emit(tokens: torch.Tensor) -> None:
            for i, token in enumerate(tokens.tolist()):
                piece = streams[i].feed(token)
                if piece:
                    pieces[i].append(piece)
                    if on_text is not None:
                        on_text(i, piece)

        generate(self.model, prompt_ids, length, samples=samples, temperature=temperature,
                 top_k=top_k, top_p=top_p, seed=seed, on_token=emit)
        texts = []
        for i, stream in enumerate(streams):
            tail = stream.flush()
            if tail:
                pieces[i].append(tail)
                if on_text is not None:
                    on_text(i, tail)
            texts.append((prompt if include_prompt else "") + "".join(pieces[i]))
        return texts[0] if samples == 1 else texts

    def evaluate(self, data: str | Path | Sequence[str | Path], errors: str = "strict",
                 seq_len: int | None = None) -> dict[str, float]:
        """Loss (nats/token), perplexity, bits per character and per byte on other text."""
        paths = [data] if isinstance(data, str | Path) else list(data)
        text = read_corpus([Path(p) for p in paths], errors)
        ids = torch.tensor(self.tokenizer.encode(text, what="the evaluation text"),
                           dtype=torch.long)
        if len(ids) < 2:
            raise UserError(f"the evaluation text is shorter than two tokens, found {len(ids)}")
        seq_len = seq_len or self.config.get("textgen", {}).get("seq_len", 128)
        device = next(self.model.parameters()).device
        loss = stream_loss(self.model, ids.to(device), seq_len)
        chars, nbytes = _text_size(text)
        return {"loss": loss, "ppl": math.exp(min(loss, 700.0)),
                "bpc": loss * len(ids) / chars / math.log(2),
                "bpb": loss * len(ids) / nbytes / math.log(2), "tokens": float(len(ids))}


def load(run_dir: str | Path, device: str = "cpu", which: str = "best",
         dtype: torch.dtype = torch.float32) -> TextGenerator:
    """The model of a textgen run directory (its best checkpoint, else the last).

    ``dtype=torch.bfloat16`` halves the weights' memory traffic, which is what limits sampling
    at batch 1 on a CPU; the probabilities then differ from float32's in the third digit.
    """
    from rnnkit.train import load_for_inference

    config, state_dict = load_for_inference(run_dir, expect_task=TASK, which=which)
    try:
        model_cfg = LanguageModelConfig.from_dict(config["model"])
        tokenizer = tokenizer_from_dict(config["tokenizer"])
    except (KeyError, TypeError) as e:
        raise UserError(f"the config of {run_dir} is missing textgen settings ({e}); was it "
                        "written by rnnkit?") from None
    model = LanguageModel(model_cfg)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError:
        raise UserError(f"the weights in {run_dir} do not fit the model its config describes "
                        "(edited or mixed-up checkpoint files)") from None
    return TextGenerator(model.to(device=device, dtype=dtype), tokenizer, config)


def evaluate_run(run_dir: str | Path, data: Sequence[str | Path], errors: str = "strict"
                 ) -> dict[str, float]:
    """``rnnkit evaluate`` for textgen runs: metrics of the saved model on ``data``."""
    return load(run_dir).evaluate(data, errors=errors)
