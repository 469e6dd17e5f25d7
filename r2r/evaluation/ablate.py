"""`r2r ablate`: the paper's ablation table in one command.

Each variant (the full method; without the negative embedding; without positive DKI; without TAC; the standard
inversion order; optional sweeps of one RIG parameter) is the full method's settings with one thing changed. Every
variant is written by translate-dataset's own code (r2r/translate/dataset.py) into OUT/<variant>/ from exactly the
same source rows, scored by `r2r evaluate`'s code (r2r/evaluation/run.py, the same `MetricSettings` for every
variant) into OUT/eval/<variant>.json against one set of real-photo features (computed once per run, and across
runs read from the statistics cache, r2r/evaluation/reference.py; or `--real-stats` files), and the rows
are put side by side by r2r/evaluation/table.py (the console, OUT/ablation.md, OUT/ablation.csv). OUT/ablation.json
records the variants, each one's settings difference from full, those left out and why, the source rows, and the
paths.

Rerun and resume: translate-dataset reuses a finished variant (same fingerprint) and resumes an interrupted one; an
eval JSON is reused only when it scored that very build (the dataset's fingerprint) under the same protocol, else it
is recomputed, saying why. Other shared settings into an existing OUT are refused with the differences unless
--overwrite, which replaces only what ablate and translate-dataset wrote there; a folder that is another command's
or a user's is refused whatever the flags, and OUT is apart from the source, the real photos and the model
(`synfashion.fs.ownership`). This module decides and records; it
translates, scores and tabulates only through those modules, and imports no torch at import time (`r2r --help`);
its command is r2r/commands/ablate.py.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from synfashion.cliutil import comma_text, option, reuse

from ..config import ModelSpec, RIGParams
from ..progress import stderr_console
from ..translate.job import DatasetJob
from synfashion.settings import differences
from ..translate.sizes import SizePolicy
from .run import MetricSettings

FORMAT = "r2r-ablate/1"
RECORD = "ablation.json"  # OUT's record: written first (an OUT without it is not ours), completed last
EVAL_DIR = "eval"
VARIANT_KINDS = ("full", "no-negative", "no-positive", "no-tac", "standard-inversion")
# --sweep NAME -> the RIGParams field it sets (gamma and the layer threshold are the paper's names for TAC's knobs)
SWEEP_FIELDS = {"gamma": "tac_ratio", "tac-ratio": "tac_ratio", "layer-threshold": "tac_layers",
                "tac-layers": "tac_layers", "strength": "strength", "guidance": "guidance_scale",
                "steps": "num_inference_steps"}
TAC_FIELDS = ("tac_ratio", "tac_layers")
ARTIFACT_KEYS = ("model", "negative_embedding", "lora", "unet")


# --------------------------------------------------------------------------------------------------- settings
def _sweep_value(name: str, text: str):
    field_name = SWEEP_FIELDS[name]
    try:
        if field_name == "tac_layers":
            value = None if text.lower() == "none" else int(text)
            ok = value is None or value >= 1
        elif field_name == "num_inference_steps":
            value = int(text)
            ok = value >= 1
        else:
            value = float(text)
            ok = {"tac_ratio": 0.0 <= value <= 1.0, "strength": 0.0 < value <= 1.0}.get(field_name, value >= 0)
    except ValueError:
        ok = False
    if not ok:
        want = {"tac_ratio": "a number in [0, 1]", "tac_layers": "an integer >= 1 or 'none'",
                "strength": "a number in (0, 1]", "num_inference_steps": "an integer >= 1"}.get(field_name,
                                                                                             "a number >= 0")
        raise ValueError(f"--sweep {name}: {text!r} is not {want}")
    return value


def shown_value(value) -> str:
    """A sweep value as it appears in a variant's name: 0.5, 256, none."""
    return "none" if value is None else repr(value) if isinstance(value, float) else str(value)  # repr: exact


@dataclass(frozen=True)
class Sweep:
    """One `--sweep NAME=V1,V2,...`: a variant per value, the full method's settings with that one changed."""

    name: str  # a key of SWEEP_FIELDS
    values: tuple

    @property
    def field(self) -> str:
        return SWEEP_FIELDS[self.name]

    @classmethod
    def parse(cls, text: str) -> Sweep:
        name, sep, values = text.partition("=")
        name = name.strip().lower()
        if not sep or name not in SWEEP_FIELDS:
            raise ValueError(f"--sweep {text!r}: expected NAME=V1,V2,... with NAME one of {', '.join(SWEEP_FIELDS)}")
        parsed = tuple(_sweep_value(name, v.strip()) for v in values.split(",") if v.strip())
        if not parsed:
            raise ValueError(f"--sweep {text!r}: no values")
        if len(set(parsed)) != len(parsed):
            raise ValueError(f"--sweep {text!r}: a value is listed twice")
        return cls(name, parsed)


