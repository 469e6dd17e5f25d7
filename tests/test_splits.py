from hypothesis import given, settings
from hypothesis import strategies as st

import pytest

from collections import Counter, defaultdict

from synfashion.schema import SPLITS
from synfashion.splits import DEFAULT_FRACTIONS, SplitConfig, _bounds, assign_splits, find_leaks

# the strings of the regexes [a-z]{1,3}/p[0-9]{1,2} (projects) and t[0-9]{1,2} (textures), built from text
# strategies: st.from_regex drew the same strings at several times the cost (most of this file's time)
_digits = st.text(alphabet="0123456789", min_size=1, max_size=2)
_projects = st.builds("{}/p{}".format, st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=3), _digits)
graphs = st.dictionaries(
    keys=_projects,
    values=st.sets(_digits.map("t{}".format), min_size=1, max_size=4),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(graphs)
def test_no_project_or_texture_in_two_splits(project_textures):
    a = assign_splits(project_textures)
    assert set(a.project_split) == set(project_textures)
    rows = [(a.split_of(p), p, t) for p, ts in project_textures.items() for t in ts]
    assert find_leaks(rows) == []


def _empty_split_fixup(a) -> bool:
    return any(why == "empty-split" for *_, why in a.moved.values())


@settings(max_examples=100, deadline=None)
@given(graphs, graphs)
def test_adding_unrelated_projects_moves_nothing(old, new):
    # New projects get textures of their own ("n" prefix), so they join no existing group; they all live in a
    # category of their own ("new"), and stratification balances each category on its own groups.
    added = {f"new/{p}": {f"n{t}" for t in ts} for p, ts in new.items()}
    before = assign_splits(old)
    after = assign_splits({**old, **added})
    # the empty-split fix-up may legitimately fire for a tiny release; beyond it, nothing moves
    if not _empty_split_fixup(before) and not _empty_split_fixup(after):
        assert all(after.split_of(p) == s for p, s in before.project_split.items())


def _category_counts(a, category_of=lambda p: p.partition("/")[0]):
    counts = defaultdict(Counter)
    for g in a.groups:
        counts[a.home[g[0]]][a.split_of(g[0])] += 1
    return counts


@settings(max_examples=200, deadline=None)
@given(graphs)
def test_every_category_reaches_every_split_it_can_within_its_bounds(project_textures):
    a = assign_splits(project_textures)
    sizes = Counter(a.home[g[0]] for g in a.groups)
    for category, count in _category_counts(a).items():
        n = sizes[category]
        bounds = _bounds(n, list(SPLITS), DEFAULT_FRACTIONS)
        if not _empty_split_fixup(a):
            assert all(lo <= count[s] <= hi for s, (lo, hi) in bounds.items()), (category, n, count)
        if n >= 3:  # every split holds this category (a fix-up only moves groups of categories above their bound)
            assert all(count[s] for s in SPLITS), (category, count)
        elif n == 2:
            assert count["train"] and count["test"] or _empty_split_fixup(a)


def test_small_categories_fill_train_then_test_then_validation():
    a = assign_splits({"c/p1": {"t1"}, "c/p2": {"t2"}, "d/p1": {"u1"}, "d/p2": {"u2"}, "d/p3": {"u3"}})
    assert {a.split_of("c/p1"), a.split_of("c/p2")} == {"train", "test"}
    assert {a.split_of(p) for p in ("d/p1", "d/p2", "d/p3")} == {"train", "validation", "test"}
    assert any("fewer groups than splits" in n and ": c" in n for n in a.notes)


def test_stratify_off_is_pure_hash_placement():
    g = {f"c{i % 60}/p{i}": {f"t{i}"} for i in range(300)}  # 60 categories of 5 groups: some need a repair
    plain = assign_splits(g, SplitConfig(stratify=False))
    strat = assign_splits(g)
    assert not plain.moved and strat.moved
    for p, s in plain.project_split.items():  # a group strat did not move sits where the hash put it
        if p not in strat.moved:
            assert strat.split_of(p) == s
    assert all(strat.split_of(p) == to for p, (_, to, _) in strat.moved.items())


def _twenty_categories(n_groups: int, tag: str = "") -> dict[str, set[str]]:
    return {f"c{c:02d}/p{tag}{i}": {f"t{c}-{tag}{i}"} for c in range(20) for i in range(n_groups)}


def test_adding_a_project_moves_no_group_of_another_category():
    base = _twenty_categories(6)
    before = assign_splits(base)
    for k in range(40):
        after = assign_splits({**base, f"c03/pnew{k}": {f"tnew{k}"}})
        assert not _empty_split_fixup(after)
        changed = {p for p, s in before.project_split.items() if after.split_of(p) != s}
        assert all(p.startswith("c03/") for p in changed), changed


def test_adding_a_project_to_a_category_moves_nothing_while_its_hash_placement_is_within_bounds():
    # The guarantee: groups off their hash split are the only ones that can move, and a category whose hash placement
    # is within its bounds has none. Checked for every one of 200 additions to categories of 30 groups.
    base = _twenty_categories(30)
    before = assign_splits(base)
    repaired = {a.partition("/")[0] for a in before.moved}
    calm = [f"c{c:02d}" for c in range(20) if f"c{c:02d}" not in repaired]
    assert calm  # with 30 groups most categories need no repair
    tried = moved_any = 0
    for k in range(200):
        category = calm[k % len(calm)]
        after = assign_splits({**base, f"{category}/pnew{k}": {f"tnew{k}"}})
        changed = {p for p, s in before.project_split.items() if after.split_of(p) != s}
        assert changed <= {p for p in after.moved if p.startswith(category + "/")}
        if not any(p.startswith(category + "/") for p in after.moved):
            tried += 1
            assert not changed
        moved_any += bool(changed)
    assert tried > 150 and moved_any < 20  # the exception is rare at this size (a group moves in 0-10% of additions)


def test_the_honest_exception_a_lent_group_goes_back():
    # 3 groups, every split holds one, and at least one is there by repair; some 4th group then hashes into the
    # split the lent group was lent to, and the lent group returns to its hash split. No stateless stratified rule
    # can avoid this (see the module docstring).
    base = {f"c/p{i}": {f"t{i}"} for i in range(3)}
    before = assign_splits(base)
    assert len(set(before.project_split.values())) == 3 and before.moved
    returned = []
    for k in range(200):
        after = assign_splits({**base, f"c/q{k}": {f"u{k}"}})
        returned += [p for p in before.moved if after.split_of(p) != before.split_of(p)]
    assert returned and set(returned) <= set(before.moved)


def test_a_group_spanning_categories_counts_for_its_home():
    g = {"a/p1": {"t1"}, "b/p1": {"t1"}, "b/p2": {"t2"}}
    sizes = {"a/p1": 8, "b/p1": 4, "b/p2": 4}
    assert assign_splits(g, group_sizes=sizes).home == {"a/p1": "a", "b/p2": "b"}
    assert assign_splits(g, group_sizes={**sizes, "a/p1": 4}).home["a/p1"] == "a"  # a tie goes to the smaller name
    assert assign_splits(g, group_sizes={**sizes, "b/p1": 9}).home["a/p1"] == "b"


def test_deterministic_and_salted():
    g = {f"c/p{i}": {f"t{i}"} for i in range(200)}
    assert assign_splits(g).project_split == assign_splits(g).project_split
    other = assign_splits(g, SplitConfig(salt="other")).project_split
    assert other != assign_splits(g).project_split


def test_fractions_roughly_met_on_many_groups():
    g = {f"c/p{i}": {f"t{i}"} for i in range(2000)}
    splits = list(assign_splits(g).project_split.values())
    assert abs(splits.count("train") / 2000 - 0.8) < 0.04
    assert abs(splits.count("test") / 2000 - 0.1) < 0.03


@pytest.mark.parametrize("size", [2, 3, 5])
def test_fractions_met_whatever_the_group_size(size):
    # groups of `size` projects tied by a texture: a group's split must not depend on how many projects it has
    g = {f"c/p{i}": {f"t{i // size}"} for i in range(1500 * size)}
    a = assign_splits(g)
    assert len(a.groups) == 1500
    per_group = [a.split_of(group[0]) for group in a.groups]
    assert abs(per_group.count("train") / 1500 - 0.8) < 0.04
    assert abs(per_group.count("validation") / 1500 - 0.1) < 0.03
    assert abs(per_group.count("test") / 1500 - 0.1) < 0.03


def test_every_split_gets_a_group_when_possible():
    g = {f"c/p{i}": {f"t{i}"} for i in range(3)}
    assert set(assign_splits(g).project_split.values()) == {"train", "validation", "test"}


def test_shared_texture_ties_projects():
    g = {"a/p1": {"t1"}, "b/p2": {"t1", "t2"}, "c/p3": {"t2"}, "d/p4": {"t9"}}
    a = assign_splits(g)
    assert a.split_of("a/p1") == a.split_of("b/p2") == a.split_of("c/p3")
    assert ["a/p1", "b/p2", "c/p3"] in a.groups


def test_project_only_grouping_can_leak_and_is_reported():
    g = {f"c/p{i}": {"shared"} for i in range(50)}
    a = assign_splits(g, SplitConfig(tie_textures=False))
    rows = [(a.split_of(p), p, "shared") for p in g]
    assert any("texture shared" in m for m in find_leaks(rows))


def test_dominant_group_note():
    g = {f"c/p{i}": {"shared"} for i in range(10)} | {"x/p": {"own"}}
    a = assign_splits(g, group_sizes={p: 4 for p in g})
    assert any("one group" in n for n in a.notes)


@pytest.mark.parametrize("spec", ["train=0.5,test=0.2", "train=1.2,test=-0.2", "dev=1"])
def test_bad_fractions(spec):
    with pytest.raises(ValueError):
        SplitConfig.parse(spec)
