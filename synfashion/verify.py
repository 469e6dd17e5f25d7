"""`synfashion verify`: prove a built folder is what its manifest says, and vouch for nothing else.

Re-hashes every shard and every sample's bytes, reads every Parquet row and every tar member, checks that the
Parquet and WebDataset copies hold the same samples with the same bytes, re-checks the split rule from the data
itself, checks the manifest's counts against its samples and the card's licence, and accounts for every file in
the folder: a file the manifest does not list (a stray shard the loader would read twice, a file `push` would
upload) is a problem, and so is a tar member that is not a plain `<key>.<ext>` file (an absolute or `..` name, a
link). A translated variant's provenance is checked too (every row names its source and its source's hash).
Read-only. Shards are checked in parallel (`workers`), each read once: its sha256 and its rows from the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from .manifest import MANIFEST, Manifest, ManifestError, compute_counts
from .parallel import parallel_map
from .schema import GARMENTS_CONFIG, LABEL_COLUMNS, PAIRS_CONFIG, PROVENANCE_FIELDS, RENDERS_CONFIG
from .splits import find_leaks
from .taxonomy import VIEWS

LICENSE_IDS = ("cc-by-nc-nd-4.0",)  # SynFashion's licence; it binds translated variants too
# Files a finished folder may hold besides the card, the manifest and its shards: never published, never read as
# data. .gitattributes and .cache/huggingface come with a Hub download; stats/ is `synfashion stats` output.
LOCAL_ONLY = (".gitattributes",)
LOCAL_ONLY_DIRS = (".cache/huggingface/", "stats/")


@dataclass
class VerifyReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    vouched: set[str] = field(default_factory=set)  # relative paths of the files verify checked and found good

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, msg: str) -> None:
        self.problems.append(msg)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_row_meta(rel: str, row: dict, meta: dict, columns: list[str], report: VerifyReport) -> None:
    for col in columns:
        if col in LABEL_COLUMNS:
            continue
        if col in row and row[col] != _as_stored(meta.get(col), row[col]):
            report.problem(f"{rel}: {meta['key']!r} column {col} is {row[col]!r}, manifest says {meta.get(col)!r}")
    for col, names in LABEL_COLUMNS.items():
        if col not in row:
            continue
        value = row[col]  # a ClassLabel id (a name in builds made before view became a label)
        named = names[value] if isinstance(value, int) and 0 <= value < len(names) else value
        if named != meta.get(col) or (col == "category" and not isinstance(value, int)):
            report.problem(f"{rel}: {meta['key']!r} {col} label {value!r} disagrees with the manifest")


def _as_stored(value, stored):
    """A manifest value as its column stores it (extra columns: floats from ints, JSON text from objects)."""
    if isinstance(stored, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(stored, str) and value is not None and not isinstance(value, str):
        return json.dumps(value, sort_keys=True)
    return value


def _check_parquet_renders(source, rel: str, expected: dict[str, dict], report: VerifyReport) -> dict[str, str]:
    seen: dict[str, str] = {}
    pf = pq.ParquetFile(source)
    names = set(pf.schema_arrow.names)
    missing = {"image", "key", "category", "sha256"} - names
    if missing:
        report.problem(f"{rel}: lacks column(s) {', '.join(sorted(missing))}")
        return seen
    columns = [c for c in pf.schema_arrow.names if c not in ("image", "key", "category", "sha256")]
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            key = row["key"]
            meta = expected.get(key)
            if meta is None:
                report.problem(f"{rel}: row {key!r} is not in the manifest")
                continue
            img = row["image"] if isinstance(row["image"], dict) else {}
            digest = _sha(img.get("bytes") or b"")
            if digest != meta["sha256"] or row["sha256"] != meta["sha256"]:
                report.problem(f"{rel}: image bytes of {key!r} do not match their sha256 {meta['sha256'][:12]}…")
            _check_row_meta(rel, row, meta, columns, report)
            seen[key] = digest
            report.checked["parquet rows"] += 1
    return seen


def _check_pairs(source, rel: str, expected: dict[str, dict], report: VerifyReport) -> set[str]:
    seen: set[str] = set()
    for batch in pq.ParquetFile(source).iter_batches(batch_size=64):
        for row in batch.to_pylist():
            meta = expected.get(row.get("key"))
            if meta is None:
                report.problem(f"{rel}: pairs row {row.get('key')!r} is not in the manifest")
                continue
            translated, rendered = row.get("translated_image") or {}, row.get("rendered_image") or {}
            if _sha(translated.get("bytes") or b"") != meta["sha256"] or row.get("translated_sha256") != meta["sha256"]:
                report.problem(f"{rel}: translated bytes of {meta['key']!r} do not match their sha256")
            want = meta.get("source_sha256")
            if _sha(rendered.get("bytes") or b"") != want or row.get("rendered_sha256") != want:
                report.problem(f"{rel}: rendered bytes of {meta['key']!r} do not match source_sha256")
            if row.get("source_key") != meta.get("source_key"):
                report.problem(f"{rel}: {meta['key']!r} source_key disagrees with the manifest")
            seen.add(meta["key"])
            report.checked["pairs rows"] += 1
    return seen


def _check_tar(source: bytes, rel: str, expected: dict[str, dict], report: VerifyReport) -> dict[str, str]:
    seen: dict[str, str] = {}
    members: dict[str, dict[str, bytes]] = defaultdict(dict)
    try:
        with tarfile.open(fileobj=io.BytesIO(source)) as tf:
            for m in tf:
                if not m.isfile():
                    report.problem(f"{rel}: member {m.name!r} is not a regular file (a link or folder); refused")
                    continue
                if "/" in m.name or m.name.startswith(".") or "." not in m.name or "\\" in m.name:
                    report.problem(f"{rel}: member name {m.name!r} is not a plain <key>.<ext> name")
                    continue
                key, _, ext = m.name.partition(".")
                if ext in members[key]:
                    report.problem(f"{rel}: member {m.name!r} appears twice")
                members[key][ext] = tf.extractfile(m).read()
    except (tarfile.TarError, OSError) as e:
        report.problem(f"{rel}: unreadable tar ({e})")
        return seen
    for key, parts in members.items():
        meta = expected.get(key)
        if meta is None:
            report.problem(f"{rel}: sample {key!r} is not in the manifest")
            continue
        if "json" not in parts:
            report.problem(f"{rel}: sample {key!r} has no .json member")
        else:
            try:
                doc = json.loads(parts["json"])
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                report.problem(f"{rel}: {key}.json is not valid JSON ({e})")
                doc = None
            if doc is not None and (not isinstance(doc, dict) or any(meta.get(k) != v for k, v in doc.items())):
                report.problem(f"{rel}: {key}.json disagrees with the manifest")
        images = [v for k, v in parts.items() if k != "json"]
        if len(images) != 1:
            report.problem(f"{rel}: sample {key!r} has {len(images)} image members, expected 1")
            continue
        digest = _sha(images[0])
        if digest != meta["sha256"]:
            report.problem(f"{rel}: image bytes of {key!r} do not match their sha256 {meta['sha256'][:12]}…")
        seen[key] = digest
        report.checked["webdataset samples"] += 1
    return seen


def _check_garments(source, rel: str, by_sha: dict[str, dict], report: VerifyReport) -> set[str]:
    seen = set()
    for batch in pq.ParquetFile(source).iter_batches(batch_size=64):
        for row in batch.to_pylist():
            for view in VIEWS:
                img, want = row.get(view), row.get(f"{view}_sha256")
                if img is None and want is None:
                    continue
                if img is None or _sha(img["bytes"]) != want or want not in by_sha:
                    report.problem(f"{rel}: garment {row.get('key')!r} view {view} bytes do not match the manifest")
                    continue
                seen.add(by_sha[want]["key"])
            report.checked["garment rows"] += 1
    return seen


@dataclass(frozen=True)
class _ShardCheck:
    root: str
    shard: dict  # its manifest entry
    expected: dict[str, dict]  # the split's samples by key (by sha256 for a garments shard)


def _check_shard(job: _ShardCheck) -> tuple[list[str], dict[str, int], dict[str, str] | set[str] | None]:
    """Worker: (problems, counts, what the shard holds); None for a missing or corrupt shard."""
    report = VerifyReport(root=Path(job.root))
    shard, rel = job.shard, job.shard["path"]
    path = Path(job.root, rel)
    if path.is_symlink() or not path.is_file():
        return [f"{rel}: missing" if not path.is_symlink() else f"{rel}: is a symbolic link, not a shard"], {}, None
    data = path.read_bytes()  # one read: the shard's hash and its rows come from the same bytes
    if len(data) != shard["num_bytes"] or _sha(data) != shard["sha256"]:
        return [f"{rel}: sha256/size differ from the manifest (corrupt or modified file)"], {}, None
    report.checked["shards"] += 1
    try:
        if shard["config"] == GARMENTS_CONFIG:
            seen = _check_garments(pa.BufferReader(data), rel, job.expected, report)
        elif shard["config"] == PAIRS_CONFIG:
            seen = _check_pairs(pa.BufferReader(data), rel, job.expected, report)
        elif shard["format"] == "parquet":
            seen = _check_parquet_renders(pa.BufferReader(data), rel, job.expected, report)
        else:
            seen = _check_tar(data, rel, job.expected, report)
    except (pa.ArrowException, OSError, ValueError, KeyError, TypeError) as e:
        report.problem(f"{rel}: unreadable {shard['format']} shard ({type(e).__name__}: {e})")
        return report.problems, dict(report.checked), None
    return report.problems, dict(report.checked), seen


def _account_for_files(root: Path, listed: set[str], report: VerifyReport) -> None:
    """Every file in the folder is the card, the manifest, a listed shard, or local-only (see LOCAL_ONLY)."""
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_dir() and not p.is_symlink():
            continue
        if rel in listed or rel in ("README.md", MANIFEST) or rel in LOCAL_ONLY or rel.startswith(LOCAL_ONLY_DIRS):
            continue
        kind = "symbolic link" if p.is_symlink() else "file"
        report.problem(f"{rel}: a {kind} that manifest.json does not list (loaders and push would pick it up); "
                       "remove it, or rebuild")


def _check_card(root: Path, manifest: Manifest, report: VerifyReport) -> bool:
    """The card validates and carries SynFashion's licence; False if not. (Its text may differ from the one the build
    wrote: people edit cards on the Hub.)"""
    card = root / "README.md"
    if not card.is_file():
        report.problem("README.md (dataset card) is missing")
        return False
    before = len(report.problems)
    from cards.common import CardError, validate_dataset_card

    text = card.read_text(encoding="utf-8", errors="replace")
    try:
        data = validate_dataset_card(text).data.to_dict()
    except (CardError, ValueError) as e:
        report.problem(f"README.md: {e}")
        return False
    license_id = data.get("license")
    if license_id not in LICENSE_IDS:
        report.problem(f"README.md: license is {license_id!r}; SynFashion data (and every variant made from it) is "
                       f"{LICENSE_IDS[0]}")
    return len(report.problems) == before


def verify_dataset(root: str | Path, *, workers: int = 1, progress: bool = False,
                   formats: tuple[str, ...] | None = None) -> VerifyReport:
    """`formats`: check only the shards of these formats (a pull that fetched only some)."""
    root = Path(root)
    report = VerifyReport(root=root)
    try:
        manifest = Manifest.read(root)
    except ManifestError as e:
        report.problem(str(e))
        return report
    formats = tuple(f for f in manifest.formats if formats is None or f in formats)
    samples = {s["key"]: s for s in manifest.samples}
    by_split: dict[str, dict[str, dict]] = defaultdict(dict)
    for key, s in samples.items():
        by_split[s["split"]][key] = s

    # 0. the manifest agrees with itself: counts from its samples, provenance of a variant
    counts = compute_counts(manifest.samples)
    for name, value in counts.items():
        if manifest.counts.get(name) != value:
            report.problem(f"manifest.json: counts.{name} is {manifest.counts.get(name)!r}, its samples give {value!r}")
    if manifest.kind == "translated":
        for s in manifest.samples:
            if not all(isinstance(s.get(f), str) and s.get(f) for f in PROVENANCE_FIELDS):
                report.problem(f"manifest.json: translated sample {s['key']!r} lacks {' or '.join(PROVENANCE_FIELDS)}")
                break

    # 1-2. every shard is there with the recorded size and hash; per format, every sample present exactly once with
    # the right bytes, in the right split
    jobs = []
    for shard in manifest.shards:
        if shard.format not in formats:
            continue
        split_samples = by_split[shard.split]
        expected = ({s["sha256"]: s for s in split_samples.values()} if shard.config == GARMENTS_CONFIG
                    else split_samples)
        jobs.append(_ShardCheck(str(root), shard.to_dict(), expected))
    per_format: dict[str, dict[str, str]] = defaultdict(dict)
    per_config: dict[str, set[str]] = defaultdict(set)
    results = parallel_map(_check_shard, jobs, workers=workers, chunksize=1, description="verifying shards",
                           progress=progress, weights=[max(1, j.shard["num_bytes"]) for j in jobs],
                           weights_in_bytes=True, largest_first=True)
    for job, (problems, checked, seen) in zip(jobs, results):
        shard, rel = job.shard, job.shard["path"]
        report.problems += problems
        for name, n in checked.items():
            report.checked[name] += n
        if seen is None:  # missing or corrupt: already reported
            continue
        if not problems:
            report.vouched.add(rel)
        if shard["config"] in (GARMENTS_CONFIG, PAIRS_CONFIG):
            per_config[shard["config"]] |= seen
            if shard["config"] == PAIRS_CONFIG and len(seen) != shard["num_samples"]:
                report.problem(f"{rel}: holds {len(seen)} rows, manifest says {shard['num_samples']}")
            continue
        if len(seen) != shard["num_samples"]:
            report.problem(f"{rel}: holds {len(seen)} samples, manifest says {shard['num_samples']}")
        for key, digest in seen.items():
            if key in per_format[shard["format"]]:
                report.problem(f"{rel}: sample {key!r} appears in more than one {shard['format']} shard")
            per_format[shard["format"]][key] = digest
    for fmt in formats:
        missing = set(samples) - set(per_format[fmt])
        if missing:
            report.problem(f"{len(missing)} sample(s) missing from the {fmt} shards, e.g. {sorted(missing)[0]!r}")
    if len(formats) == 2 and per_format["parquet"] != per_format["webdataset"]:
        diff = set(per_format["parquet"].items()) ^ set(per_format["webdataset"].items())
        report.problem(f"Parquet and WebDataset disagree on {len(diff)} sample(s), e.g. {sorted(diff)[0][0]!r}")
    if "parquet" in formats:
        for config in manifest.parquet_configs():
            if config in (GARMENTS_CONFIG, PAIRS_CONFIG) and per_config[config] != set(samples):
                report.problem(f"{config} config covers {len(per_config[config])} of {len(samples)} images")
            if config not in (RENDERS_CONFIG, GARMENTS_CONFIG, PAIRS_CONFIG):
                report.problem(f"manifest.json: unknown Parquet config {config!r}")

    # 3. the split rule, from the data
    leaks = find_leaks((s["split"], f"{s['category']}/{s['project']}", s["texture"]) for s in samples.values())
    report.problems += [f"split leak: {m}" for m in leaks]
    report.checked["samples"] = len(samples)

    # 4. the card, and every file in the folder accounted for (shards of formats not verified are listed, not vouched)
    report.vouched.add(MANIFEST)
    if _check_card(root, manifest, report):
        report.vouched.add("README.md")
    _account_for_files(root, {s.path for s in manifest.shards}, report)
    return report
