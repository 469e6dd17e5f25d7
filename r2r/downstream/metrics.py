"""Classification scores from predictions: confusion matrix, top-1 accuracy, macro-F1, per-category accuracy.

Written here rather than taken from torchmetrics or scikit-learn because neither is a dependency of the toolkit, and
everything follows from one 20x20 confusion matrix in a few lines of numpy. Macro-F1 follows scikit-learn's
`f1_score(average="macro")`: the mean F1 over the categories that occur in the truth or the predictions (a category
predicted but absent from the test set counts with F1 0; one neither present nor predicted is left out). Pure
arithmetic: no torch, no files.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from synfashion.taxonomy import CATEGORIES


def confusion_matrix(labels: Sequence[int], predictions: Sequence[int], n: int = len(CATEGORIES)) -> np.ndarray:
    """counts[true, predicted] (int64, n x n)."""
    y, p = np.asarray(labels, dtype=np.int64), np.asarray(predictions, dtype=np.int64)
    if y.shape != p.shape:
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    if y.size and (y.min() < 0 or y.max() >= n or p.min() < 0 or p.max() >= n):
        raise ValueError(f"labels and predictions must lie in 0..{n - 1}")
    return np.bincount(y * n + p, minlength=n * n).reshape(n, n)


@dataclass(frozen=True)
class Scores:
    """The scores of one model on one test set."""

    images: int
    top1: float
    macro_f1: float
    per_category_accuracy: dict[str, float | None]  # None: the category has no image in the test set
    confusion: list[list[int]]  # [true][predicted], categories in ClassLabel order

    def to_dict(self) -> dict:
        return {"images": self.images, "top1": self.top1, "macro_f1": self.macro_f1,
                "per_category_accuracy": self.per_category_accuracy, "confusion": self.confusion}


def scores(labels: Sequence[int], predictions: Sequence[int]) -> Scores:
    """Top-1, macro-F1 and per-category accuracy (recall) of `predictions` against `labels`."""
    cm = confusion_matrix(labels, predictions)
    total = int(cm.sum())
    if total == 0:
        raise ValueError("no predictions to score")
    tp = np.diag(cm).astype(np.float64)
    support, predicted = cm.sum(axis=1), cm.sum(axis=0)
    present = (support + predicted) > 0
    denom = support + predicted  # F1 = 2 TP / (2 TP + FP + FN) = 2 TP / (support + predicted)
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    per_cat = {c: (float(tp[i] / support[i]) if support[i] else None) for i, c in enumerate(CATEGORIES)}
    return Scores(images=total, top1=float(tp.sum() / total), macro_f1=float(f1[present].mean()),
                  per_category_accuracy=per_cat, confusion=cm.tolist())
