"""The Stepper of a PyTorch language model: what the server's batched generation calls.

A state is the model's own recurrent state for one sequence: a tensor (layers, 1, hidden), or a
tuple of them for the LSTM's (h, c). Rows are batched by concatenating along dimension 1 and split
back into copies, so no returned state shares storage with another sequence's, and nothing here
writes into a state it was given: sessions and requests can hold on to states safely.
"""

from __future__ import annotations

import numpy as np
import torch

from rnnkit.nn.cuda_graphs import graphed_step

# prompts are read in chunks: the logits of a 100,000-token prompt would otherwise all be held
_CHUNK = 2048


def _cat(states: list):
    if isinstance(states[0], tuple):
        return tuple(_cat([s[i] for s in states]) for i in range(len(states[0])))
    return torch.cat(states, dim=1)


def _split(state, n: int) -> list:
    if isinstance(state, tuple):
        parts = [_split(s, n) for s in state]
        return [tuple(p[i] for p in parts) for i in range(n)]
    # clone: a view would keep the whole batch's storage alive inside a session
    return [s.clone() for s in state.split(1, dim=1)]


def _nbytes(state) -> int:
    if isinstance(state, tuple):
        return sum(_nbytes(s) for s in state)
    return state.numel() * state.element_size()


def _numpy(logits: torch.Tensor) -> np.ndarray:
    return logits.float().cpu().numpy()


class TorchStepper:
    """A loaded ``TextGenerator`` behind the Stepper interface (see the serving contract)."""

    def __init__(self, generator):
        self.model = generator.model.eval()
        self.tokenizer = generator.tokenizer
        self.vocab_size = self.tokenizer.vocab_size
        self.device = next(self.model.parameters()).device

    def encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, what="the prompt")

    def stream_decoder(self):
        return self.tokenizer.stream_decoder()

    @torch.inference_mode()
    def prefill(self, ids: list[int], state) -> tuple[np.ndarray, object]:
        """Feed ``ids`` (at least one) after ``state`` (None: a fresh sequence); the logits of
        the last position (vocab,) and the state after ``ids``."""
        if not ids:
            raise ValueError("prefill needs at least one token")
        tokens = torch.tensor(ids, dtype=torch.long, device=self.device).unsqueeze(0)
        for start in range(0, tokens.shape[1], _CHUNK):
            logits, state = self.model(tokens[:, start : start + _CHUNK], state)
        return _numpy(logits[0, -1]), state

    @torch.inference_mode()
    def step(self, tokens: np.ndarray, states: list) -> tuple[np.ndarray, list]:
        """One token per row, each row after its own state -> (n, vocab) logits, n new states."""
        token = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=self.device)
        # on CUDA a replayed graph (its outputs are views: _split and _numpy copy them)
        step = graphed_step(self.model) or self.model.step
        logits, state = step(token, _cat(states))
        return _numpy(logits), _split(state, len(states))

    def state_nbytes(self, state) -> int:
        return _nbytes(state)