def _variants(text: str) -> tuple[str, ...]:
    """--variants: 'all', or a comma-separated list (checked by AblateConfig)."""
    return VARIANT_KINDS if text.strip() == "all" else tuple(v.strip() for v in text.split(",") if v.strip())


def _shown_variants(variants: tuple[str, ...]) -> str:
    return "all" if variants == VARIANT_KINDS else comma_text(variants)


def _sweeps(texts: tuple[str, ...]) -> tuple[Sweep, ...]:
    return tuple(Sweep.parse(t) for t in texts)


@dataclass(frozen=True)
class AblateConfig:
    """One `r2r ablate` run. `model` and `params` are the full method; the variants are derived from them."""

    source: str = option("source", help="built SynFashion folder or Hub dataset id (the rendered images)")
    out: Path = option("out", type=Path,
                       help="output folder of the ablation (resumed if it holds this ablation)")
    model: ModelSpec
    evaluation: MetricSettings  # how every variant is scored (the same for all rows, so they are comparable)
    params: RIGParams = RIGParams()
    variants: tuple[str, ...] = option(
        "--variants", default=VARIANT_KINDS, parse=_variants, show=_shown_variants,
        help=f"comma-separated, in table order, from: {', '.join(VARIANT_KINDS)}; 'all': these five in this order")
    sweeps: tuple[Sweep, ...] = option(
        "--sweep", default=(), append=True, metavar="NAME=V1,V2,...", parse=_sweeps,
        help="a variant per value of one RIG parameter, all else as full (repeatable; default: none). "
             f"NAME: {', '.join(SWEEP_FIELDS)} (gamma = --tac-ratio, layer-threshold = --tac-layers)")
    split: str = option("--split", default="test",
                        help="source split every variant translates: train, validation or test")
    categories: tuple[str, ...] | None = reuse(DatasetJob, "categories")
    limit: int | None = reuse(DatasetJob, "limit",
                              help="at most N images (a fixed hash-chosen subset; default: the whole split)")
    revision: str | None = reuse(DatasetJob, "revision")  # of a Hub source
    batch_size: int = reuse(DatasetJob, "batch_size")
    seed: int = reuse(DatasetJob, "seed")
    size: SizePolicy = SizePolicy()
    allow_rejected: bool = reuse(DatasetJob, "allow_rejected",
                                 help="translate the rest when some images cannot be (each is listed in the "
                                      "manifests)")
    shard_size: int = reuse(DatasetJob, "shard_size")
    formats: tuple[str, ...] = reuse(DatasetJob, "formats", help="comma-separated: parquet (required), webdataset")
    num_workers: int = reuse(DatasetJob, "num_workers")
    per_category: bool = option("--per-category", default=False,
                                help="add a row per category under each variant")
    overwrite: bool = option("--overwrite", default=False,
                             help="replace an ablation of other settings in OUT (only files ablate and "
                                  "translate-dataset wrote)")

    def __post_init__(self) -> None:
        unknown = [v for v in self.variants if v not in VARIANT_KINDS]
        if unknown:
            raise ValueError(f"--variants: unknown variant(s) {', '.join(unknown)}; choose from "
                             f"{', '.join(VARIANT_KINDS)} (and --sweep for parameter sweeps)")
        if len(set(self.variants)) != len(self.variants):
            raise ValueError("--variants: a variant is listed twice")
        if not self.variants and not self.sweeps:
            raise ValueError("nothing to run: --variants is empty and there is no --sweep")
        if len({s.field for s in self.sweeps}) != len(self.sweeps):  # gamma and tac-ratio name one field
            raise ValueError("--sweep: one parameter is swept twice (perhaps under two names); list all its values "
                             "in one --sweep")
        from synfashion.schema import SPLITS

        if self.split not in SPLITS:
            raise ValueError(f"--split {self.split!r}: the SynFashion splits are {', '.join(SPLITS)}")
        if "parquet" not in self.formats:
            raise ValueError("--formats must include parquet: r2r evaluate reads a translated dataset's Parquet")
        if self.limit is not None and self.limit < 1:
            raise ValueError(f"--limit must be >= 1, got {self.limit}")


