"""A recurrent layer with a linear head: the model for the long-memory tasks (adding, copy).

The head reads the last step (``readout="last"``, one prediction per sequence) or every step
(``readout="all"``, one prediction per step).
"""

from dataclasses import asdict, dataclass

from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import GATED, LAYERS, NO_RECURRENT_WEIGHTS, check_arch, recurrent_layer

INITS = ("default", "orthogonal", "chrono")


def check_init(init: str) -> None:
    if init not in INITS:
        raise UserError(f"unknown init {init!r}: expected one of {', '.join(INITS)}")


@dataclass
class SequenceRegressorConfig:
    arch: str = "lstm"
    input_size: int = 2
    hidden_size: int = 64
    output_size: int = 1
    num_layers: int = 1
    init: str = "default"
    forget_bias: float | None = None
    t_max: int | None = None  # the longest dependency chrono init is set for
    readout: str = "last"

    def __post_init__(self) -> None:
        check_arch(self.arch, tuple(LAYERS))  # every registered arch, "rnn-relu" included
        check_init(self.init)
        if self.readout not in ("last", "all"):
            raise UserError(f"unknown readout {self.readout!r}: expected 'last' or 'all'")
        if self.init == "chrono" and (self.t_max is None or self.t_max <= 2):
            raise UserError(f"chrono init needs t_max (the longest dependency) > 2, found "
                            f"{self.t_max}")
        for name in ("input_size", "hidden_size", "output_size", "num_layers"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, found {getattr(self, name)}")

    def to_dict(self) -> dict:
        return asdict(self)


def build_recurrent(cfg: SequenceRegressorConfig) -> nn.Module:
    """The recurrent layer for ``cfg.arch`` from the architecture registry, batch_first.

    The init options are passed only when they are not the default, and only to layers they
    apply to, so that one setting can compare every arch: chrono and forget_bias set gate biases
    (an Elman RNN has none), orthogonal sets recurrent weights (minGRU and minLSTM have none); a
    layer they do not apply to keeps the default init.
    """
    kwargs = {}
    gated = cfg.arch in GATED
    if (cfg.init == "orthogonal" and cfg.arch not in NO_RECURRENT_WEIGHTS) or (
            cfg.init == "chrono" and gated):
        kwargs["init"] = cfg.init
    if cfg.init == "chrono" and gated:
        kwargs["t_max"] = cfg.t_max
    if cfg.forget_bias is not None and gated:
        kwargs["forget_bias"] = cfg.forget_bias
    try:
        return recurrent_layer(cfg.arch, cfg.input_size, cfg.hidden_size, cfg.num_layers,
                               batch_first=True, **kwargs)
    except ValueError as e:  # the layer's own one-sentence message about these settings
        raise UserError(f"{cfg.arch}: {e}") from None


class SequenceRegressor(nn.Module):
    def __init__(self, cfg: SequenceRegressorConfig):
        super().__init__()
        self.cfg = cfg
        self.rnn = build_recurrent(cfg)
        self.head = nn.Linear(cfg.hidden_size, cfg.output_size)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (batch, time, input_size) -> (batch, output_size), or (batch, time, output_size)
        with ``readout="all"``."""
        out, _ = self.rnn(x)
        if self.cfg.readout == "last":
            out = out[:, -1]
        return self.head(out)
