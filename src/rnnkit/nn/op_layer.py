"""What the five recurrent layers share: each runs a recurrence op of ``rnnkit.ops`` on its flat
weights, the fast one or its plain-loop reference, picked by ``impl`` ("fast" | "reference": a
constructor keyword and an attribute that may be changed later, e.g. for checks).
"""

from __future__ import annotations

from torch import Tensor, nn

IMPLS = ("fast", "reference")


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ValueError(f"expected impl to be one of {', '.join(IMPLS)}, found {impl!r}")
    return impl


def check_sizes(low: int = 1, **sizes) -> None:
    """Each size an integer >= ``low`` (not a bool), or a ValueError naming it."""
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ValueError(f"expected {name} to be an integer >= {low}, found {value!r}")


class OpLayer(nn.Module):
    """Subclasses set ``fast_op`` and ``reference_op`` (same signature), fill
    ``_flat_weights_names`` in the ops' weight order, and set the attributes ``_options`` reads."""

    _flat_weights_names: list[str]

    @property
    def _flat_weights(self) -> list[Tensor]:
        """The parameters in the order the ops (and torch._VF) expect."""
        return [self._parameters[name] for name in self._flat_weights_names]

    def _options(self) -> dict:
        return {
            "num_layers": self.num_layers,
            "bidirectional": self.bidirectional,
            "dropout": self.dropout,
            "training": self.training,
            "batch_first": self.batch_first,
        }

    def _op(self):
        check_impl(self.impl)
        return self.fast_op if self.impl == "fast" else self.reference_op

    def forward(self, x, hx=None, lengths=None):
        """``x``: ``(T, B, F)`` (``(B, T, F)`` if batch_first), ``(T, F)`` unbatched, or a
        PackedSequence (then the output is one too). Returns ``(output, h_n)``, LSTM
        ``(output, (h_n, c_n))``, like torch.nn.

        ``lengths``: one int per sequence, in 1..T, as a list or an integer tensor on the CPU or
        on ``x``'s device (a GPU tensor is copied to the CPU, as packing needs). Outputs past a
        sequence's end are zero and its final state is the one at its own last step (the reverse
        direction starts there).
        """
        unbatched = isinstance(x, Tensor) and x.dim() == 2
        batch_dim = 0 if self.batch_first else 1
        if unbatched:
            if lengths is not None:
                raise ValueError("expected lengths=None with an unbatched (2-D) input, found both")
            x, hx = x.unsqueeze(batch_dim), _map_state(hx, _unsqueeze)
        out, state = self._op()(x, self._flat_weights, hx, lengths, **self._options())
        if unbatched:
            out, state = out.squeeze(batch_dim), _map_state(state, lambda s: s.squeeze(1))
        return out, state


def _unsqueeze(s):
    if not isinstance(s, Tensor) or s.dim() != 2:
        found = tuple(s.shape) if isinstance(s, Tensor) else type(s).__name__
        raise ValueError(
            f"expected a 2-D state (layers * directions, hidden) for unbatched input, found {found}"
        )
    return s.unsqueeze(1)


def _map_state(state, fn):
    if state is None:
        return None
    return tuple(fn(s) for s in state) if isinstance(state, (tuple, list)) else fn(state)