@dataclass(frozen=True)
class Variant:
    """One row of the table: a name and the translation settings it runs with."""

    name: str  # the row label: full, no-tac, gamma=0.5, ...
    kind: str  # a VARIANT_KINDS entry, or "sweep"
    model: ModelSpec
    params: RIGParams

    @property
    def slug(self) -> str:
        """Its folder and eval file name (names come from fixed words and formatted numbers only)."""
        return self.name.replace("=", "-")


def _plain(obj) -> dict:
    return json.loads(json.dumps(obj))


def _shown_spec(spec: ModelSpec) -> dict:
    """The spec as records show it: a local artifact by its name, never an absolute path; no device."""
    out = {k: v for k, v in asdict(spec).items() if k != "device"}
    for key in ARTIFACT_KEYS:
        if out.get(key) and Path(out[key]).exists():
            out[key] = Path(out[key]).resolve().name
    return out


def variant_settings(v: Variant) -> dict:
    return {"model": _shown_spec(v.model), "params": _plain(asdict(v.params))}


def _negative_token(spec: ModelSpec) -> str:
    if spec.negative_token:
        return spec.negative_token
    from ..models import read_embedding_file

    return read_embedding_file(spec.negative_embedding)[0]


def plan_variants(config: AblateConfig) -> tuple[list[Variant], list[dict]]:
    """(the variants to run, in order; those left out, each with the reason). Variants first, then sweeps."""
    model, params = config.model, config.params
    run: list[Variant] = []
    left: list[dict] = []
    for kind in config.variants:
        if kind == "full":
            run.append(Variant("full", kind, model, params))
        elif kind == "no-negative":
            if not model.negative_embedding:
                left.append({"name": kind, "reason": "no --negative-embedding given: the full method has no negative "
                                                     "embedding to leave out"})
                continue
            prompt = params.negative_prompt
            if prompt is not None:  # an explicit negative prompt naming the token: the token goes with its embedding
                token = _negative_token(model)
                prompt = " ".join(prompt.replace(token, " ").split()) if token in prompt else prompt
            run.append(Variant(kind, kind, replace(model, negative_embedding=None, negative_token=None),
                               replace(params, negative_prompt=prompt)))
        elif kind == "no-positive":
            if not (model.lora or model.unet):
                left.append({"name": kind, "reason": "no --lora or --unet given: the full method already runs the "
                                                     "base UNet"})
                continue
            run.append(Variant(kind, kind, replace(model, lora=None, unet=None), params))
        elif kind == "no-tac":
            if not params.use_tac:
                left.append({"name": kind, "reason": "the full method already runs without TAC (--no-tac)"})
                continue
            run.append(Variant(kind, kind, model, replace(params, use_tac=False)))
        elif kind == "standard-inversion":
            if params.inversion_order == "standard":
                left.append({"name": kind, "reason": "the full method already uses --inversion-order standard"})
                continue
            run.append(Variant(kind, kind, model, replace(params, inversion_order="standard")))
    for sweep in config.sweeps:
        for value in sweep.values:
            name = f"{sweep.name}={shown_value(value)}"
            changed = replace(params, **{sweep.field: value})
            if sweep.field in TAC_FIELDS and not params.use_tac:
                left.append({"name": name, "reason": f"the full method runs without TAC (--no-tac), so {sweep.name} "
                                                     "changes nothing"})
            elif changed == params:
                left.append({"name": name, "reason": f"{sweep.name} {shown_value(value)} is the full method's own "
                                                     "setting (the 'full' row)"})
            else:
                run.append(Variant(name, "sweep", model, changed))
    slugs = [v.slug for v in run]
    if len(set(slugs)) != len(slugs):  # each variant has its own folder and eval file
        twice = next(x for x in slugs if slugs.count(x) > 1)
        raise ValueError(f"two variants would share the folder {twice!r}; make their values differ more")
    return run, left


# --------------------------------------------------------------------------------------------------- the run
@dataclass
class VariantResult:
    variant: Variant
    dataset: Path
    eval_json: Path
    fingerprint: str
    diff: list[str]
    translated: int  # images translated by this run
    reused: int  # images an earlier run had already made
    eval_status: str  # "computed", "reused", or "recomputed (why)"
    result: dict = field(repr=False, default_factory=dict)


