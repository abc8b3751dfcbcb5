"""A recurrent language model: embedding -> recurrent stack -> dropout -> output layer."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import ARCHS, GATED, check_arch, recurrent_layer

# chrono init is set for the longest dependency (t_max), which a language model does not know
INITS = ("default", "orthogonal")


@dataclass
class LanguageModelConfig:
    vocab_size: int
    arch: str = "lstm"
    # one 256-wide layer learns the most per CPU-second in a few minutes of training
    # (BENCHMARKS.md); bigger models pay off in longer runs
    layers: int = 1
    hidden: int = 256
    embed: int | None = None  # embedding width; None: the hidden width
    dropout: float = 0.0  # between recurrent layers and before the output layer
    tie_weights: bool = False  # share the embedding and output matrices (needs embed == hidden)
    init: str = "default"  # recurrent weights: default or orthogonal (rnnkit.nn.init)
    forget_bias: float | None = None  # bias of the gate that keeps the old state

    def __post_init__(self):
        check_arch(self.arch, ARCHS)
        if self.layers < 1 or self.hidden < 1 or self.vocab_size < 1:
            raise UserError(f"layers, hidden and vocab_size must be positive, got {self.layers}, "
                            f"{self.hidden} and {self.vocab_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise UserError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.tie_weights and self.embed not in (None, self.hidden):
            raise UserError(f"weight tying needs the embedding width equal to the hidden width "
                            f"({self.hidden}), got {self.embed}")
        if self.init not in INITS:
            raise UserError(f"init must be {' or '.join(INITS)} for a language model, found "
                            f"{self.init!r}.")
        if self.forget_bias is not None and self.arch not in GATED:
            raise UserError(f"forget_bias applies to the gated layers ({', '.join(GATED)}), "
                            f"not {self.arch!r}")

    @classmethod
    def from_dict(cls, d: dict) -> LanguageModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise UserError(f"unknown language-model settings: {', '.join(unknown)}")
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def recurrent_stack(cfg: LanguageModelConfig, input_size: int) -> nn.Module:
    """The registry's layer for ``cfg.arch``, batch first."""
    extra = {}
    # Only pass the rnnkit-specific options when they are used, so any torch.nn-like layer works.
    if cfg.init != "default":
        extra["init"] = cfg.init
    if cfg.forget_bias is not None:
        extra["forget_bias"] = cfg.forget_bias
    dropout = cfg.dropout if cfg.layers > 1 else 0.0
    return recurrent_layer(cfg.arch, input_size, cfg.hidden, cfg.layers, batch_first=True,
                           dropout=dropout, **extra)


class LanguageModel(nn.Module):
    """Predicts the next token at every position; the recurrent state carries across calls."""

    def __init__(self, cfg: LanguageModelConfig):
        super().__init__()
        self.cfg = cfg
        embed = cfg.embed or cfg.hidden
        self.embedding = nn.Embedding(cfg.vocab_size, embed)
        self.rnn = recurrent_stack(cfg, embed)
        self.dropout = nn.Dropout(cfg.dropout)
        self.output = nn.Linear(cfg.hidden, cfg.vocab_size)
        if cfg.tie_weights:
            self.output.weight = self.embedding.weight

    def forward(self, tokens: Tensor, state=None) -> tuple[Tensor, object]:
        """``tokens`` (batch, time) -> logits (batch, time, vocab) and the final state."""
        y, state = self.rnn(self.embedding(tokens), state)
        return self.output(self.dropout(y)), state

    def step(self, token: Tensor, state=None) -> tuple[Tensor, object]:
        """One token per sequence, ``token`` (batch,) -> logits (batch, vocab) and the new state.

        Uses the layer's own ``step`` when it has one (the rnnkit layers), else a length-1
        forward, which computes the same thing.
        """
        x = self.embedding(token)
        if hasattr(self.rnn, "step"):
            y, state = self.rnn.step(x, state)
        else:
            y, state = self.rnn(x.unsqueeze(1), state)
            y = y.squeeze(1)
        return self.output(self.dropout(y)), state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
