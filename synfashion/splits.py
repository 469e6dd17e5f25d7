"""Leak-free, deterministic, stable train/validation/test assignment.

The unit of assignment is a *group*: 3D projects joined by any texture they share (union-find over the
project-texture graph), so no project and no texture can straddle two splits. A group's split comes from a hash
of its members' ids, not from its position in a sorted list, so adding projects that join no existing group
moves nothing that was already assigned. This module does not read files.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from .schema import SPLITS

DEFAULT_FRACTIONS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SplitConfig:
    fractions: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_FRACTIONS))
    salt: str = "synfashion-splits-v2"  # changing it reshuffles every group: it is part of the dataset's identity
    tie_textures: bool = True  # False: group by project only (textures may then leak; verify reports it)

    def __post_init__(self) -> None:
        unknown = set(self.fractions) - set(SPLITS)
        if unknown:
            raise ValueError(f"unknown split(s) {sorted(unknown)}; splits are {', '.join(SPLITS)}")
        if any(v < 0 for v in self.fractions.values()) or abs(sum(self.fractions.values()) - 1.0) > 1e-6:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {self.fractions}")

    @classmethod
    def parse(cls, text: str, **kwargs) -> "SplitConfig":
        """'train=0.8,validation=0.1,test=0.1' -> SplitConfig."""
        fractions: dict[str, float] = {}
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            try:
                fractions[name.strip()] = float(value)
            except ValueError:
                raise ValueError(f"bad split spec {part!r}; expected NAME=FRACTION, e.g. train=0.8") from None
        return cls(fractions=fractions, **kwargs)


@dataclass(frozen=True)
class SplitAssignment:
    project_split: dict[str, str]  # project id -> split
    groups: list[list[str]]  # sorted project ids per group
    notes: list[str]  # human-readable remarks (fix-ups, a dominant group)

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


def assign_splits(
    project_textures: dict[str, set[str]],
    config: SplitConfig = SplitConfig(),
    *,
    group_sizes: dict[str, int] | None = None,
) -> SplitAssignment:
    """Assign every project to a split; `group_sizes` (images per project) only feeds the notes."""
    groups = _groups(project_textures, config.tie_textures)
    names = [s for s in SPLITS if config.fractions.get(s, 0) > 0]
    bounds, acc = [], 0.0
    for s in names:
        acc += config.fractions[s]
        bounds.append((acc, s))

    # A group is named by its anchor, the member with the smallest hash (unchanged when unrelated projects are
    # added), and placed by a second, independent hash of that anchor. Placing it by the smallest hash itself would
    # bias groups toward the first split: the minimum of 3 uniform hashes is below 0.8 with probability 0.992.
    anchor = {tuple(g): min(g, key=lambda p: _unit_hash(config.salt, p)) for g in groups}
    position = {g: _unit_hash(f"{config.salt}\x00position", a) for g, a in anchor.items()}
    chosen: dict[tuple, str] = {}
    for g in groups:
        u = position[tuple(g)]
        chosen[tuple(g)] = next((s for b, s in bounds if u < b), names[-1])

    notes: list[str] = []
    # With few groups a split can come out empty; then move the group nearest to that split's interval, taken
    # from a split that keeps at least one group. Deterministic, and a no-op on any release of real size.
    if len(groups) >= len(names):
        for lo_idx, s in enumerate(names):
            if any(v == s for v in chosen.values()):
                continue
            lo = bounds[lo_idx - 1][0] if lo_idx else 0.0
            hi = bounds[lo_idx][0]
            centre = (lo + hi) / 2
            counts = defaultdict(int)
            for v in chosen.values():
                counts[v] += 1
            candidates = [g for g in chosen if counts[chosen[g]] > 1]
            g = min(candidates, key=lambda g: (abs(position[g] - centre), g))
            notes.append(f"split {s!r} had no group by hash; moved group of {g[0]} from {chosen[g]!r}")
            chosen[g] = s

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
    return SplitAssignment(project_split=project_split, groups=groups, notes=notes)


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
