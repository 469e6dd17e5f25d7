"""loaders.samplers, loaders.selection, loaders.distributed: exactly-once splits, balance, fixed subsets."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loaders import BalancedSampler, DistInfo, EpochSampler, Selection, eval_subset_keys


@settings(max_examples=60, deadline=None)
@given(n=st.integers(0, 200), world=st.integers(1, 7), seed=st.integers(0, 3), epoch=st.integers(0, 3),
       shuffle=st.booleans())
def test_epoch_sampler_covers_every_index_exactly_once_across_ranks(n, world, seed, epoch, shuffle):
    seen = []
    for rank in range(world):
        s = EpochSampler(n, dist=DistInfo(rank, world), shuffle=shuffle, seed=seed)
        s.set_epoch(epoch)
        got = list(s)
        assert len(got) == len(s) and all(e == epoch for _, e in got)
        seen += [i for i, _ in got]
    assert sorted(seen) == list(range(n))


def test_epoch_sampler_is_seeded_and_resumable():
    a = [i for i, _ in EpochSampler(50, seed=1)]
    assert a == [i for i, _ in EpochSampler(50, seed=1)] and a != [i for i, _ in EpochSampler(50, seed=2)]
    s = EpochSampler(50, seed=1)
    s.set_epoch(1)
    assert [i for i, _ in s] != a
    s.set_epoch(0)
    s.set_start(20)
    assert [i for i, _ in s] == a[20:] and len(s) == 30


def test_even_epoch_sampler_gives_equal_counts():
    lens = [len(EpochSampler(103, dist=DistInfo(r, 4), even=True)) for r in range(4)]
    assert lens == [25, 25, 25, 25]


def test_balanced_sampler_draws_categories_equally_and_splits_positions():
    labels = [0] * 90 + [1] * 9 + [2] * 1
    s = BalancedSampler(labels, num_samples=300, seed=0)
    counts = Counter(labels[i] for i, _ in s)
    assert counts == {0: 100, 1: 100, 2: 100}
    per_rank = [[i for i, _ in BalancedSampler(labels, num_samples=300, seed=0, dist=DistInfo(r, 3))] for r in range(3)]
    full = [i for i, _ in s]
    assert sorted(sum(per_rank, [])) == sorted(full) and all(len(p) == 100 for p in per_rank)


def test_eval_subset_is_stable_under_reordering_and_growth():
    rows = [(f"k{i}", "hat" if i % 3 else "coat") for i in range(300)]
    a = eval_subset_keys(rows, 5, seed=1)
    assert a == eval_subset_keys(list(reversed(rows)), 5, seed=1)
    assert Counter("coat" if int(k[1:]) % 3 == 0 else "hat" for k in a) == {"coat": 5, "hat": 5}
    grown = eval_subset_keys(rows + [(f"new{i}", "hat") for i in range(20)], 5, seed=1)
    assert len(grown & a) >= 5  # the coats are untouched; new hats only displace where they hash lower
    assert eval_subset_keys(rows, 5, seed=2) != a


def test_selection_matches_projects_by_name_or_global_id():
    sel = Selection(projects=("coat/coat-p1", "hat-p0"))
    assert sel.matches("k", "coat", "front", "coat-p1")
    assert sel.matches("k", "hat", "front", "hat-p0")
    assert not sel.matches("k", "hat", "front", "coat-p1")
    with pytest.raises(ValueError, match="splits are"):
        Selection(split="dev")


def test_dist_info_resolution(monkeypatch):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert DistInfo.resolve() == DistInfo(0, 1)
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert DistInfo.resolve() == DistInfo(3, 4)
    assert DistInfo.resolve(1, 2) == DistInfo(1, 2)
    with pytest.raises(ValueError):
        DistInfo.resolve(rank=1)
    with pytest.raises(ValueError):
        DistInfo(4, 4)
