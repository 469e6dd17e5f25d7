"""The SynFashion taxonomy: the 20 garment categories and the 4 views, and how folder names map onto them.

This module only names things; it never touches files. Category names are the ClassLabel names of the
published dataset, so their order is part of the data format: never reorder, only append.
"""

from __future__ import annotations

import re

# ClassLabel order (index = label id). Names are lower-case, hyphenated slugs of the paper's category names.
CATEGORIES: tuple[str, ...] = (
    "pants",
    "t-shirt",
    "lingerie-and-swimwear",
    "half-skirt",
    "hoodie",
    "coat",
    "jacket",
    "set",
    "home-wear",
    "hat",
    "hanfu",
    "jeans",
    "shorts",
    "down-jacket",
    "vest-and-camisole",
    "shirt",
    "suit",
    "dress",
    "sweater",
    "trench-coat",
)

# How the paper writes them (used for cards and as the sample release's folder names).
DISPLAY_NAMES: dict[str, str] = {
    "pants": "Pants",
    "t-shirt": "T-shirt",
    "lingerie-and-swimwear": "Lingerie and swimwear",
    "half-skirt": "Half skirt",
    "hoodie": "Hoodie",
    "coat": "Coat",
    "jacket": "Jacket",
    "set": "Set",
    "home-wear": "Home-wear",
    "hat": "Hat",
    "hanfu": "Hanfu",
    "jeans": "Jeans",
    "shorts": "Shorts",
    "down-jacket": "Down jacket",
    "vest-and-camisole": "Vest and camisole",
    "shirt": "Shirt",
    "suit": "Suit",
    "dress": "Dress",
    "sweater": "Sweater",
    "trench-coat": "Trench coat",
}

# Spellings seen in the wild that normalisation alone does not reach.
_ALIASES: dict[str, str] = {
    "tshirt": "t-shirt",
    "tee": "t-shirt",
    "homewear": "home-wear",
    "lingerie-swimwear": "lingerie-and-swimwear",
    "vest-camisole": "vest-and-camisole",
    "skirt": "half-skirt",
    "downjacket": "down-jacket",
    "trenchcoat": "trench-coat",
}

# The release renders each textured garment in 4 views: front, back and two random ones.
VIEWS: tuple[str, ...] = ("front", "back", "random1", "random2")


class UnknownCategoryError(ValueError):
    """A release folder whose name is none of the 20 categories."""


def slugify(name: str) -> str:
    """Lower-case, '&' -> 'and', runs of spaces/underscores/hyphens -> one hyphen."""
    s = name.strip().lower().replace("&", " and ")
    s = re.sub(r"[\s_\-]+", "-", s)
    return s.strip("-")


def normalize_category(name: str) -> str:
    """Map a folder name to its canonical category, or raise naming the folder and the choices.

    >>> normalize_category("Down Jacket")
    'down-jacket'
    >>> normalize_category("lingerie & swimwear")
    'lingerie-and-swimwear'
    """
    slug = slugify(name)
    if slug in CATEGORIES:
        return slug
    if slug in _ALIASES:
        return _ALIASES[slug]
    compact = slug.replace("-", "")
    for cat in CATEGORIES:
        if cat.replace("-", "") == compact:
            return cat
    raise UnknownCategoryError(
        f"folder {name!r} is not a SynFashion category; expected one of: {', '.join(CATEGORIES)} "
        "(case, spaces, underscores and hyphens are ignored)"
    )


def category_index(category: str) -> int:
    return CATEGORIES.index(category)
