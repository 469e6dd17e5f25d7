"""Bring a pushed dataset back: download one pinned commit into a folder, mirror deletions, then `verify`.

The repo is written by whoever owns it, so its file listing is data: every listed path must be a plain relative
path (`synfashion.fs.safepath`), or the pull is refused naming the paths before anything is written. `formats` fetches
only some copies of the images (Parquet under data/, WebDataset tars under webdataset/); the card and manifest
always come along.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from huggingface_hub import HfApi
from rich.console import Console

from .. import __version__
from ..fs.safepath import path_problem
from .errors import HubError, _Context, _hub_errors, _progress_bars, _token_source
from .push import MANAGED_PREFIXES, REPO_TYPE

_PULL_MARKER = Path(".cache") / "huggingface"  # what snapshot_download(local_dir=...) leaves in a pulled folder
FORMAT_FOLDERS: dict[str, str] = {"parquet": "data/", "webdataset": "webdataset/"}  # the build's layout
ALWAYS = ("README.md", "manifest.json", ".gitattributes")  # fetched whatever the formats


class UnsafeRepoError(HubError):
    """The repo lists a file whose path is not a plain relative path (`pipe:...`, `../x`, `/etc/x`, ...)."""


def parse_formats(formats: str | Iterable[str] | None) -> tuple[str, ...]:
    """("parquet", "webdataset") or a subset, from a comma-separated string or a list; None means both."""
    if formats is None:
        return tuple(FORMAT_FOLDERS)
    items = [f.strip() for f in (formats.split(",") if isinstance(formats, str) else formats) if f.strip()]
    bad = [f for f in items if f not in FORMAT_FOLDERS]
    if bad or not items:
        raise ValueError(f"formats {bad or items!r}: choose from {', '.join(FORMAT_FOLDERS)} (comma-separated)")
    return tuple(f for f in FORMAT_FOLDERS if f in items)


def _refuse_unsafe(repo_id: str, sha: str, paths: Iterable[str]) -> None:
    unsafe = [(p, path_problem(p)) for p in paths if path_problem(p)]
    if unsafe:
        shown = "; ".join(f"{p!r} {problem}" for p, problem in unsafe[:5])
        more = f"; and {len(unsafe) - 5} more" if len(unsafe) > 5 else ""
        raise UnsafeRepoError(
            f"{repo_id}@{sha[:12]} lists {len(unsafe)} file(s) whose path is not a plain relative path: {shown}{more}. "
            "Nothing was downloaded: a dataset repo's paths are data, never commands, URLs or places outside the "
            "folder."
        )


def _verify(out: Path, formats: tuple[str, ...], progress: bool):
    from ..parallel import default_workers
    from ..verify import verify_dataset

    if formats == tuple(FORMAT_FOLDERS):
        return verify_dataset(out, workers=default_workers(), progress=progress)
    return verify_dataset(out, workers=default_workers(), progress=progress, formats=formats)


def pull_dataset(
    repo_id: str,
    out: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    verify: bool = True,
    formats: str | Iterable[str] | None = None,
    console: Console | None = None,
    progress: bool = True,
) -> Path:
    """Download `repo_id` at `revision` (pinned to its commit) into `out`, then (by default) `verify` it.

    `out` must be empty or an earlier pull: files under data/ and webdataset/ that the pulled revision does not
    have are removed, so a re-pull mirrors the revision. An interrupted pull resumes where it stopped.
    `formats` ("parquet", "webdataset", or both: the default) fetches only those copies of the images, plus the
    card and manifest; a folder holding files of a format not asked for is refused rather than left half-updated.
    A repo listing any file whose path is not a plain relative path is refused before anything is written.
    """
    console = console or Console(stderr=True)
    out = Path(out)
    wanted = parse_formats(formats)
    if out.exists() and any(out.iterdir()) and not (out / _PULL_MARKER).is_dir():
        raise HubError(f"{out} is not empty and is not an earlier pull: choose an empty or new folder")
    others = [FORMAT_FOLDERS[f] for f in FORMAT_FOLDERS if f not in wanted]
    kept = sorted(p.relative_to(out).as_posix() for folder in others if (out / folder).is_dir()
                  for p in (out / folder).rglob("*") if p.is_file())
    if kept:
        raise HubError(f"{out} holds {len(kept)} file(s) of a format not asked for ({kept[0]}, ...) from an earlier "
                       f"pull: pass --formats {','.join(FORMAT_FOLDERS)} to update them too, or pull into a new folder")
    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("pull", repo_id, revision or "main", api.endpoint, _token_source(token), token)
    with _hub_errors(ctx), _progress_bars(progress):
        ctx.action = "reading the repo"
        info = api.dataset_info(repo_id, revision=revision)
        remote = {s.rfilename for s in info.siblings or []}
        _refuse_unsafe(repo_id, info.sha, remote)  # before anything is written
        patterns = None
        if wanted != tuple(FORMAT_FOLDERS):
            patterns = [*ALWAYS, *(FORMAT_FOLDERS[f] + "*" for f in wanted)]
            remote = {p for p in remote if p in ALWAYS or p.startswith(tuple(FORMAT_FOLDERS[f] for f in wanted))}
        ctx.action = f"downloading {repo_id}@{info.sha[:12]}"
        api.snapshot_download(repo_id=repo_id, repo_type=REPO_TYPE, revision=info.sha, local_dir=out,
                              allow_patterns=patterns)
    # files an earlier pull downloaded (huggingface_hub keeps a metadata file for each) that this revision no longer
    # has; anything else is never deleted here (verify names it as a file the manifest does not list)
    downloads = out / _PULL_MARKER / "download"
    stale = [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix().startswith(MANAGED_PREFIXES)
             and p.relative_to(out).as_posix() not in remote
             and (downloads / f"{p.relative_to(out).as_posix()}.metadata").is_file()]
    for p in stale:
        p.unlink()
        (downloads / f"{p.relative_to(out).as_posix()}.metadata").unlink(missing_ok=True)
    what = "" if patterns is None else f" ({', '.join(wanted)} only)"
    console.print(f"pulled {repo_id}@{info.sha[:12]} into {out}: {len(remote)} files{what}"
                  + (f", {len(stale)} stale local files removed" if stale else ""), highlight=False, soft_wrap=True)
    if verify:
        report = _verify(out, wanted, progress)
        if not report.ok:
            shown = "\n".join(f"  - {p}" for p in report.problems[:20])
            raise HubError(f"pulled {repo_id}@{info.sha[:12]} into {out}, but verify found "
                           f"{len(report.problems)} problem(s):\n{shown}")
        console.print(f"[green]verified[/] {out}: " + ", ".join(f"{v} {k}" for k, v in report.checked.items()),
                      highlight=False, soft_wrap=True)
    return out
