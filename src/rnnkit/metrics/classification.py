"""Classification metrics: accuracy, macro-F1, per-class precision and recall, confusion matrix."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch


def confusion_matrix(y_true: Sequence[int], y_pred: Sequence[int], num_classes: int
                     ) -> torch.Tensor:
    """``cm[i, j]``: how many examples of true class ``i`` were predicted as class ``j``."""
    t = torch.as_tensor(list(y_true), dtype=torch.long)
    p = torch.as_tensor(list(y_pred), dtype=torch.long)
    if t.shape != p.shape:
        raise ValueError(f"{len(t)} true labels but {len(p)} predictions")
    return torch.bincount(t * num_classes + p, minlength=num_classes * num_classes).view(
        num_classes, num_classes)


def classification_metrics(y_true: Sequence[int], y_pred: Sequence[int],
                           labels: Sequence[str]) -> dict:
    """Accuracy, macro-F1 and per-class precision, recall, F1 and support.

    A class with no predictions has precision 0, one with no examples recall 0 (and F1 0); the
    macro average runs over every class the model knows.
    """
    k = len(labels)
    cm = confusion_matrix(y_true, y_pred, k).double()
    tp = cm.diag()
    predicted = cm.sum(0)
    support = cm.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), torch.zeros_like(tp))
    recall = torch.where(support > 0, tp / support.clamp(min=1), torch.zeros_like(tp))
    denom = precision + recall
    f1 = torch.where(denom > 0, 2 * precision * recall / denom.clamp(min=1e-12),
                     torch.zeros_like(tp))
    n = cm.sum()
    return {
        "accuracy": float(tp.sum() / n) if n > 0 else 0.0,
        "macro_f1": float(f1.mean()),
        "per_class": {
            str(label): {"precision": float(precision[i]), "recall": float(recall[i]),
                         "f1": float(f1[i]), "support": int(support[i])}
            for i, label in enumerate(labels)
        },
        "confusion_matrix": cm.long().tolist(),
    }


def plot_confusion_matrix(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                          title: str = "confusion matrix") -> Path:
    """Save the confusion matrix as a PNG: counts in each cell, rows true, columns predicted."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm_t = torch.as_tensor(cm, dtype=torch.float64)
    k = len(labels)
    size = min(12.0, 2.5 + 0.6 * k)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    row_share = cm_t / cm_t.sum(1, keepdim=True).clamp(min=1)
    ax.imshow(row_share.numpy(), cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(k), [str(s) for s in labels], rotation=45 if k > 4 else 0, ha="right"
                  if k > 4 else "center")
    ax.set_yticks(range(k), [str(s) for s in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    if k <= 30:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{int(cm_t[i, j])}", ha="center", va="center",
                        color="white" if row_share[i, j] > 0.5 else "black", fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
