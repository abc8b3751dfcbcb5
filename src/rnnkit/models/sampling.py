"""Sampling from a recurrent language model: temperature, top-k, top-p, several samples at once.

The prompt is read once with a full forward pass; after that each new token costs one ``step``
of the recurrent layers, so generation time grows linearly with its length. On CUDA the steps
replay CUDA graphs (``rnnkit.nn.cuda_graphs``).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from rnnkit.errors import UserError
from rnnkit.models.sampling_checks import check_sampling
from rnnkit.nn.cuda_graphs import graphed_step


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                  top_p: float | None = None) -> Tensor:
    """Scale by the temperature and set the logits outside top-k / top-p to -inf.

    ``logits`` (batch, vocab). Top-p keeps the most likely tokens whose probabilities sum to at
    least ``top_p`` (always at least one); with both, top-k is applied first.
    """
    logits = logits / temperature
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        # Drop a token when the more likely ones before it already reach top_p.
        drop = (probs.cumsum(dim=-1) - probs) >= top_p
        drop[:, 0] = False
        logits = logits.masked_fill(drop.scatter(1, order, drop), float("-inf"))
    return logits


def sample_next(logits: Tensor, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """One token per row of ``logits`` (batch, vocab); temperature 0 picks the most likely."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(filter_logits(logits.float(), temperature, top_k, top_p), dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


@torch.inference_mode()
def generate(model, prompt: list[int], length: int, *, samples: int = 1,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             seed: int | None = None,
             on_token: Callable[[Tensor], None] | None = None) -> Tensor:
    """Continue ``prompt`` (token ids) by ``length`` tokens, ``samples`` times in one batch.

    ``model`` has ``forward(tokens, state) -> (logits, state)`` and
    ``step(token, state) -> (logits, state)``. ``on_token`` is called with each new column of
    tokens (shape (samples,)) as soon as it is drawn. Returns (samples, length) token ids.
    """
    check_sampling(length, temperature, top_k, top_p, samples)
    if not prompt:
        raise UserError("the prompt is empty; give at least one token of text to start from")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)
        tokens = torch.tensor(prompt, dtype=torch.long, device=device)
        logits, state = model(tokens.unsqueeze(0).expand(samples, -1), None)
        logits = logits[:, -1]
        # on CUDA each step replays a captured graph (rnnkit.nn.cuda_graphs); its outputs are
        # valid until the next step, which is all this loop needs
        step = graphed_step(model) or model.step
        out = torch.empty(samples, length, dtype=torch.long, device=device)
        for i in range(length):
            token = sample_next(logits, temperature, top_k, top_p, generator)
            out[:, i] = token
            if on_token is not None:
                on_token(token)
            if i + 1 < length:
                logits, state = step(token, state)
        return out
    finally:
        model.train(was_training)