@dataclass
class AblateReport:
    out: Path
    variants: list[VariantResult] = field(default_factory=list)
    left_out: list[dict] = field(default_factory=list)
    selection: dict = field(default_factory=dict)
    problems: int = 0  # unpaired / unreadable / untranslated images over all eval JSONs (each lists them)
    random_weights: bool = False


def _settings(config: AblateConfig, source_ref) -> dict:
    """Everything the outputs depend on but the variant list: a rerun into OUT must match it (see _check_out)."""
    from ..translate.dataset import public_identity

    return _plain({
        "source": {k: v for k, v in source_ref.as_dict().items() if k not in ("path", "name")},
        "selection": {"split": config.split, "categories": sorted(config.categories) if config.categories else None,
                      "limit": config.limit, "seed": config.seed},
        "model": public_identity(config.model),
        "params": asdict(config.params),
        "translation": {"batch_size": config.batch_size, "size_policy": config.size.describe(),
                        "allow_rejected": config.allow_rejected, "shard_size": config.shard_size,
                        "formats": list(config.formats), "device_type": config.model.device.split(":")[0]},
        "evaluation": config.evaluation.identity(),
    })


def _inputs(config: AblateConfig) -> dict:
    """What an ablation reads: OUT is never, never holds and never sits in any of them."""
    return {"source dataset": config.source, "real photos": config.evaluation.real, **config.model.inputs()}


def _check_out(out: Path, settings: dict, overwrite: bool, inputs: dict) -> None:
    """Refuse a folder that is not new, empty or an ablation (`synfashion.fs.ownership.claim`: another command's
    output or a user's files, whatever the flags), or an ablation of other settings unless `overwrite`."""
    from synfashion.fs.ownership import claim

    record = out / RECORD
    if claim(out, "ablate", inputs=inputs) is None:
        return
    try:
        old = json.loads(record.read_text(encoding="utf-8"))
        if not isinstance(old, dict) or old.get("format") != FORMAT or not isinstance(old.get("settings"), dict):
            raise ValueError(f"not format {FORMAT!r}")
    except (OSError, ValueError) as e:
        raise FileExistsError(f"{record}: not an r2r ablate record ({e}); choose another folder (nothing in it was "
                              "changed)") from None
    diffs = differences(old["settings"], settings)
    if diffs and not overwrite:
        shown = "; ".join(diffs[:8]) + (f"; and {len(diffs) - 8} more" if len(diffs) > 8 else "")
        raise FileExistsError(f"{out} holds an ablation of other settings ({shown}); pass --overwrite to replace it "
                              "(only files r2r ablate and translate-dataset wrote are replaced), or choose another "
                              "folder")


def _record(config: AblateConfig, settings: dict, variants: list[Variant], left_out: list[dict],
            report: AblateReport | None) -> dict:
    full = variant_settings(Variant("full", "full", config.model, config.params))
    done = {r.variant.name: r for r in report.variants} if report else {}
    rows = []
    for v in variants:
        row = {"name": v.name, "kind": v.kind, "dataset": v.slug, "eval": f"{EVAL_DIR}/{v.slug}.json",
               "settings": variant_settings(v), "settings_diff": differences(full, variant_settings(v))}
        if v.name in done:
            r = done[v.name]
            row.update(fingerprint=r.fingerprint, n=r.result.get("n"))
        rows.append(row)
    doc = {"format": FORMAT, "status": "complete" if report else "running", "settings": settings, "full": full,
           "variants": rows, "left_out": left_out,
           "table": {"markdown": "ablation.md", "csv": "ablation.csv"}}
    if report:
        doc["selection"] = report.selection
        doc["last_run"] = {r.variant.name: {"translated": r.translated, "reused": r.reused, "eval": r.eval_status}
                           for r in report.variants}
    return doc


def _protocol_key(protocol: dict) -> dict:
    """A protocol as far as the numbers depend on it: a weight file by its sha256 (not the path it was read from,
    except random weights, whose origin names the seed); the count of resized images is data, not protocol."""
    def strip(node):
        if isinstance(node, dict):
            keep = {k: strip(v) for k, v in node.items()}
            if "sha256" in keep and "origin" in keep and keep["sha256"] != "random":
                keep.pop("origin")
            return keep
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    doc = strip(_plain(protocol))
    doc.get("translated_resize", {}).pop("count", None)
    return doc


