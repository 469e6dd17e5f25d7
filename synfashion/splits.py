"""Leak-free, deterministic train/validation/test assignment, stratified by category and as stable as that allows.

The unit of assignment is a *group*: 3D projects joined by any texture they share (union-find over the
project-texture graph), so no project and no texture can straddle two splits. The rule, in three steps:

1. Hash placement. A group's position is a salted hash of its anchor (the member with the smallest hash, unchanged
   when unrelated projects are added); the fractions cut [0, 1) into intervals and the position's interval is the
   group's *hash split*. This alone never moves a group when projects are added, but with few groups per category
   a split can miss a category altogether (the old rule gave the sample's test split one category).
2. Stratification, per category. A group belongs to its *home* category (the one with most of its images; ties to
   the smaller name); groups spanning categories count for their home only, so each category is balanced on its
   own. A category of n groups must give every split a group when it can (train first, then by fraction, test
   before validation: n = 2 gives train and test), and each split's count must lie within two standard deviations
   of n * fraction (the spread hash placement itself stays inside about 95% of the time). When the hash placement
   breaks a bound, the fewest groups move to mend it, each time the group whose position lies nearest the split
   it moves to.
3. A split still empty overall (a release of tiny categories) gets the group nearest its interval; a note says so.

Guarantee: a group not moved by step 2 or 3 sits at its hash split, which nothing can change. Adding projects to
one category never moves a group of another category (step 2 looks at one category's groups only), except through
step 3 or when a new project merges groups by sharing their textures. Adding projects to a category moves none of
its groups while its hash placement keeps within the bounds above, before and after. Otherwise it can move a group
that step 2 placed: e.g. a category of 3 groups, two hashed to train and one lent to test, gets a 4th that hashes to
test; the lent group goes back to train. No stateless rule can do better: if adding a group never moved another,
each group's split would depend on the group alone, and then nothing could give every category every split.
Measured by benchmarks/split_stability.py (one category of n groups among 19 others): adding a project moves an
existing one in 23% of additions for n = 3-12, 3% for 12-40, 2.5% for 40-100, never more than 2 projects; hash
placement alone moves none but leaves the category out of some split in 73%, 17% and 0.5% of cases.
`stratify=False` keeps hash placement only (steps 1 and 3). This module does not read files.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .cliutil import option
from .schema import SPLITS

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}


def parse_fractions(text: str) -> dict[str, float]:
    """'train=0.8,validation=0.1,test=0.1' -> {'train': 0.8, ...}."""
    fractions: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, value = part.partition("=")
        try:
            fractions[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad split spec {part!r}; expected NAME=FRACTION, e.g. train=0.8") from None
    return fractions


def fractions_text(fractions: dict[str, float]) -> str:
    """{'train': 0.8, ...} -> 'train=0.8,...', as --split is written."""
    return ",".join(f"{name}={value:g}" for name, value in fractions.items())


@dataclass(frozen=True)
class SplitConfig:
    fractions: dict[str, float] = option("--split", default_factory=lambda: dict(DEFAULT_FRACTIONS),
                                         parse=lambda text: parse_fractions(text) if text else dict(DEFAULT_FRACTIONS),
                                         show=fractions_text, help="fractions per split")
    # changing it reshuffles every group: it is part of the dataset's identity. v3: stratified by category (see above)
    salt: str = "synfashion-splits-v3"
    # False: group by project only (textures may then leak; verify reports it)
    tie_textures: bool = option("--split-by", default=True, choices=("project-texture", "project"),
                                parse=lambda by: by == "project-texture",
                                show=lambda tie: "project-texture" if tie else "project",
                                help="group projects that share a texture (no leak) or split by project only")
    stratify: bool = True  # False: hash placement only (never moves a group, but a split may miss categories)

    def __post_init__(self) -> None:
        unknown = set(self.fractions) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}")
        if any(v < 0 for v in self.fractions.values()) or abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {self.fractions}")

    @classmethod
    def parse(cls, text: str, **kwargs) -> "SplitConfig":
        """'train=0.8,validation=0.1,test=0.1' -> SplitConfig."""
        return cls(fractions=parse_fractions(text), **kwargs)


@dataclass(frozen=True)
class SplitAssignment:
    project_split: dict[str, str]  # project id -> split
    groups: list[list[str]]  # sorted project ids per group
    notes: list[str]  # human-readable remarks (fix-ups, a dominant group)
    # groups not at their hash split, by first project: (hash split, split, "stratify" | "empty-split")
    moved: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    home: dict[str, str] = field(default_factory=dict)  # first project of each group -> its home category

    def split_of(self, project_id: str) -> str:
        return self.project_split[project_id]


def _unit_hash(salt: str, text: str) -> float:
    digest = hashlib.sha256(f"{salt}\x00{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _groups(project_textures: dict[str, set[str]], tie_textures: bool) -> list[list[str]]:
    parent = {p: p for p in project_textures}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    if tie_textures:
        first_owner: dict[str, str] = {}
        for project in sorted(project_textures):
            for texture in sorted(project_textures[project]):
                owner = first_owner.setdefault(texture, project)
                ra, rb = find(owner), find(project)
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    members: dict[str, list[str]] = defaultdict(list)
    for project in sorted(project_textures):
        members[find(project)].append(project)
    return sorted(members.values())


def _split_order(names: list[str], fractions: dict[str, float]) -> list[str]:
    """Which splits a small category fills first: the largest fraction, ties to test before validation."""
    return sorted(names, key=lambda s: (-fractions[s], -SPLITS.index(s)))


def _bounds(n: int, names: list[str], fractions: dict[str, float]) -> dict[str, tuple[int, int]]:
    """Per split, the (fewest, most) groups of a category of n: every split it can reach gets one, and otherwise
    the count stays within two binomial standard deviations of n * fraction."""
    order = _split_order(names, fractions)
    out = {}
    for s in names:
        mean = n * fractions[s]
        sd = math.sqrt(n * fractions[s] * (1 - fractions[s]))
        lo = max(1 if order.index(s) < n else 0, math.floor(mean - 2 * sd + 1e-9))
        out[s] = (lo, max(lo, math.ceil(mean + 2 * sd - 1e-9)))
    return out


def _stratify(members: list[tuple], chosen: dict[tuple, str], position: dict[tuple, float], names: list[str],
              intervals: dict[str, tuple[float, float]], fractions: dict[str, float]) -> None:
    """Mend one category's counts to its bounds with the fewest moves (see the module docstring), in place."""
    bounds = _bounds(len(members), names, fractions)
    order = _split_order(names, fractions)

    def distance(g: tuple, s: str) -> tuple[float, tuple]:
        lo, hi = intervals[s]
        u = position[g]
        return (0.0 if lo <= u < hi else min(abs(u - lo), abs(u - hi)), g)

    for _ in range(4 * len(members) + 4):  # each move lowers the total violation; the cap only guards the proof
        count = {s: 0 for s in names}
        for g in members:
            count[chosen[g]] += 1
        short = next((s for s in order if count[s] < bounds[s][0]), None)
        if short is not None:
            donors = [g for g in members if chosen[g] != short and count[chosen[g]] > bounds[chosen[g]][0]]
            if not donors:
                return
            chosen[min(donors, key=lambda g: distance(g, short))] = short
            continue
        over = next((s for s in order if count[s] > bounds[s][1]), None)
        if over is None:
            return
        room = [s for s in order if s != over and count[s] < bounds[s][1]]
        to = max(room, key=lambda s: (len(members) * fractions[s] - count[s], -order.index(s)))
        chosen[min((g for g in members if chosen[g] == over), key=lambda g: distance(g, to))] = to


