"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019) between two feature sets, in any feature space.

Each set's manifold is the union of balls around its points, each ball's radius the distance to that point's k-th
nearest neighbour in the same set (k = 3, the paper's default; the point itself is not its own neighbour, but an
exact duplicate is). precision = the fraction of fake points inside the real manifold; recall = the fraction of
real points inside the fake manifold; "inside" includes the boundary (distance <= radius), as the paper's
reference code (NVlabs `precision-recall`) compares squared Euclidean distances. Distances are computed in blocks
(`block` rows x `block` columns at a time, the k smallest per row merged across column blocks), so memory stays
at O(block^2) whatever the set sizes; float32 (the reference code's) or float64. No file I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

K = 3
BLOCK = 2048


@dataclass(frozen=True)
class PRResult:
    precision: float
    recall: float
    k: int
    n_real: int
    n_fake: int

    def as_dict(self) -> dict:
        return {"precision": self.precision, "recall": self.recall, "k": self.k, "n_real": self.n_real,
                "n_fake": self.n_fake}


def _sq_dist(a: torch.Tensor, b: torch.Tensor, a_sq: torch.Tensor, b_sq: torch.Tensor) -> torch.Tensor:
    return (a_sq[:, None] + b_sq[None, :] - 2 * (a @ b.T)).clamp_min_(0)


def knn_radii(x: torch.Tensor, k: int = K, *, block: int = BLOCK) -> torch.Tensor:
    """[N] squared distance from each row of x to its k-th nearest other row (self excluded by index)."""
    n = x.shape[0]
    if n <= k:
        raise ValueError(f"the k-th nearest neighbour (k={k}) needs more than {k} feature vectors, got {n}")
    sq = (x * x).sum(1)
    out = torch.empty(n, dtype=x.dtype, device=x.device)
    for i in range(0, n, block):
        rows = x[i:i + block]
        best = None  # the k + 1 smallest distances so far (self included, at 0)
        for j in range(0, n, block):
            d = _sq_dist(rows, x[j:j + block], sq[i:i + block], sq[j:j + block])
            lo, hi = max(i, j), min(i + rows.shape[0], j + d.shape[1])
            if lo < hi:  # this block holds some rows' own column: pin it to exactly 0
                idx = torch.arange(lo, hi, device=x.device)
                d[idx - i, idx - j] = 0
            cand = d if best is None else torch.cat([best, d], dim=1)
            best = cand.topk(min(k + 1, cand.shape[1]), dim=1, largest=False).values
        out[i:i + rows.shape[0]] = best[:, k]  # index 0 is the row itself
    return out


def inside(points: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, *, block: int = BLOCK) -> torch.Tensor:
    """[M] bool: is each point within the radius (squared, inclusive) of at least one centre."""
    p_sq, c_sq = (points * points).sum(1), (centres * centres).sum(1)
    out = torch.zeros(points.shape[0], dtype=torch.bool, device=points.device)
    for i in range(0, points.shape[0], block):
        hit = torch.zeros(min(block, points.shape[0] - i), dtype=torch.bool, device=points.device)
        for j in range(0, centres.shape[0], block):
            d = _sq_dist(points[i:i + block], centres[j:j + block], p_sq[i:i + block], c_sq[j:j + block])
            hit |= (d <= radii[None, j:j + block]).any(dim=1)
        out[i:i + block] = hit
    return out


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = K, *, block: int = BLOCK,
                     dtype: torch.dtype = torch.float32) -> PRResult:
    """Improved precision and recall of [N, D] fake features against [M, D] real ones (module docstring)."""
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"precision/recall needs two [N, D] feature sets of one D, got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    if dtype not in (torch.float32, torch.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    x, y = real.detach().to(dtype), fake.detach().to(dtype)
    r_real, r_fake = knn_radii(x, k, block=block), knn_radii(y, k, block=block)
    precision = inside(y, x, r_real, block=block).double().mean().item()
    recall = inside(x, y, r_fake, block=block).double().mean().item()
    return PRResult(precision=precision, recall=recall, k=k, n_real=x.shape[0], n_fake=y.shape[0])


__all__ = ["PRResult", "inside", "knn_radii", "precision_recall"]
