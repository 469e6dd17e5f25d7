"""Bring a pushed dataset back: download one pinned commit into a folder, mirror deletions, then `verify`."""

from __future__ import annotations

from pathlib import Path

from huggingface_hub import HfApi
from rich.console import Console

from .. import __version__
from .errors import HubError, _Context, _hub_errors, _progress_bars, _token_source
from .push import MANAGED_PREFIXES, REPO_TYPE

_PULL_MARKER = Path(".cache") / "huggingface"  # what snapshot_download(local_dir=...) leaves in a pulled folder


def pull_dataset(
    repo_id: str,
    out: str | Path,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
    verify: bool = True,
    console: Console | None = None,
    progress: bool = True,
) -> Path:
    """Download `repo_id` at `revision` (pinned to its commit) into `out`, then (by default) `verify` it.

    `out` must be empty or an earlier pull: files under data/ and webdataset/ that the pulled revision does not
    have are removed, so a re-pull mirrors the revision. An interrupted pull resumes where it stopped.
    """
    console = console or Console(stderr=True)
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not (out / _PULL_MARKER).is_dir():
        raise HubError(f"{out} is not empty and is not an earlier pull: choose an empty or new folder")
    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("pull", repo_id, revision or "main", api.endpoint, _token_source(token), token)
    with _hub_errors(ctx), _progress_bars(progress):
        ctx.action = "reading the repo"
        info = api.dataset_info(repo_id, revision=revision)
        ctx.action = f"downloading {repo_id}@{info.sha[:12]}"
        api.snapshot_download(repo_id=repo_id, repo_type=REPO_TYPE, revision=info.sha, local_dir=out)
    remote = {s.rfilename for s in info.siblings or []}
    stale = [p for p in out.rglob("*") if p.is_file() and p.relative_to(out).as_posix().startswith(MANAGED_PREFIXES)
             and p.relative_to(out).as_posix() not in remote]
    for p in stale:
        p.unlink()
    console.print(f"pulled {repo_id}@{info.sha[:12]} into {out}: {len(remote)} files"
                  + (f", {len(stale)} stale local files removed" if stale else ""), highlight=False, soft_wrap=True)
    if verify:
        from ..parallel import default_workers
        from ..verify import verify_dataset

        report = verify_dataset(out, workers=default_workers(), progress=progress)
        if not report.ok:
            shown = "\n".join(f"  - {p}" for p in report.problems[:20])
            raise HubError(f"pulled {repo_id}@{info.sha[:12]} into {out}, but verify found "
                           f"{len(report.problems)} problem(s):\n{shown}")
        console.print(f"[green]verified[/] {out}: " + ", ".join(f"{v} {k}" for k, v in report.checked.items()),
                      highlight=False, soft_wrap=True)
    return out
