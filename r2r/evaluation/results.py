"""`r2r evaluate` JSON files read back, and the pictures they scored found again.

Why: `r2r report` and `r2r study-page` show the images an evaluation scored next to their rendered sources. The
JSON records where the translated images and their source were (`inputs`, `settings`) and, per image, its name,
source key and scores. The images are re-opened through eval_inputs' pairing and decoding, the same code
`r2r evaluate` ran, and an image is shown only if its name still pairs with the same source key; otherwise the page
says why. Reads only, computes no metric. Paths in a JSON are as `r2r evaluate` was given them (relative to the
folder it ran in); where those do not resolve from here, `inputs.from_json` (the same paths relative to the JSON's
folder) is used.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


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
    _pairs: object = field(default=None, repr=False)  # eval_inputs.PairImages, opened on first use
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


def _number(value, where: str) -> float | None:
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    raise ValueError(f"{where} is not a number: {value!r}")


def load_evaluation(path: Path) -> Evaluation:
    """One `r2r evaluate` JSON, checked enough that a bad file is one clear error naming it."""
    from .run import FORMAT

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path}: not an `r2r evaluate` result (format {FORMAT!r})")
    inputs, images = data.get("inputs"), data.get("images")
    if not isinstance(inputs, dict) or not isinstance(inputs.get("translated"), str) or \
            not isinstance(inputs.get("split"), str):
        raise ValueError(f"{path}: no 'inputs' naming the translated images and the split")
    if not isinstance(images, list) or not images:
        raise ValueError(f"{path}: no per-image 'images' entries")
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise ValueError(f"{path}: no 'method' name")
    by_key: dict[str, ScoredImage] = {}
    for n, im in enumerate(images):
        where = f"{path}: images[{n}]"
        if not isinstance(im, dict) or not all(isinstance(im.get(k), str) and im.get(k) for k in
                                               ("name", "source_key")):
            raise ValueError(f"{where} has no 'name' and 'source_key'")
        key = im["source_key"]
        if key in by_key:
            raise ValueError(f"{where}: source key {key!r} is scored twice")
        by_key[key] = ScoredImage(im["name"], key, str(im.get("category") or ""),
                                  _number(im.get("lpips"), f"{where}.lpips"), _number(im.get("ssim"), f"{where}.ssim"))
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
