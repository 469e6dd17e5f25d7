"""The evaluate JSON: its one writer and its one validating reader, and the pictures an evaluation scored found again.

`write_result` writes what `r2r evaluate` computed; `read_result` is how every consumer reads one back
(`evaluate-table`, `report`, `study-page`, `ablate`'s reuse check, `translate-dataset --eval-json`): the format is
checked and every field a consumer uses is typed, so a malformed or hostile file (a list where an object belongs, a
400-digit number, a string for KID, a method name with a newline) is one error naming the file and the field.

Why: `r2r report` and `r2r study-page` show the images an evaluation scored next to their rendered sources. The
JSON records where the translated images and their source were (`inputs`, `settings`) and, per image, its name,
source key and scores. The images are re-opened through evaluation.inputs' pairing and decoding, the same code
`r2r evaluate` ran, and an image is shown only if its name still pairs with the same source key; otherwise the page
says why. Reads only, computes no metric. Paths in a JSON are as `r2r evaluate` was given them (relative to the
folder it ran in); where those do not resolve from here, `inputs.from_json` (the same paths relative to the JSON's
folder) is used.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

FORMAT = "r2r-evaluate/1"
SUMMARY_NUMBERS = ("kid", "kid_std", "kid_x1000", "kid_std_x1000", "lpips", "lpips_std", "ssim", "ssim_std")
# a feature space's numbers (`spaces.<name>`, overall and per category); counts are checked as counts
SPACE_NUMBERS = ("kid", "kid_std", "kid_x1000", "kid_std_x1000", "fd", "fd_std", "precision", "recall")
SPACE_COUNTS = ("n_real", "n_fake", "kid_subset_size")
_SPACE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,39}")
PROBLEM_LISTS = ("unpaired", "unreadable", "untranslated", "real_unreadable", "ignored")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LARGEST = 1e300  # a JSON number beyond this (a 400-digit integer) is no score


class ResultError(ValueError):
    """An `r2r evaluate` JSON that cannot be used; the message names the file and the field."""


def _field(doc: dict, name: str, kind: type | tuple, where: str, *, optional: bool = False):
    value = doc.get(name)
    if value is None and optional:
        return None
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        got = "missing" if name not in doc else f"{type(value).__name__}"
        want = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ResultError(f"{where}: field {name!r} must be {want}, got {got}")
    return value


def _text(doc: dict, name: str, where: str, *, optional: bool = False) -> str | None:
    value = _field(doc, name, str, where, optional=optional)
    if value is not None and _CONTROL.search(value):
        raise ResultError(f"{where}: field {name!r} holds a control character (a newline or an escape sequence)")
    return value


def _number(value, where: str) -> float | None:
    """None, or a finite JSON number of sane size."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ResultError(f"{where} is not a number: {str(value)[:40]!r}")
    if isinstance(value, int) and abs(value) > _LARGEST or isinstance(value, float) and not math.isfinite(value) \
            or abs(value) > _LARGEST:
        raise ResultError(f"{where} is not a finite number of sane size")
    return value


def _count(doc: dict, name: str, where: str, *, optional: bool = False) -> int | None:
    value = _field(doc, name, int, where, optional=optional)
    if value is not None and not 0 <= value <= _LARGEST:
        raise ResultError(f"{where}: field {name!r} is not a count")
    return value


def _spaces(doc: dict, where: str) -> None:
    """`spaces`: {name: {numbers}} (optional: results written before feature spaces have none)."""
    spaces = _field(doc, "spaces", dict, where, optional=True) or {}
    for name, numbers in spaces.items():
        if not _SPACE_NAME.fullmatch(name):
            raise ResultError(f"{where}: feature space name {name[:40]!r} is not a plain name")
        at = f"{where}: spaces.{name}"
        numbers = _field(spaces, name, dict, f"{where}: spaces")
        for field_name in SPACE_NUMBERS:
            value = _number(numbers.get(field_name), f"{at}: field {field_name!r}")
            if field_name in ("precision", "recall") and value is not None and not 0 <= value <= 1:
                raise ResultError(f"{at}: field {field_name!r} is not a fraction")
        for field_name in SPACE_COUNTS:
            _count(numbers, field_name, at, optional=True)
        for field_name in ("kid_note", "pr_note"):
            _text(numbers, field_name, at, optional=True)


def _summary(doc: dict, where: str) -> None:
    n = _field(doc, "n", int, where)
    if n < 0:
        raise ResultError(f"{where}: field 'n' is negative")
    for name in SUMMARY_NUMBERS:
        _number(doc.get(name), f"{where}: field {name!r}")
    _field(doc, "trusted", bool, where, optional=True)
    _text(doc, "why", where, optional=True)
    _spaces(doc, where)


