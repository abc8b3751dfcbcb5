"""Recurrent forecasters: the H steps after a look-back window of L steps, all at once.

Three models share one interface, ``forward(x, cov_past, cov_future) -> (batch, H, C, K)``:

- ``rnn``: a recurrent encoder over the look-back, a linear head that reads its last output and
  the future covariates and emits every horizon step at once (direct multi-horizon).
- ``seq2seq``: the encoder's final state starts a decoder that unrolls the horizon, reading the
  known future covariates and a learned position at each step.
- ``segrnn``: SegRNN (Lin et al. 2023): the look-back cut into segments of ``w`` steps, each
  embedded by a linear layer, a recurrent layer over the L/w segments, then parallel multi-step
  decoding: one recurrent step per output segment from the final state, its input a positional
  embedding (and, channel-independent, a channel embedding), a linear layer to ``w`` values.

``x`` is (batch, L, C) targets, ``cov_past`` (batch, L, P) covariates over the look-back (past-only
and known ones), ``cov_future`` (batch, H, F) the known covariates over the horizon. Channel
independent (the default) runs each target series as its own sample with shared weights, the
covariates beside it; joint reads all series together.

Each window is normalised before the network and restored after it: ``last`` subtracts the
window's last value (SegRNN's choice), ``revin`` the window's mean and standard deviation (Kim et
al. 2022, reversible instance normalisation without the affine part). Real series drift between
the training and test periods; without this a recurrent forecaster can lose to repeating the
last value.

K outputs per step: 1 (point), one per quantile (pinball loss), or 2 for a Gaussian (mean and
standard deviation, negative log-likelihood).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import check_arch, recurrent_layer

MODELS = ("segrnn", "rnn", "seq2seq")
NORMS = ("last", "revin", "none")
CHANNELS = ("independent", "joint")
HEADS = ("point", "quantile", "gaussian")
LOSSES = ("mse", "mae")


def _choice(name: str, value: str, choices) -> None:
    if value not in choices:
        raise UserError(f"{name} must be one of {', '.join(choices)}, found {value!r}.")


@dataclass
class ForecasterConfig:
    model: str = "segrnn"
    n_targets: int = 1  # C
    n_past: int = 0  # covariates over the look-back (past-only and known)
    n_known: int = 0  # F: covariates known over the horizon
    lookback: int = 96
    horizon: int = 24
    arch: str = "gru"
    hidden: int = 128
    layers: int = 1
    dropout: float = 0.1
    channels: str = "independent"
    norm: str = "last"
    head: str = "point"
    loss: str = "mse"  # the point head's loss
    levels: list[float] = field(default_factory=lambda: [0.8])  # central interval levels
    segment: int = 0  # segrnn segment length; 0 picks one from the look-back

    def __post_init__(self) -> None:
        _choice("model", self.model, MODELS)
        check_arch(self.arch)
        _choice("norm", self.norm, NORMS)
        _choice("channels", self.channels, CHANNELS)
        _choice("head", self.head, HEADS)
        _choice("loss", self.loss, LOSSES)
        self.levels = [float(v) for v in self.levels]
        for level in self.levels:
            if not 0 < level < 1:
                raise UserError(f"interval levels must lie between 0 and 1, found {level}.")
        for name in ("n_targets", "lookback", "horizon", "hidden", "layers"):
            if getattr(self, name) < 1:
                raise UserError(f"{name} must be at least 1, found {getattr(self, name)}.")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must be in [0, 1), found {self.dropout}.")
        if self.segment < 0 or self.segment > self.lookback:
            raise UserError(f"segment must be between 1 and the lookback {self.lookback} (or 0 "
                            f"for automatic), found {self.segment}.")

    def quantiles(self) -> list[float]:
        """The quantiles a quantile head predicts: the median and both ends of each level."""
        qs = {0.5} | {round((1 - lv) / 2, 6) for lv in self.levels} | {
            round((1 + lv) / 2, 6) for lv in self.levels}
        return sorted(qs)

    def outputs(self) -> int:
        return {"point": 1, "quantile": len(self.quantiles()), "gaussian": 2}[self.head]

    def segment_length(self) -> int:
        if self.segment:
            return self.segment
        # SegRNN uses 48 at look-back 720; about 4 to 16 segments elsewhere
        for w in (48, 24, 16, 12, 8, 6, 4, 2):
            if self.lookback >= 8 * w:
                return w
        return 1

    def to_dict(self) -> dict:
        return asdict(self)


def build_forecaster(cfg: ForecasterConfig) -> Forecaster:
    return {"rnn": DirectRNN, "seq2seq": Seq2Seq, "segrnn": SegRNN}[cfg.model](cfg)


def _recurrent(cfg: ForecasterConfig, input_size: int, hidden: int) -> nn.Module:
    return recurrent_layer(cfg.arch, input_size, hidden, cfg.layers, batch_first=True,
                           dropout=cfg.dropout if cfg.layers > 1 else 0.0)


def _repeat_state(state, times: int):
    """A recurrent state (tensor or LSTM tuple) with each batch row repeated ``times`` times."""
    if isinstance(state, tuple):
        return tuple(s.repeat_interleave(times, dim=1) for s in state)
    return state.repeat_interleave(times, dim=1)


class Forecaster(nn.Module):
    """Normalisation, channel handling, heads and losses shared by the three models."""

    def __init__(self, cfg: ForecasterConfig):
        super().__init__()
        self.cfg = cfg
        self.ci = cfg.channels == "independent"
        self.k = cfg.outputs()
        self.series_in = 1 if self.ci else cfg.n_targets  # target values per step and sample
        self.series_out = self.k * self.series_in  # outputs per step and sample
        self.register_buffer("q", torch.tensor(cfg.quantiles()), persistent=False)

    def forward(self, x: Tensor, cov_past: Tensor | None = None,
                cov_future: Tensor | None = None) -> Tensor:
        cfg = self.cfg
        b, length, c = x.shape
        if length != cfg.lookback or c != cfg.n_targets:
            raise ValueError(f"expected x of shape (batch, {cfg.lookback}, {cfg.n_targets}), "
                             f"found {tuple(x.shape)}")
        cov_past = x.new_zeros(b, length, 0) if cov_past is None else cov_past
        cov_future = x.new_zeros(b, cfg.horizon, 0) if cov_future is None else cov_future
        if cov_past.shape[-1] != cfg.n_past or cov_future.shape[-1] != cfg.n_known:
            raise ValueError(f"expected {cfg.n_past} past and {cfg.n_known} future covariates, "
                             f"found {cov_past.shape[-1]} and {cov_future.shape[-1]}")
        if cfg.norm == "last":
            loc, scale = x[:, -1:, :], torch.ones_like(x[:, -1:, :])
        elif cfg.norm == "revin":
            loc = x.mean(1, keepdim=True)
            scale = (x.var(1, keepdim=True, unbiased=False) + 1e-5).sqrt()
        else:
            loc, scale = torch.zeros_like(x[:, -1:, :]), torch.ones_like(x[:, -1:, :])
        xn = (x - loc) / scale
        if self.ci:  # (b, L, c) -> (b * c, L, 1), covariates copied beside each series
            xn = xn.transpose(1, 2).reshape(b * c, length, 1)
            cov_past = cov_past.repeat_interleave(c, dim=0)
            cov_future = cov_future.repeat_interleave(c, dim=0)
        out = self.body(xn, cov_past, cov_future)  # (n, H, series_out)
        if self.ci:
            out = out.reshape(b, c, cfg.horizon, self.k).transpose(1, 2)
        else:
            out = out.reshape(b, cfg.horizon, c, self.k)
        loc, scale = loc.unsqueeze(-1), scale.unsqueeze(-1)  # (b, 1, c, 1)
        if cfg.head == "gaussian":
            mean = out[..., :1] * scale + loc
            std = (F.softplus(out[..., 1:]) + 1e-3) * scale
            return torch.cat([mean, std], dim=-1)
        return out * scale + loc

    def body(self, x: Tensor, cov_past: Tensor, cov_future: Tensor) -> Tensor:
        raise NotImplementedError

    def loss(self, out: Tensor, y: Tensor) -> Tensor:
        """The training loss of ``forward``'s output against targets ``y`` (batch, H, C)."""
        head = self.cfg.head
        if head == "point":
            err = out[..., 0] - y
            return err.pow(2).mean() if self.cfg.loss == "mse" else err.abs().mean()
        if head == "quantile":
            diff = y.unsqueeze(-1) - out
            return torch.maximum(self.q * diff, (self.q - 1) * diff).mean()
        mean, std = out[..., 0], out[..., 1]
        return (std.log() + 0.5 * ((y - mean) / std) ** 2).mean() + 0.5 * math.log(2 * math.pi)

    def point(self, out: Tensor) -> Tensor:
        """(batch, H, C) point forecasts: the value, the median, or the Gaussian mean."""
        if self.cfg.head == "quantile":
            return out[..., self.cfg.quantiles().index(0.5)]
        return out[..., 0]

    def interval(self, out: Tensor, level: float) -> tuple[Tensor, Tensor]:
        """Lower and upper bounds of the central ``level`` interval, (batch, H, C) each."""
        if self.cfg.head == "gaussian":
            z = torch.distributions.Normal(0.0, 1.0).icdf(torch.tensor(0.5 + level / 2)).item()
            return out[..., 0] - z * out[..., 1], out[..., 0] + z * out[..., 1]
        if self.cfg.head == "quantile":
            qs = self.cfg.quantiles()
            ordered = out.sort(dim=-1).values  # quantile heads may cross; sorting uncrosses them
            lo, hi = round((1 - level) / 2, 6), round((1 + level) / 2, 6)
            if lo not in qs:
                raise UserError(f"the model was trained for interval levels {self.cfg.levels}, "
                                f"not {level}.")
            return ordered[..., qs.index(lo)], ordered[..., qs.index(hi)]
        raise UserError("the model makes point forecasts only; train it with --head quantile "
                        "or --head gaussian for intervals.")