def _category(project_id: str) -> str:
    return project_id.partition("/")[0]  # project ids are "<category>/<project>"


def assign_splits(
    project_textures: dict[str, set[str]],
    config: SplitConfig = SplitConfig(),
    *,
    group_sizes: dict[str, int] | None = None,
) -> SplitAssignment:
    """Assign every project (id "<category>/<project>") to a split; `group_sizes` (images per project) decides each
    group's home category and feeds the notes (without it, every project weighs one)."""
    groups = _groups(project_textures, config.tie_textures)
    names = [s for s in SPLITS if config.fractions.get(s, 0) > 0]
    bounds, acc = [], 0.0
    intervals: dict[str, tuple[float, float]] = {}
    for s in names:
        intervals[s] = (acc, acc + config.fractions[s])
        acc += config.fractions[s]
        bounds.append((acc, s))

    # A group is named by its anchor, the member with the smallest hash (unchanged when unrelated projects are
    # added), and placed by a second, independent hash of that anchor. Placing it by the smallest hash itself would
    # bias groups toward the first split: the minimum of 3 uniform hashes is below 0.8 with probability 0.992.
    anchor = {tuple(g): min(g, key=lambda p: _unit_hash(config.salt, p)) for g in groups}
    position = {g: _unit_hash(f"{config.salt}\x00position", a) for g, a in anchor.items()}
    hashed: dict[tuple, str] = {}
    for g in groups:
        u = position[tuple(g)]
        hashed[tuple(g)] = next((s for b, s in bounds if u < b), names[-1])
    chosen = dict(hashed)

    weight = group_sizes or {}
    home: dict[tuple, str] = {}
    for g in map(tuple, groups):
        per_category: dict[str, int] = defaultdict(int)
        for p in g:
            per_category[_category(p)] += weight.get(p, 1)
        home[g] = min(per_category, key=lambda c: (-per_category[c], c))
    notes: list[str] = []
    if config.stratify and len(names) > 1:
        by_home: dict[str, list[tuple]] = defaultdict(list)
        for g in map(tuple, groups):
            by_home[home[g]].append(g)
        for category in sorted(by_home):
            _stratify(by_home[category], chosen, position, names, intervals, config.fractions)
        short = sorted(c for c, members in by_home.items() if len(members) < len(names))
        if short:
            notes.append(f"{len(short)} categor{'y has' if len(short) == 1 else 'ies have'} fewer groups than splits, "
                         f"so not every split can hold them: {', '.join(short)}")
    moved = {g[0]: (hashed[g], chosen[g], "stratify") for g in chosen if chosen[g] != hashed[g]}

    # With few groups a split can come out empty; then move the group nearest to that split's interval, taken
    # from a split that keeps at least one group. Deterministic, and a no-op on any release of real size.
    if len(groups) >= len(names):
        for lo_idx, s in enumerate(names):
            if any(v == s for v in chosen.values()):
                continue
            lo, hi = intervals[s]
            centre = (lo + hi) / 2
            counts = defaultdict(int)
            for v in chosen.values():
                counts[v] += 1
            candidates = [g for g in chosen if counts[chosen[g]] > 1]
            g = min(candidates, key=lambda g: (abs(position[g] - centre), g))
            notes.append(f"split {s!r} had no group; moved group of {g[0]} from {chosen[g]!r}")
            chosen[g] = s
            moved[g[0]] = (hashed[g], s, "empty-split")

    if group_sizes:
        total = sum(group_sizes.values())
        biggest = max(groups, key=lambda g: sum(group_sizes.get(p, 0) for p in g))
        share = sum(group_sizes.get(p, 0) for p in biggest) / max(total, 1)
        if share > 0.5:
            notes.append(
                f"textures tie {len(biggest)} projects ({share:.0%} of images) into one group; split fractions "
                "cannot be met without a texture leak (see --split-by project)"
            )
    project_split = {p: chosen[tuple(g)] for g in groups for p in g}
    return SplitAssignment(project_split=project_split, groups=groups, notes=notes, moved=moved,
                           home={g[0]: home[tuple(g)] for g in groups})


def find_leaks(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    """rows of (split, project_id, texture) -> one message per project or texture seen in two splits."""
    by_project: dict[str, set[str]] = defaultdict(set)
    by_texture: dict[str, set[str]] = defaultdict(set)
    for split, project, texture in rows:
        by_project[project].add(split)
        by_texture[texture].add(split)
    leaks = [f"project {p} is in splits {sorted(s)}" for p, s in sorted(by_project.items()) if len(s) > 1]
    leaks += [f"texture {t} is in splits {sorted(s)}" for t, s in sorted(by_texture.items()) if len(s) > 1]
    return leaks
