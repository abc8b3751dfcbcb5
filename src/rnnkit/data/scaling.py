"""Per-variable scaling of series, fitted on the training part only and saved with the run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from rnnkit.errors import UserError

SCALERS = ("standard", "robust", "none")


class Scaler:
    """Per-variable affine scaling ``(x - center) / scale``, fitted on the training part only.

    ``standard``: mean and standard deviation; ``robust``: median and interquartile range (for
    series with outliers); ``none``: the identity.
    """

    def __init__(self, kind: str, center: np.ndarray, scale: np.ndarray):
        self.kind = kind
        self.center = np.asarray(center, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, values: np.ndarray, kind: str, names: Sequence[str]) -> Scaler:
        if kind not in SCALERS:
            raise UserError(f"scaler must be one of {', '.join(SCALERS)}, found {kind!r}.")
        values = np.asarray(values, dtype=np.float64)
        width = values.shape[1]
        if kind == "none":
            return cls(kind, np.zeros(width), np.ones(width))
        if kind == "standard":
            center, scale = values.mean(0), values.std(0)
        else:
            q25, center, q75 = np.percentile(values, [25, 50, 75], axis=0)
            scale = q75 - q25
            # a mostly flat series (IQR 0) still scales by its spread
            scale = np.where(scale > 0, scale, values.std(0))
        for j, name in enumerate(names):
            if not scale[j] > 1e-12 * max(1.0, abs(center[j])):
                raise UserError(f"column {name!r} is constant ({values[0, j]:g}) in the "
                                "training part, so there is nothing to learn or scale; remove it.")
        return cls(kind, center, scale)

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (values - self.center) / self.scale

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.scale + self.center

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "center": self.center.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Scaler:
        return cls(d["kind"], np.array(d["center"]), np.array(d["scale"]))

