"""Which SynFashion samples to read: split, categories, views, projects, explicit keys, a fixed evaluation subset.

One `Selection` is applied by every SynFashion source (datasets map-style, streaming, WebDataset) against the
metadata only, before any image is decoded. The evaluation subset is chosen per category by a keyed hash of
each sample's key, so it is the same whatever the shard layout, row order, worker count or machine, and adding
new samples to a release changes it only where a new key hashes lower. This module reads no files.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from synfashion.schema import SPLITS
from synfashion.taxonomy import CATEGORIES, VIEWS, normalize_category


def _tuple(values: str | Iterable[str] | None) -> tuple[str, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        return (values,)
    return tuple(values)


@dataclass(frozen=True)
class Selection:
    """A filter over SynFashion metadata.

    split: one of train/validation/test.
    categories: category names (any spelling `normalize_category` accepts); None keeps all.
    views: front/back/random1/random2; None keeps all.
    projects: project names ("hoodie-p03") or global project ids ("hoodie/hoodie-p03"); None keeps all.
    keys: explicit sample keys; None keeps all.
    eval_per_category: keep a fixed subset of at most this many samples per category (after the filters above).
    eval_seed: salt of that subset (a different seed gives a different, equally fixed subset).
    """

    split: str = "train"
    categories: tuple[str, ...] | None = None
    views: tuple[str, ...] | None = None
    projects: tuple[str, ...] | None = None
    keys: frozenset[str] | None = None
    eval_per_category: int | None = None
    eval_seed: int = 0

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split={self.split!r}; the SynFashion splits are {', '.join(SPLITS)}")
        cats = _tuple(self.categories)
        if cats is not None:
            cats = tuple(normalize_category(c) for c in cats)
        object.__setattr__(self, "categories", cats)
        views = _tuple(self.views)
        if views is not None:
            bad = [v for v in views if v not in VIEWS]
            if bad:
                raise ValueError(f"unknown view(s) {bad}; the views are {', '.join(VIEWS)}")
        object.__setattr__(self, "views", views)
        object.__setattr__(self, "projects", _tuple(self.projects))
        if self.keys is not None:
            object.__setattr__(self, "keys", frozenset(_tuple(self.keys) or ()))
        if self.eval_per_category is not None and self.eval_per_category < 1:
            raise ValueError(f"eval_per_category must be >= 1, got {self.eval_per_category}")

    @property
    def filters_metadata(self) -> bool:
        """Whether anything beyond the split is selected (so rows must be looked at)."""
        return any(x is not None for x in (self.categories, self.views, self.projects, self.keys)) or (
            self.eval_per_category is not None
        )

    def matches(self, key: str, category: str, view: str, project: str) -> bool:
        """The row filters (not the evaluation subset, which needs every row: see `select_rows`)."""
        if self.categories is not None and category not in self.categories:
            return False
        if self.views is not None and view not in self.views:
            return False
        if self.projects is not None and project not in self.projects and f"{category}/{project}" not in self.projects:
            return False
        if self.keys is not None and key not in self.keys:
            return False
        return True

    def select_rows(self, rows: Iterable[tuple[str, str, str, str]]) -> list[int]:
        """Indices of the selected rows among (key, category, view, project) tuples, in their order."""
        kept = [
            (i, key, cat) for i, (key, cat, view, project) in enumerate(rows) if self.matches(key, cat, view, project)
        ]
        if self.eval_per_category is None:
            return [i for i, _, _ in kept]
        chosen = eval_subset_keys(((key, cat) for _, key, cat in kept), self.eval_per_category, self.eval_seed)
        return [i for i, key, _ in kept if key in chosen]


def _rank_of(key: str, seed: int) -> bytes:
    return hashlib.sha256(f"{seed}\x00{key}".encode()).digest()


def eval_subset_keys(rows: Iterable[tuple[str, str]], per_category: int, seed: int = 0) -> frozenset[str]:
    """A fixed subset: per category, the `per_category` keys with the lowest keyed hash.

    >>> sorted(eval_subset_keys([("a", "hat"), ("b", "hat"), ("c", "coat")], 1)) == sorted(
    ...     eval_subset_keys([("c", "coat"), ("b", "hat"), ("a", "hat")], 1))
    True
    """
    by_cat: dict[str, list[str]] = defaultdict(list)
    for key, cat in rows:
        by_cat[cat].append(key)
    chosen: set[str] = set()
    for keys in by_cat.values():
        chosen.update(sorted(keys, key=lambda k: _rank_of(k, seed))[:per_category])
    return frozenset(chosen)


def category_name(value: int | str) -> str:
    """ClassLabel id (SynFashion's order) or name -> name; ValueError for anything that is not one of the 20."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < len(CATEGORIES):
        return CATEGORIES[value]
    if isinstance(value, str) and value in CATEGORIES:
        return value
    raise ValueError(f"{value!r} is not a SynFashion category (a name or a label id 0..{len(CATEGORIES) - 1})")


def category_label(name: str) -> int:
    return CATEGORIES.index(name)
