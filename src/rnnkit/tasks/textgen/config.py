"""The settings of text generation: each field is also an option of ``rnnkit train textgen``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rnnkit.errors import UserError
from rnnkit.models.language_model import LanguageModelConfig
from rnnkit.nn.registry import ARCHS
from rnnkit.settings import derive, model_default, setting

TASK = "textgen"


def _model(name: str) -> Any:
    return model_default(LanguageModelConfig, name)


@dataclass
class TextGenConfig:
    """The task's settings; the trainer's (lr, batch_size, max_time, ...) are in TrainConfig."""

    # a single path (an older config file's ``data = "corpus.txt"``) is read as a list of one
    data: list[str] | str = setting(
        help="Text file or directory of text files; repeat for several.", default_factory=list,
        metavar="PATH")
    val: str | None = setting(
        None, "Validation text file (default: the last --val-fraction of the data).",
        metavar="PATH")
    val_fraction: float = setting(
        0.1, "Share of the text, taken from its end, that validates when no --val is given.")
    errors: str = setting(
        "strict", "Bytes that are not UTF-8: strict (an error naming the file and offset) or "
        "replace (U+FFFD).")
    tokenizer: str = setting("char", "char, byte, or bpe (trained on the data).")
    bpe_vocab: int = setting(1024, "BPE vocabulary size.")
    seq_len: int = setting(128, "Tokens per window of truncated backpropagation through time.")
    # big corpora's 10% would make every evaluation take minutes
    eval_tokens: int | None = setting(
        1_000_000, "Validation tokens per evaluation, the first ones (none: all).")
    # the model's settings, with LanguageModelConfig's defaults
    arch: str = setting(_model("arch"), f"{', '.join(ARCHS[:-1])} or {ARCHS[-1]}.")
    layers: int = setting(_model("layers"), "Recurrent layers.")
    hidden: int = setting(_model("hidden"), "Hidden units per layer.")
    embed: int | None = setting(_model("embed"), "Embedding width (default: the hidden width).")
    dropout: float = setting(_model("dropout"), "Dropout rate.")
    tie_weights: bool = setting(_model("tie_weights"), "Share the embedding and output matrices.")
    init: str = setting(_model("init"), "Recurrent weight initialisation: default or orthogonal.")
    forget_bias: float | None = setting(
        _model("forget_bias"), "Bias of the gate that keeps the old state (LSTM forget gate, GRU "
        "update gate); none: the layer's own.")

    def __post_init__(self):
        if isinstance(self.data, str):
            self.data = [self.data]
        if self.eval_tokens is not None and self.eval_tokens < 1:
            raise UserError(f"eval_tokens must be at least 1 (or none: all), found "
                            f"{self.eval_tokens}.")

    def model_config(self, vocab_size: int) -> LanguageModelConfig:
        return derive(LanguageModelConfig, self, vocab_size=vocab_size)


# Where textgen's trainer settings differ from TrainConfig's (below any config file and flag):
# large AdamW steps that learn quickly, no weight decay, a cosine decay to a tenth.
TRAIN_DEFAULTS: dict[str, Any] = {
    "lr": 3e-3, "schedule": "cosine", "warmup_steps": 50, "min_lr": 3e-4, "weight_decay": 0.0,
}