def _check(doc: object, where: str) -> dict:
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ResultError(f"{where}: not an `r2r evaluate` result (format {FORMAT!r})")
    _text(doc, "method", where)
    if not doc["method"]:
        raise ResultError(f"{where}: field 'method' is empty")
    _summary(doc, where)
    inputs = _field(doc, "inputs", dict, where)
    for name in ("translated", "split"):
        _text(inputs, name, f"{where}: inputs")
    for name in ("source", "real", "translated_kind", "translated_fingerprint", "pairs_csv"):
        _text(inputs, name, f"{where}: inputs", optional=True)
    for name in ("real_splits",):
        _field(inputs, name, list, f"{where}: inputs", optional=True)
    _field(inputs, "from_json", dict, f"{where}: inputs", optional=True)
    _text(inputs, "real_images_sha256", f"{where}: inputs", optional=True)
    for n, path in enumerate(_field(inputs, "real_stats", list, f"{where}: inputs", optional=True) or []):
        if not isinstance(path, str) or _CONTROL.search(path):
            raise ResultError(f"{where}: inputs.real_stats[{n}] is not a plain path")
    for name, origin in (_field(inputs, "real_features", dict, f"{where}: inputs", optional=True) or {}).items():
        if not isinstance(origin, dict) or origin.get("from") not in ("computed", "cache", "file"):
            raise ResultError(f"{where}: inputs.real_features.{name[:40]} must say where the features came from "
                              "(computed, cache or file)")
    protocol = _field(doc, "protocol", dict, where)
    for name in ("kid", "lpips", "ssim"):
        _field(protocol, name, dict, f"{where}: protocol")
    for name, space in (_field(protocol, "spaces", dict, f"{where}: protocol", optional=True) or {}).items():
        at = f"{where}: protocol.spaces"
        if not _SPACE_NAME.fullmatch(name):
            raise ResultError(f"{at}: feature space name {name[:40]!r} is not a plain name")
        space = _field(protocol["spaces"], name, dict, at)
        _text(space, "network", f"{at}.{name}")
        _field(space, "weights", dict, f"{at}.{name}")
    if protocol.get("spaces") is not None and set(protocol["spaces"]) != set(doc.get("spaces") or {}):
        raise ResultError(f"{where}: the feature spaces scored ({sorted(doc.get('spaces') or {})}) are not the "
                          f"ones the protocol describes ({sorted(protocol['spaces'])})")
    per_category = _field(doc, "per_category", dict, where, optional=True) or {}
    for category, summary in per_category.items():
        _summary(_field(per_category, category, dict, f"{where}: per_category"), f"{where}: per_category.{category}")
    problems = _field(doc, "problems", dict, where, optional=True) or {}
    for name in PROBLEM_LISTS:
        _field(problems, name, list, f"{where}: problems", optional=True)
    _field(doc, "settings", dict, where, optional=True)
    images = _field(doc, "images", list, where)
    for n, im in enumerate(images):
        at = f"{where}: images[{n}]"
        if not isinstance(im, dict):
            raise ResultError(f"{at} is {type(im).__name__}, not an object")
        for name in ("lpips", "ssim"):
            _number(im.get(name), f"{at}.{name}")
        for name in ("name", "source_key", "category"):
            _text(im, name, at, optional=name == "category")
    return doc


def read_result(path: str | Path) -> dict:
    """One `r2r evaluate` JSON, validated (see the module docstring); `_path` is set to where it was read."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ResultError(f"{path}: not a readable JSON file ({type(e).__name__}: {str(e)[:120]})") from None
    doc = _check(data, str(path))
    doc["_path"] = str(path)
    return doc


def write_result(path: str | Path, doc: dict) -> None:
    """The evaluate JSON, atomically; checked by the reader's rules first, so no command writes what none reads."""
    from synfashion.fs.atomic import write_json_atomic

    _check(doc, str(path))
    write_json_atomic(Path(path), doc, indent=1, durable=False)


@dataclass(frozen=True)
class ScoredImage:
    name: str  # the translated file (relative path) or the translated dataset's key
    source_key: str
    category: str
    lpips: float | None
    ssim: float | None