def _eval_status(path: Path, v: Variant, job, networks, fingerprint: str) -> tuple[str | None, dict | None]:
    """(None, result) to reuse `path`; (why it is recomputed, None) otherwise. A file there that ablate did not write
    for this variant is refused, never replaced."""
    from ..metrics import SSIMConfig
    from .results import read_result
    from .run import protocol, source_subset_record

    if not path.exists():
        return "missing", None
    try:
        old = read_result(path)
        old.pop("_path")
        ours = old["method"] == v.name and Path(old["inputs"]["translated"]).name == v.slug
    except ValueError:
        ours = False
    if not ours:
        raise FileExistsError(f"{path} is not an evaluation that r2r ablate wrote for {v.name}; move it away "
                              "(nothing was changed)")
    why = []
    if old["inputs"].get("translated_fingerprint") != fingerprint:
        why.append("the translated dataset is not the one it scored")
    resized = old.get("protocol", {}).get("translated_resize", {}).get("count", 0)
    expected = protocol(job, networks, SSIMConfig(), resized)
    diffs = differences(_protocol_key(old.get("protocol", {})), _protocol_key(expected))
    if diffs:
        why.append(f"its protocol differs: {'; '.join(diffs[:3])}")
    settings = old.get("settings", {})
    for key in ("real", "real_split", "real_stats", "split"):
        mine = list(getattr(job, key)) if isinstance(getattr(job, key), tuple) else getattr(job, key)
        if settings.get(key) != mine:
            why.append(f"{key} {settings.get(key)!r} -> {mine!r}")
    if old["inputs"].get("source_subset") != source_subset_record(job.source_keys):
        why.append("it scored other source rows")
    return ("; ".join(why), None) if why else (None, old)


