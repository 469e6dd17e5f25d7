"""`r2r study-page`: a pairwise preference page like the paper's user study, from `r2r evaluate` results.

The first file is the reference (e.g. ours); each further file is compared with it on up to `--n` source images
that both scored, drawn with `--seed`. Each trial shows the rendered source and the two outputs; which method is
on the left is balanced within a comparison (half each way, rounded) and shuffled with the same seed, and the trial
order is shuffled too. Everything drawn is recorded: in the page (its votes export names methods, sides and
choices) and in `study.json` beside it. The page is static and self-contained (pictures copied into
`study_files/`, plain inline script: pages/template.py), so it can be mailed or hosted anywhere. Votes are
counted by `r2r study-results` (study_results.py). Writes only into `--out`, atomically: a folder that is new,
empty or an earlier study page's (`synfashion.fs.ownership.OwnedFolder`), never one the page reads; a page of other
settings (another `--seed`, `--n`, other results) may have gone to raters and is replaced only with `--overwrite`.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from synfashion.cliutil import option
from synfashion.fs.atomic import write_bytes_atomic, write_json_atomic

from .images import STUDY_SUBDIR, PictureFolder, PictureSettings

STUDY_FORMAT = "r2r-study/1"
VOTES_FORMAT = "r2r-study-votes/1"
STUDY_HTML = "index.html"
STUDY_JSON = "study.json"
# The paper's user study asked about realism, quality and consistency with the source; the wording is ours.
QUESTIONS: tuple[tuple[str, str], ...] = (
    ("realism", "Which image looks more like a real photograph?"),
    ("quality", "Which image has the better overall image quality?"),
    ("consistency", "Which image keeps the source garment better (texture, print, shape, colour)?"),
)


@dataclass(frozen=True)
class StudySettings:
    n: int = option("--n", default=50, type=int,  # trials per comparison (reference vs one other method)
                    help="pairs per comparison (fewer if fewer images)")
    seed: int = option("--seed", default=0, type=int, help="seed of the draw, the sides and the order")
    pictures: PictureSettings = PictureSettings()

    def __post_init__(self) -> None:
        if self.n < 1:
            raise ValueError(f"--n must be >= 1, got {self.n}")


@dataclass(frozen=True)
class Trial:
    id: str
    source_key: str
    left: str  # method label shown as candidate 1
    right: str  # method label shown as candidate 2


def draw_trials(evals, settings: StudySettings, store) -> tuple[list[Trial], list[dict], dict]:
    """(trials, images left out with the reason, picture links by (label, key) and by ("source", key)).

    Per comparison: the source keys both files scored, shuffled with the seed, the first `n` whose pictures load;
    sides balanced and shuffled; then all trials shuffled and numbered. `store(image) -> link` keeps each picture
    (one at a time: a 50-pair study at 768x1024 would not fit in memory decoded).
    """
    rng = random.Random(settings.seed)
    reference, drawn, left_out, links = evals[0], [], [], {}
    for other in evals[1:]:
        common = sorted(set(reference.images) & set(other.images))
        if not common:
            raise ValueError(f"{reference.path} and {other.path} scored no source image in common")
        rng.shuffle(common)
        chosen = []
        for key in common:
            if len(chosen) == settings.n:
                break
            pics = [e.pictures(key) for e in (reference, other)]
            errors = [f"{e.label}: {p['error']}" for e, p in zip((reference, other), pics) if "error" in p]
            if errors:
                left_out.append({"source_key": key, "comparison": [reference.label, other.label],
                                 "reason": "; ".join(errors)})
                continue
            links[(reference.label, key)] = store(pics[0]["translated"])
            links[(other.label, key)] = store(pics[1]["translated"])
            links[(None, key)] = store(pics[0]["source"])  # None: no method label can be it
            chosen.append(key)
        sides = [True] * ((len(chosen) + 1) // 2) + [False] * (len(chosen) // 2)  # True: reference on the left
        rng.shuffle(sides)
        for key, ref_left in zip(chosen, sides):
            pair = (reference.label, other.label) if ref_left else (other.label, reference.label)
            drawn.append((key, *pair))
    rng.shuffle(drawn)
    width = max(3, len(str(len(drawn))))
    trials = [Trial(f"t{n + 1:0{width}d}", key, left, right) for n, (key, left, right) in enumerate(drawn)]
    return trials, left_out, links


def study_id(record: dict) -> str:
    """A short hash of what the page shows: it keeps its votes under it, and a votes file names it."""
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]


def page_settings(evals, settings: StudySettings) -> dict:
    """What decides the page a run writes (the draw's settings and the bytes of every results file): a page of other
    settings is never replaced without `overwrite` (it may have gone to raters)."""
    from synfashion.fs.filehash import file_sha256

    return {"seed": settings.seed, "n": settings.n, "pictures": settings.pictures.describe(),
            "results": [[e.path.name, file_sha256(e.path)] for e in evals]}


def _refuse_another_page(out: Path, old: object, new: dict) -> None:
    if not isinstance(old, dict):
        changed = ["no settings recorded"]
    else:
        changed = [f"{k} {json.dumps(old.get(k))} -> {json.dumps(new[k])}" if k != "results" else "the results files"
                   for k in new if old.get(k) != new[k]]
    raise FileExistsError(f"{out} holds a study page of other settings ({'; '.join(changed)}), which may have gone "
                          "to raters already: pass --overwrite to replace it (only what study-page wrote there is "
                          "replaced), or choose another --out")


def write_study(paths: list[Path], out: Path, settings: StudySettings = StudySettings(), *,
                overwrite: bool = False) -> dict:
    """`out/index.html` (the page), `out/study.json` (what was drawn) and the pictures; returns study.json's data.

    `out` is new, empty or an earlier study page's (`synfashion.fs.ownership.OwnedFolder`), never a folder the page
    reads; an earlier page of other settings (another --seed, --n, other results) is replaced only with
    `overwrite`."""
    from synfashion.fs.locks import folder_lock
    from synfashion.fs.ownership import OwnedFolder

    from ..evaluation.results import load_evaluations

    if len(paths) < 2:
        raise ValueError("give at least two `r2r evaluate` JSON files: the reference (first) and a method to "
                         "compare it with")
    evals = load_evaluations(paths)
    for e in evals:
        e.open()
    out = Path(out)
    inputs = {k: v for e in evals for k, v in e.inputs().items()}
    owned = OwnedFolder(out, "study-page")
    wanted = page_settings(evals, settings)
    if owned.claim(inputs=inputs) and owned.settings != wanted and not overwrite:
        _refuse_another_page(out, owned.settings, wanted)
    with folder_lock(out, "r2r study-page"):
        ours = owned.claim(inputs=inputs)  # again, holding the folder
        if ours and owned.settings != wanted and not overwrite:
            _refuse_another_page(out, owned.settings, wanted)
        owned.refuse_in_the_way([STUDY_JSON, STUDY_HTML])
        owned.begin(owned.settings if ours else wanted)  # the page's settings change once the new page is written
        try:
            return _write(evals, out, settings, owned, wanted)
        except BaseException:
            if not ours:
                owned.abandon()
            raise


def _write(evals, out: Path, settings: StudySettings, owned, wanted: dict) -> dict:
    """The pictures, study.json and index.html into `out` (claimed and marked by the caller)."""
    from .template import render

    folder = PictureFolder(out, settings.pictures, STUDY_SUBDIR)
    trials, left_out, links = draw_trials(evals, settings, folder.add)
    if not trials:
        raise ValueError("no trial could be made: none of the shared source images could be read "
                         f"({'; '.join(x['reason'] for x in left_out[:3])})")
    record = {
        "format": STUDY_FORMAT, "votes_format": VOTES_FORMAT, "seed": settings.seed, "n": settings.n,
        "methods": [e.label for e in evals], "files": [str(e.path) for e in evals],
        "questions": [{"id": q, "text": text} for q, text in QUESTIONS],
        "trials": [asdict(t) for t in trials], "left_out": left_out,
        "pictures": settings.pictures.describe(),
    }
    page_trials = [{"id": t.id, "key": t.source_key, "source": links[(None, t.source_key)],
                    "left": {"method": t.left, "image": links[(t.left, t.source_key)]},
                    "right": {"method": t.right, "image": links[(t.right, t.source_key)]}} for t in trials]
    page = {"votes_format": VOTES_FORMAT, "seed": settings.seed, "methods": record["methods"],
            "questions": record["questions"], "trials": page_trials}
    page["id"] = record["id"] = study_id(page)  # pictures are named by content: other images, another id
    with owned.writing([STUDY_JSON, STUDY_HTML], settings=wanted):
        write_json_atomic(out / STUDY_JSON, record, durable=False)
        write_bytes_atomic(out / STUDY_HTML, render(page).encode("utf-8"), durable=False)
    folder.prune()
    return record
