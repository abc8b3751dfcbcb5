"""A CTC speech recogniser: features -> (conv front end) -> stacked recurrent layers -> characters.

The optional front end is a stack of causal 1-D convolutions over time, each of stride 2, so the
recurrent layers see 2x or 4x fewer frames; being causal (padded on the left only), it also runs
chunk by chunk as audio arrives. The recurrent layers are any rnnkit layer (bidirectional for
the best accuracy, unidirectional to stream with ``step``); a linear layer gives log-probabilities
over the blank (index 0) and the characters; the loss is CTC (Graves et al. 2006).

``ensemble > 1`` holds that many recognisers trained independently (``rnnkit.train.ensemble``):
each reads the recording and the transcript is the candidate they find most probable together
(``rnnkit.models.ctc_decoding.rescore``); their frame posteriors are not averaged, since each
places its character spikes on frames of its own and the average of two spikes a frame apart is
blank on both.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rnnkit.errors import UserError
from rnnkit.nn.registry import check_arch, recurrent_layer

BLANK = 0
SUBSAMPLES = (1, 2, 4)  # feature frames per recurrent step: 0, 1 or 2 stride-2 convolutions


@dataclass
class CTCRecognizerConfig:
    input_size: int = 40  # feature dimension
    vocab_size: int = 28  # characters + 1 for the blank
    arch: str = "lstm"
    # 2 x 160 with 4x subsampling: on FSDD's unseen speakers 68% against 59% for 3 x 192 with
    # 2x, in 4 minutes against 6 (BENCHMARKS.md, speech, leave one speaker out)
    layers: int = 2
    hidden: int = 160  # per direction
    bidirectional: bool = True
    subsample: int = 4  # 1, 2 or 4: frames per recurrent step, through stride-2 convolutions
    conv_channels: int = 128
    conv_kernel: int = 3
    dropout: float = 0.1
    ensemble: int = 1  # independently trained recognisers whose transcripts are rescored together

    def __post_init__(self):
        check_arch(self.arch)
        if self.subsample not in SUBSAMPLES:
            raise UserError(f"subsample must be 1, 2 or 4, found {self.subsample}.")
        if self.ensemble < 1:
            raise UserError(f"ensemble must be at least 1, found {self.ensemble}.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> CTCRecognizerConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class CausalConv(nn.Module):
    """Conv1d over time, stride 2, padded with ``kernel - 1`` zero frames on the left: output
    ``j`` reads input frames ``2j - kernel + 1 .. 2j``, so ``T`` frames give ``ceil(T / 2)``."""

    stride = 2

    def __init__(self, channels_in: int, channels_out: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.conv = nn.Conv1d(channels_in, channels_out, kernel, stride=self.stride)

    def forward(self, x: Tensor) -> Tensor:  # (B, T, C)
        x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))
        return F.gelu(self.conv(x)).transpose(1, 2)

    def stream(self, x: Tensor, tail: Tensor | None) -> tuple[Tensor, Tensor]:
        """New frames ``x (B, t, C)`` and the unconsumed padded input ``tail`` -> the outputs now
        complete and the new tail; concatenated, the outputs equal ``forward`` on all frames."""
        if tail is None:
            tail = x.new_zeros(x.shape[0], self.kernel - 1, x.shape[2])
        buf = torch.cat([tail, x], dim=1)
        n = (buf.shape[1] - self.kernel) // self.stride + 1 if buf.shape[1] >= self.kernel else 0
        if n == 0:
            return x.new_zeros(x.shape[0], 0, self.conv.out_channels), buf
        used = buf[:, :(n - 1) * self.stride + self.kernel]
        out = F.gelu(self.conv(used.transpose(1, 2))).transpose(1, 2)
        return out, buf[:, n * self.stride:]


class CTCRecognizer(nn.Module):
    def __init__(self, cfg: CTCRecognizerConfig):
        super().__init__()
        self.cfg = cfg
        convs, width = [], cfg.input_size
        for _ in range(SUBSAMPLES.index(cfg.subsample)):
            convs.append(CausalConv(width, cfg.conv_channels, cfg.conv_kernel))
            width = cfg.conv_channels
        self.convs = nn.ModuleList(convs)
        self.rnn = recurrent_layer(cfg.arch, width, cfg.hidden, cfg.layers, batch_first=True,
                                   dropout=cfg.dropout if cfg.layers > 1 else 0.0,
                                   bidirectional=cfg.bidirectional)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(cfg.hidden * (2 if cfg.bidirectional else 1), cfg.vocab_size)

    def output_lengths(self, lengths: Tensor) -> Tensor:
        """Output frames for ``lengths`` input frames (each stride-2 conv halves, rounding up)."""
        for _ in self.convs:
            lengths = (lengths + 1) // 2
        return lengths

    def forward(self, feats: Tensor, lengths: Tensor, targets: Tensor | None = None,
                target_lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        """``feats (B, T, F)``, ``lengths (B,)`` -> ``(log_probs (B, T', V), out_lengths, loss)``;
        the loss (CTC, averaged over utterances of per-character loss) when targets are given:
        ``targets (B, S)`` padded label ids (1..V-1), ``target_lengths (B,)``."""
        x = feats
        for conv in self.convs:
            x = conv(x)
        out_lengths = self.output_lengths(lengths.cpu())
        y, _ = self.rnn(x, lengths=out_lengths)
        log_probs = F.log_softmax(self.out(self.dropout(y)).float(), dim=-1)
        loss = None
        if targets is not None:
            loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lengths.to(feats.device),
                              target_lengths, blank=BLANK, reduction="mean", zero_infinity=True)
        return log_probs, out_lengths, loss

    @torch.no_grad()
    def stream(self, feats: Tensor, state: dict | None = None) -> tuple[Tensor, dict]:
        """A unidirectional model on the next frames ``feats (B, t, F)`` -> ``(log_probs (B, t',
        V), state)``; chunk after chunk, the outputs equal ``forward`` on the whole input."""
        if self.cfg.bidirectional:
            raise ValueError("expected a unidirectional model to stream, found bidirectional=True")
        state = dict(state or {"tails": [None] * len(self.convs), "rnn": None})
        x, tails = feats, []
        for conv, tail in zip(self.convs, state["tails"], strict=True):
            x, tail = conv.stream(x, tail)
            tails.append(tail)
        h, outs = state["rnn"], []
        for t in range(x.shape[1]):
            y, h = self.rnn.step(x[:, t], h)
            outs.append(y)
        y = torch.stack(outs, 1) if outs else x.new_zeros(x.shape[0], 0, self.out.in_features)
        return F.log_softmax(self.out(y).float(), dim=-1), {"tails": tails, "rnn": h}


class CTCEnsemble(nn.Module):
    """``cfg.ensemble`` recognisers of one config. ``forward`` returns every member's
    log-probabilities, ``(M, B, T', V)``, the shared output lengths and the members' mean loss."""

    def __init__(self, cfg: CTCRecognizerConfig):
        super().__init__()
        self.cfg = cfg
        self.members = nn.ModuleList(CTCRecognizer(cfg) for _ in range(cfg.ensemble))

    def forward(self, feats: Tensor, lengths: Tensor, targets: Tensor | None = None,
                target_lengths: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor | None]:
        outs = [m(feats, lengths, targets, target_lengths) for m in self.members]
        loss = None if targets is None else torch.stack([o[2] for o in outs]).mean()
        return torch.stack([o[0] for o in outs]), outs[0][1], loss


def build_recognizer(cfg: CTCRecognizerConfig) -> CTCRecognizer | CTCEnsemble:
    return CTCRecognizer(cfg) if cfg.ensemble == 1 else CTCEnsemble(cfg)