def run_ablation(config: AblateConfig, *, progress: bool = True) -> AblateReport:
    """Translate, score and tabulate every variant of `config` into `config.out` (see the module docstring)."""
    from rich.markup import escape

    from synfashion.fs.atomic import write_json_atomic
    from synfashion.fs.space import disk_full_as_error
    from synfashion.fs.locks import folder_lock
    from synfashion.fs.ownership import claim

    from .inputs import open_real
    from .run import RANDOM_WARNING, evaluate, networks_for, problem_count, real_features, source_subset_record
    from ..translate.dataset import DatasetJob, translate_dataset
    from loaders.sources import open_records

    console = stderr_console()
    variants, left_out = plan_variants(config)
    for item in left_out:
        console.print(f"[yellow]left out[/] {escape(item['name'])}: {escape(item['reason'])}", highlight=False)
    if not variants:
        raise ValueError("every requested variant was left out (reasons above); nothing to run")
    claim(config.out, "ablate", inputs=_inputs(config))  # cheap, before anything is read: whose folder is OUT?
    source = open_records(config.source, (config.split,), revision=config.revision)
    if source.ref.kind == "webdataset":
        raise ValueError(f"{config.source}: a folder of WebDataset tars; r2r evaluate pairs translations with their "
                         "sources through a built folder or a Hub dataset: pass one of those")
    settings = _settings(config, source.ref)
    # the real photos and the metric weights are checked before any translation (a typo costs no hours of work)
    config.evaluation.check()
    real_set = (open_real(config.evaluation.real, config.evaluation.real_split) if not config.evaluation.real_stats
                else None)
    networks = networks_for(config.evaluation.job(config.out, config.out / EVAL_DIR, "", config.split, (),
                                                  config.num_workers))  # (the weights depend on no variant)
    out = config.out
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"output {out} exists and is not a folder")
    full = variant_settings(Variant("full", "full", config.model, config.params))
    report = AblateReport(out, left_out=left_out)
    with disk_full_as_error(out, what="the ablation"), folder_lock(out, "r2r ablate"):
        _check_out(out, settings, config.overwrite, _inputs(config))
        write_json_atomic(out / RECORD, _record(config, settings, variants, left_out, None), durable=False)
        real = None  # computed once, when the first variant needs scoring
        selection: dict | None = None
        for n, v in enumerate(variants, 1):
            diff = differences(full, variant_settings(v))
            console.print(f"[bold]{n}/{len(variants)} {escape(v.name)}[/]"
                          + (f": {escape('; '.join(diff))}" if diff else ""), highlight=False)
            job = DatasetJob(
                source=config.source, out=out / v.slug, model=v.model, params=v.params, splits=(config.split,),
                categories=config.categories, limit=config.limit, batch_size=config.batch_size, seed=config.seed,
                size=config.size, allow_rejected=config.allow_rejected, formats=config.formats,
                num_workers=config.num_workers, overwrite=config.overwrite, revision=config.revision,
                shard_size=config.shard_size,
            )
            made = translate_dataset(job, progress=progress)
            manifest = made.manifest
            console.print(f"  dataset {escape(str(job.out))}: {made.translated} translated now, {made.reused} from "
                          "earlier runs" + (" (finished earlier: reused)" if not made.translated else ""),
                          highlight=False)
            keys = sorted(str(s["source_key"]) for s in manifest.samples)
            rejected = sorted(str(r.get("key")) for r in manifest.rejected)
            mine = {"split": config.split, "categories": settings["selection"]["categories"], "limit": config.limit,
                    "seed": config.seed, "n": len(keys), "keys": keys, "rejected": rejected}
            if selection is None:
                selection = mine
            elif mine != selection:  # the selection depends on no variant setting; a difference is a bug, not data
                raise RuntimeError(f"variant {v.name} translated other source rows than {variants[0].name} "
                                   f"({len(keys)} vs {selection['n']}); the numbers would not be comparable")
            eval_path = out / EVAL_DIR / f"{v.slug}.json"
            ejob = config.evaluation.job(job.out, eval_path, v.name, config.split, tuple(keys + rejected),
                                         config.num_workers)
            why, result = _eval_status(eval_path, v, ejob, networks, manifest.fingerprint)
            if result is not None:
                status = "reused"
                console.print(f"  eval {escape(str(eval_path))}: reused (same dataset, same protocol)", highlight=False)
            else:
                status = "computed" if why == "missing" else f"recomputed ({why})"
                if why != "missing":
                    console.print(f"  [yellow]eval {escape(str(eval_path))}: recomputed[/] ({escape(why)})",
                                  highlight=False)
                if real is None:  # the same real photos for every variant: their features once per run (and
                    # across runs through the statistics cache, reference.py)
                    real = real_features(ejob, networks, progress=progress, real_set=real_set)
                result = evaluate(ejob, progress=progress, networks=networks, real=real)
            report.random_weights |= bool(result["protocol"].get("random_weights"))
            report.problems += problem_count(result)
            report.variants.append(VariantResult(v, job.out, eval_path, manifest.fingerprint, diff, made.translated,
                                                 made.reused, status, result))
        report.selection = {**selection, "keys_sha256": source_subset_record(tuple(keys + rejected))["sha256"]}
        _write_table(config, report)
        write_json_atomic(out / RECORD, _record(config, settings, variants, left_out, report), durable=False)
    if report.random_weights:
        console.print(f"[bold red]{RANDOM_WARNING}[/]")
    return report


# --------------------------------------------------------------------------------------------------- the table
def _variants_markdown(report: AblateReport) -> str:
    sel = report.selection
    where = f"split {sel['split']}" + (f", categories {', '.join(sel['categories'])}" if sel["categories"] else "") \
        + (f", --limit {sel['limit']} (seed {sel['seed']})" if sel["limit"] else "")
    lines = ["", "## Variants", "",
             f"Every row translated the same {sel['n']} source images ({where}; source keys sha256 "
             f"`{sel['keys_sha256'][:16]}`) and was scored against the same real photos.", ""]
    for r in report.variants:
        what = "; ".join(f"`{d}`" for d in r.diff) if r.diff else "the full method"
        lines.append(f"- **{r.variant.name}**: {what}")
    for item in report.left_out:
        lines.append(f"- left out: **{item['name']}**: {item['reason']}")
    return "\n".join(lines) + "\n"


def _write_table(config: AblateConfig, report: AblateReport) -> None:
    from synfashion.fs.atomic import write_bytes_atomic

    from .table import csv_text, load_results, markdown, print_rich

    results = load_results([r.eval_json for r in report.variants])
    print_rich(results, config.per_category)
    text = markdown(results, config.per_category) + _variants_markdown(report)
    write_bytes_atomic(config.out / "ablation.md", text.encode("utf-8"), durable=False)
    write_bytes_atomic(config.out / "ablation.csv", csv_text(results, config.per_category).encode("utf-8"),
                       durable=False)


__all__ = ["AblateConfig", "AblateReport", "Sweep", "Variant", "plan_variants", "run_ablation"]
