"""`synfashion verify`: prove a built folder is what its manifest says, and that its splits do not leak.

Re-hashes every shard and every sample's bytes, reads every Parquet row and every tar member, checks that the
Parquet and WebDataset copies hold the same samples with the same bytes, and re-checks the split rule from the
data itself (not only from the manifest). Read-only. Shards are checked in parallel (`workers`), each read once:
its sha256 and its rows come from the same bytes.
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

from .build import MANIFEST
from .parallel import parallel_map
from .schema import GARMENTS_CONFIG
from .splits import find_leaks
from .taxonomy import CATEGORIES, VIEWS


@dataclass
class VerifyReport:
    root: Path
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, msg: str) -> None:
        self.problems.append(msg)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_parquet_renders(source, rel: str, expected: dict[str, dict], report: VerifyReport) -> dict[str, str]:
    seen: dict[str, str] = {}
    pf = pq.ParquetFile(source)
    for batch in pf.iter_batches(batch_size=256):
        for row in batch.to_pylist():
            key = row["key"]
            img = row["image"] or {}
            digest = _sha(img.get("bytes") or b"")
            meta = expected.get(key)
            if meta is None:
                report.problem(f"{rel}: row {key!r} is not in the manifest")
                continue
            if digest != meta["sha256"] or row["sha256"] != meta["sha256"]:
                report.problem(f"{rel}: image bytes of {key!r} do not match their sha256 {meta['sha256'][:12]}…")
            for col in ("project", "texture", "view", "width", "height", "mode", "source_path"):
                if row[col] != meta[col]:
                    report.problem(f"{rel}: {key!r} column {col} is {row[col]!r}, manifest says {meta[col]!r}")
            if CATEGORIES[row["category"]] != meta["category"]:
                report.problem(f"{rel}: {key!r} category label disagrees with the manifest")
            seen[key] = digest
            report.checked["parquet rows"] += 1
    return seen


def _check_tar(source: bytes, rel: str, expected: dict[str, dict], report: VerifyReport) -> dict[str, str]:
    seen: dict[str, str] = {}
    members: dict[str, dict[str, bytes]] = defaultdict(dict)
    try:
        with tarfile.open(fileobj=io.BytesIO(source)) as tf:
            for m in tf:
                if not m.isfile():
                    continue
                base = m.name.rsplit("/", 1)[-1]
                key, _, ext = base.partition(".")
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
        elif any(meta.get(k) != v for k, v in json.loads(parts["json"]).items()):
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
                img, want = row[view], row[f"{view}_sha256"]
                if img is None and want is None:
                    continue
                if img is None or _sha(img["bytes"]) != want or want not in by_sha:
                    report.problem(f"{rel}: garment {row['key']!r} view {view} bytes do not match the manifest")
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
    if not path.is_file():
        return [f"{rel}: missing"], {}, None
    data = path.read_bytes()  # one read: the shard's hash and its rows come from the same bytes
    if len(data) != shard["num_bytes"] or _sha(data) != shard["sha256"]:
        return [f"{rel}: sha256/size differ from the manifest (corrupt or modified file)"], {}, None
    report.checked["shards"] += 1
    if shard["config"] == GARMENTS_CONFIG:
        seen = _check_garments(pa.BufferReader(data), rel, job.expected, report)
    elif shard["format"] == "parquet":
        seen = _check_parquet_renders(pa.BufferReader(data), rel, job.expected, report)
    else:
        seen = _check_tar(data, rel, job.expected, report)
    return report.problems, dict(report.checked), seen


def verify_dataset(root: str | Path, *, workers: int = 1, progress: bool = False) -> VerifyReport:
    root = Path(root)
    report = VerifyReport(root=root)
    mpath = root / MANIFEST
    if not mpath.is_file():
        report.problem(f"{mpath} is missing: not a finished synfashion build (an interrupted build? run it again)")
        return report
    try:
        manifest = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        report.problem(f"{mpath}: not valid JSON ({e})")
        return report
    samples = {s["key"]: s for s in manifest["samples"]}
    by_split: dict[str, dict[str, dict]] = defaultdict(dict)
    for key, s in samples.items():
        by_split[s["split"]][key] = s

    # 1-2. every shard is there with the recorded size and hash; per format, every sample present exactly once with
    # the right bytes, in the right split
    jobs = []
    for shard in manifest["shards"]:
        split_samples = by_split[shard["split"]]
        if shard["config"] == GARMENTS_CONFIG:
            expected = {s["sha256"]: s for s in split_samples.values()}
        else:
            expected = split_samples
        jobs.append(_ShardCheck(str(root), shard, expected))
    per_format: dict[str, dict[str, str]] = defaultdict(dict)
    garment_views: set[str] = set()
    results = parallel_map(_check_shard, jobs, workers=workers, chunksize=1, description="verifying shards",
                           progress=progress, weights=[max(1, j.shard.get("num_bytes", 0)) for j in jobs],
                           weights_in_bytes=True, largest_first=True)
    for job, (problems, checked, seen) in zip(jobs, results):
        shard, rel = job.shard, job.shard["path"]
        report.problems += problems
        for name, n in checked.items():
            report.checked[name] += n
        if seen is None:  # missing or corrupt: already reported
            continue
        if shard["config"] == GARMENTS_CONFIG:
            garment_views |= seen
            continue
        if len(seen) != shard["num_samples"]:
            report.problem(f"{rel}: holds {len(seen)} samples, manifest says {shard['num_samples']}")
        for key, digest in seen.items():
            if key in per_format[shard["format"]]:
                report.problem(f"{rel}: sample {key!r} appears in more than one {shard['format']} shard")
            per_format[shard["format"]][key] = digest
    formats = manifest["parameters"]["formats"]
    for fmt in formats:
        missing = set(samples) - set(per_format[fmt])
        if missing:
            report.problem(f"{len(missing)} sample(s) missing from the {fmt} shards, e.g. {sorted(missing)[0]!r}")
    if len(formats) == 2 and per_format["parquet"] != per_format["webdataset"]:
        diff = set(per_format["parquet"].items()) ^ set(per_format["webdataset"].items())
        report.problem(f"Parquet and WebDataset disagree on {len(diff)} sample(s), e.g. {sorted(diff)[0][0]!r}")
    if manifest["parameters"].get("garments") and "parquet" in formats and garment_views != set(samples):
        report.problem(f"garments config covers {len(garment_views)} of {len(samples)} images")

    # 3. the split rule, from the data
    leaks = find_leaks((s["split"], f"{s['category']}/{s['project']}", s["texture"]) for s in samples.values())
    report.problems += [f"split leak: {m}" for m in leaks]
    report.checked["samples"] = len(samples)

    # 4. the card
    card = root / "README.md"
    if not card.is_file():
        report.problem("README.md (dataset card) is missing")
    else:
        from cards.common import CardError, validate_dataset_card

        try:
            validate_dataset_card(card.read_text(encoding="utf-8"))
        except (CardError, ValueError) as e:
            report.problem(f"README.md: {e}")
    return report