@dataclass
class Evaluation:
    path: Path
    method: str
    label: str  # the method, made unique among the files given (two files may name the same method)
    images: dict[str, ScoredImage]  # by source key, in the JSON's order
    data: dict = field(repr=False)
    _pairs: object = field(default=None, repr=False)  # inputs.PairImages, opened on first use
    _index: dict = field(default_factory=dict, repr=False)  # translated name -> pair index

    @property
    def random_weights(self) -> bool:
        return bool(self.data.get("protocol", {}).get("random_weights"))

    def open(self) -> None:
        """Pair the translated images with their sources again, as `r2r evaluate` did."""
        if self._pairs is not None:
            return
        from .inputs import PairImages, plan_pairs

        inputs, settings = self.data["inputs"], self.data.get("settings", {})
        given = {"translated": inputs["translated"], "source": settings.get("source"),
                 "pairs_csv": inputs.get("pairs_csv")}
        moved = inputs.get("from_json") if isinstance(inputs.get("from_json"), dict) else {}
        here = self.path.resolve().parent
        where = {k: (str(here / moved[k]) if v is not None and not Path(v).exists() and isinstance(moved.get(k), str)
                     else v) for k, v in given.items()}  # each path as given, else relative to the JSON
        try:
            plan = plan_pairs(Path(where["translated"]), where["source"], inputs["split"],
                              Path(where["pairs_csv"]) if where["pairs_csv"] else None)
        except (OSError, ValueError) as e:
            raise ValueError(f"{self.path}: cannot find the images it scored again (translated "
                             f"{given['translated']!r} as `r2r evaluate` was given it, or beside the JSON): {e}"
                             ) from None
        scored = inputs.get("translated_fingerprint")
        if scored and plan.fingerprint and plan.fingerprint != scored:
            raise ValueError(f"{self.path}: {where['translated']} was rebuilt since it was scored (fingerprint "
                             f"{plan.fingerprint[:12]}, scored {scored[:12]}); run `r2r evaluate` on it again")
        self._pairs = PairImages(plan)
        self._index = {p.name: i for i, p in enumerate(plan.pairs)}

    def inputs(self) -> dict[str, Path | str]:
        """What a page made from this file reads (the file, the translated images, a local source): a page's folder
        is never, never holds and never sits in any of them (`synfashion.fs.ownership.check_apart`)."""
        self.open()
        plan = self._pairs.plan
        return {f"evaluation file {self.path.name}": self.path,
                f"translated images of {self.label}": plan.translated, f"source of {self.label}": plan.source}

    def pictures(self, source_key: str) -> dict:
        """{"translated", "source"} (uint8 [3, H, W]) of the image scored for `source_key`, or {"error": why}."""
        self.open()
        scored = self.images[source_key]
        i = self._index.get(scored.name)
        if i is None:
            return {"error": f"{scored.name} no longer pairs with a source image"}
        pair = self._pairs.plan.pairs[i]
        if pair.source_key != source_key:
            return {"error": f"{scored.name} now pairs with {pair.source_key}, not {source_key} as when evaluated"}
        item = self._pairs[i]
        if "error" in item:
            return {"error": item["error"]}
        return {"translated": item["translated"], "source": item["source"]}


def load_evaluation(path: Path) -> Evaluation:
    """One `r2r evaluate` JSON (`read_result`), with its scored images by source key."""
    path = Path(path)
    data = read_result(path)
    data.pop("_path")
    if not data["images"]:
        raise ResultError(f"{path}: no per-image 'images' entries")
    by_key: dict[str, ScoredImage] = {}
    for n, im in enumerate(data["images"]):
        key = im["source_key"]
        if key in by_key:
            raise ResultError(f"{path}: images[{n}]: source key {key!r} is scored twice")
        by_key[key] = ScoredImage(im["name"], key, str(im.get("category") or ""), im.get("lpips"), im.get("ssim"))
    method = data["method"]
    return Evaluation(path, method, method, by_key, data)


def load_evaluations(paths: list[Path]) -> list[Evaluation]:
    """Several files; labels made unique ('CUT (cut-a.json)') where two files name the same method."""
    if not paths:
        raise ValueError("no `r2r evaluate` JSON files given")
    evals = [load_evaluation(p) for p in paths]
    seen_paths: dict[Path, Path] = {}
    for e in evals:
        real = e.path.resolve()
        if real in seen_paths:
            raise ValueError(f"{e.path} is given twice")
        seen_paths[real] = e.path
    counts: dict[str, int] = {}
    for e in evals:
        counts[e.method] = counts.get(e.method, 0) + 1
    for e in evals:
        if counts[e.method] > 1:
            e.label = f"{e.method} ({e.path.name})"
    labels = [e.label for e in evals]
    if len(set(labels)) != len(labels):
        for n, e in enumerate(evals):
            e.label = f"{e.method} ({n + 1}: {e.path})"
    return evals