class DirectRNN(Forecaster):
    """Recurrent encoder, linear head to all H steps at once."""

    def __init__(self, cfg: ForecasterConfig):
        super().__init__(cfg)
        self.encoder = _recurrent(cfg, self.series_in + cfg.n_past, cfg.hidden)
        self.head = nn.Linear(cfg.hidden + cfg.horizon * cfg.n_known,
                              cfg.horizon * self.series_out)
        self.drop = nn.Dropout(cfg.dropout)

    def body(self, x: Tensor, cov_past: Tensor, cov_future: Tensor) -> Tensor:
        out, _ = self.encoder(torch.cat([x, cov_past], dim=-1))
        features = torch.cat([self.drop(out[:, -1]), cov_future.flatten(1)], dim=-1)
        return self.head(features).reshape(x.shape[0], self.cfg.horizon, self.series_out)


class Seq2Seq(Forecaster):
    """Encoder, then a decoder over the horizon reading the future covariates and positions."""

    POSITION = 16

    def __init__(self, cfg: ForecasterConfig):
        super().__init__(cfg)
        self.encoder = _recurrent(cfg, self.series_in + cfg.n_past, cfg.hidden)
        self.position = nn.Parameter(torch.randn(cfg.horizon, self.POSITION) * 0.1)
        self.decoder = _recurrent(cfg, cfg.n_known + self.POSITION, cfg.hidden)
        self.head = nn.Linear(cfg.hidden, self.series_out)
        self.drop = nn.Dropout(cfg.dropout)

    def body(self, x: Tensor, cov_past: Tensor, cov_future: Tensor) -> Tensor:
        _, state = self.encoder(torch.cat([x, cov_past], dim=-1))
        position = self.position.expand(x.shape[0], -1, -1)
        out, _ = self.decoder(torch.cat([cov_future, position], dim=-1), state)
        return self.head(self.drop(out))


