"""The optimiser a TrainConfig asks for: SGD (momentum, Nesterov), Adam or AdamW."""

from __future__ import annotations

import torch

from rnnkit.errors import UserError
from rnnkit.train.config import TrainConfig


def build_optimizer(params: list[torch.nn.Parameter], cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay defaults to 0.01 for AdamW and 0 otherwise."""
    wd = cfg.weight_decay if cfg.weight_decay is not None else (
        0.01 if cfg.optimizer == "adamw" else 0.0)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov,
                               weight_decay=wd)
    if cfg.nesterov:
        raise UserError(f"nesterov applies to the sgd optimizer, not {cfg.optimizer}.")
    opt = torch.optim.Adam if cfg.optimizer == "adam" else torch.optim.AdamW
    # The fused kernel makes one pass over each tensor instead of one per operation: a CPU
    # sentiment step with two large embedding tables takes 0.6-0.7x the time (BENCHMARKS.md).
    fused = all(p.device.type in ("cpu", "cuda") and p.dtype.is_floating_point for p in params)
    return opt(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=wd, fused=fused)
