"""The sampling settings' checks, without torch: the PyTorch sampler and the onnxruntime
predictor (which must not import torch) give the same sentence for the same mistake."""

from rnnkit.errors import UserError


def check_sampling(length: int, temperature: float, top_k: int | None, top_p: float | None,
                   samples: int) -> None:
    """One sentence for the first sampling setting out of range."""
    if length < 0:
        raise UserError(f"the length must be zero or more tokens, got {length}")
    if temperature < 0:
        raise UserError(f"the temperature must be zero (greedy) or more, got {temperature}")
    if top_k is not None and top_k < 1:
        raise UserError(f"top-k must be at least 1, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise UserError(f"top-p must be in (0, 1], got {top_p}")
    if samples < 1:
        raise UserError(f"the number of samples must be at least 1, got {samples}")