class SegRNN(Forecaster):
    """Segment-wise embedding, recurrence over segments, parallel multi-step decoding."""

    def __init__(self, cfg: ForecasterConfig):
        super().__init__(cfg)
        w = self.w = cfg.segment_length()
        self.n_in = math.ceil(cfg.lookback / w)
        self.n_out = math.ceil(cfg.horizon / w)
        d = cfg.hidden
        self.embed = nn.Sequential(nn.Linear(w * (self.series_in + cfg.n_past), d), nn.ReLU())
        self.rnn = _recurrent(cfg, d, d)
        if self.ci:  # position and channel embeddings, half of the width each (as SegRNN)
            self.position = nn.Parameter(torch.randn(self.n_out, d // 2))
            self.channel = nn.Parameter(torch.randn(cfg.n_targets, d - d // 2))
        else:
            self.position = nn.Parameter(torch.randn(self.n_out, d))
        self.future = nn.Linear(w * cfg.n_known, d) if cfg.n_known else None
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d, w * self.series_out)

    def _segments(self, values: Tensor, count: int, left: bool) -> Tensor:
        """(n, T, f) -> (n, count, w * f), padded by repeating the edge value."""
        n, length, f = values.shape
        pad = count * self.w - length
        if pad:
            edge = values[:, :1] if left else values[:, -1:]
            fill = edge.expand(n, pad, f) if length else values.new_zeros(n, pad, f)
            values = torch.cat([fill, values] if left else [values, fill], dim=1)
        return values.reshape(n, count, self.w, f).reshape(n, count, self.w * f)

    def body(self, x: Tensor, cov_past: Tensor, cov_future: Tensor) -> Tensor:
        cfg, n, d = self.cfg, x.shape[0], self.cfg.hidden
        segs = self._segments(torch.cat([x, cov_past], dim=-1), self.n_in, left=True)
        _, state = self.rnn(self.embed(segs))
        if self.ci:
            c = cfg.n_targets
            emb = torch.cat([self.position.unsqueeze(0).expand(c, -1, -1),
                             self.channel.unsqueeze(1).expand(-1, self.n_out, -1)], dim=-1)
            dec_in = emb.repeat(n // c, 1, 1)  # samples are ordered (batch, channel)
        else:
            dec_in = self.position.unsqueeze(0).expand(n, -1, -1)
        if self.future is not None:
            dec_in = dec_in + self.future(self._segments(cov_future, self.n_out, left=False))
        out, _ = self.rnn(dec_in.reshape(n * self.n_out, 1, d), _repeat_state(state, self.n_out))
        y = self.head(self.drop(out[:, 0]))  # (n * n_out, w * series_out)
        y = y.reshape(n, self.n_out * self.w, self.series_out)
        return y[:, : cfg.horizon]
