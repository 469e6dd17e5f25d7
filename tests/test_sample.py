import hashlib
import json
import re
from collections import defaultdict
from pathlib import Path

import pytest
from PIL import Image

from synfashion.sample import SampleConfig, generate_sample
from synfashion.schema import DEFAULT_PATTERN
from synfashion.taxonomy import CATEGORIES, VIEWS, normalize_category

SMALL = dict(width=96, height=128, categories=("hoodie", "dress", "pants", "hat"))


def _hashes(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_names_and_sidecar(tmp_path):
    s = generate_sample(tmp_path / "r", SampleConfig(**SMALL), progress=False)
    assert s.num_images == 4 * 2 * 2 * 4 == len(s.files)
    pattern = re.compile(DEFAULT_PATTERN)
    for rel in s.files:
        folder, name = rel.split("/")
        stem, ext = name.rsplit(".", 1)
        m = pattern.fullmatch(stem)
        assert m and ext == "jpg" and m["view"] in VIEWS
        assert m["project"].startswith(normalize_category(folder))
    rows = [json.loads(line) for line in (tmp_path / "r" / "metadata.jsonl").read_text().splitlines()]
    assert sorted(r["file_name"] for r in rows) == list(s.files)
    assert {r["view"]: r["azimuth_deg"] for r in rows if r["view"] in ("front", "back")} == {"front": 0.0, "back": 180.0}


def test_images_decode_at_the_requested_size_and_format(tmp_path):
    s = generate_sample(tmp_path / "r", SampleConfig(**SMALL, image_format="png"), progress=False)
    with Image.open(tmp_path / "r" / s.files[0]) as im:
        assert (im.format, im.size, im.mode) == ("PNG", (96, 128), "RGB")
        px = im.load()
        assert px[0, 0] == (255, 255, 255)  # plain background
        assert px[48, 64] != (255, 255, 255)  # the garment in the middle


def test_byte_identical_across_runs_and_worker_counts(tmp_path):
    generate_sample(tmp_path / "a", SampleConfig(**SMALL, seed=3), workers=1, progress=False)
    generate_sample(tmp_path / "b", SampleConfig(**SMALL, seed=3), workers=2, progress=False)
    generate_sample(tmp_path / "c", SampleConfig(**SMALL, seed=4), workers=1, progress=False)
    assert _hashes(tmp_path / "a") == _hashes(tmp_path / "b")
    assert _hashes(tmp_path / "a") != _hashes(tmp_path / "c")


def test_textures_shared_between_projects_but_not_one_big_group(tmp_path):
    s = generate_sample(tmp_path / "r", SampleConfig(width=64, height=64, projects_per_category=3), progress=False)
    users = defaultdict(set)
    for rel in s.files:
        project, texture, _ = rel.split("/")[1].rsplit(".", 1)[0].split("_")
        users[texture].add(project)
    assert any(len(p) > 1 for p in users.values())
    from synfashion.splits import assign_splits

    textures_of = defaultdict(set)
    for t, ps in users.items():
        for p in ps:
            textures_of[p].add(t)
    groups = assign_splits(textures_of).groups
    assert len(groups) >= 20 and max(map(len, groups)) <= 10


def test_all_twenty_categories_by_default():
    assert SampleConfig().categories == CATEGORIES


@pytest.mark.parametrize("bad", [dict(width=100), dict(height=32), dict(image_format="gif"),
                                 dict(projects_per_category=0), dict(categories=("socks",)),
                                 dict(shared_texture_fraction=2.0)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        SampleConfig(**bad)


def test_sample_builds_and_verifies(built_dataset):
    from synfashion.verify import verify_dataset

    report = verify_dataset(built_dataset)
    assert report.ok, report.problems
    assert report.checked["samples"] == 320
