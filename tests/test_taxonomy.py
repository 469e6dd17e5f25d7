import pytest

from synfashion.taxonomy import CATEGORIES, DISPLAY_NAMES, UnknownCategoryError, normalize_category


def test_twenty_categories_with_display_names():
    assert len(CATEGORIES) == 20 == len(set(CATEGORIES))
    assert set(DISPLAY_NAMES) == set(CATEGORIES)


@pytest.mark.parametrize(
    "name,expected",
    [
        ("T-shirt", "t-shirt"), ("t_shirt", "t-shirt"), ("TShirt", "t-shirt"), ("Down Jacket", "down-jacket"),
        ("down_jacket", "down-jacket"), ("Lingerie & Swimwear", "lingerie-and-swimwear"), ("HANFU", "hanfu"),
        ("Home wear", "home-wear"), ("homewear", "home-wear"), (" trench  coat ", "trench-coat"),
    ],
)
def test_normalisation(name, expected):
    assert normalize_category(name) == expected


def test_every_display_name_maps_back():
    for cat, disp in DISPLAY_NAMES.items():
        assert normalize_category(disp) == cat


def test_unknown_folder_is_named():
    with pytest.raises(UnknownCategoryError, match="'socks'"):
        normalize_category("socks")
