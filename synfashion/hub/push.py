"""Publish a built dataset folder (and, through `push_files`, any vetted set of files) on the Hugging Face Hub.

`push_dataset` uploads any built folder (card, manifest, Parquet and WebDataset shards) as **one commit**:
`HfApi.create_commit` first pre-uploads every new blob (LFS or Xet storage is content-addressed, so a blob that
reached the Hub in an interrupted run is not sent again), then the server creates the commit atomically. Stale
shards (remote files under data/ or webdataset/ that the new build no longer has) are deleted in that same commit,
and the commit names the head it was computed against, so the revision never shows a half-updated dataset.
(We deliberately do not call `upload_folder`: with hf_xet installed, huggingface_hub 2.x splits large folders
into several commits.)

License guardrail: SynFashion is CC BY-NC-ND 4.0. Pushes are private by default; a public push (or a push into
an existing public repo) needs `allow_public=True` (`--public`) and prints a plain warning about NoDerivatives.
The card must carry a `license:`.

Tokens come from the argument, `HF_TOKEN` or the huggingface_hub login; this module never prints, logs or writes
one, and scrubs it from error messages. Errors are `HubError` subclasses that name the repo, the file and a fix.
Production pushes go through whatever transfer the installed client uses (Xet when hf_xet is installed); the
test suite runs the classic LFS path against `synfashion.testing.hub_server` with HF_HUB_DISABLE_XET=1.

`push_files` is that commit machinery for any repo type: `push_dataset` gives it a verified build, `r2r push-model`
(r2r/dki/publish.py) the recorded outputs of a DKI training run, each with its own `LicenseGuard` wording.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi
from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash
from rich.console import Console

from .. import __version__
from ..fs.filehash import file_sha256
from ..manifest import Manifest, ManifestError
from .errors import (
    HubAuthError, HubError, HubRepoTypeError, LicenseGuardError, _Context, _hub_errors, _progress_bars, _token_source,
)
from .refs import HUB_ID

REPO_TYPE = "dataset"
LICENSE_IDS = ("cc-by-nc-nd-4.0",)  # SynFashion's license, as the card's `license:` spells it
MANAGED_PREFIXES = ("data/", "webdataset/")  # remote files here that a new build lacks are stale, and deleted
MAX_FILES_PER_COMMIT = 20_000  # the Hub caps a commit at 25k LFS files

PUBLIC_WARNING = """\
WARNING: this makes {repo} PUBLIC. The card's license is {license}.
SynFashion is licensed CC BY-NC-ND 4.0 (Attribution, NonCommercial, NoDerivatives):
- NoDerivatives: you may share the images unchanged, with attribution, but you may NOT distribute modified
  material. A translated (rendered-to-real) variant, a re-cropped or re-encoded copy, or any image generated
  from a SynFashion render is modified material: do not publish it without the rights holders' permission.
- NonCommercial: no commercial use, including training models for commercial products.
A verbatim repackaging (this build keeps every image's original bytes) is redistribution, not a derivative."""


# ----------------------------------------------------------------------------------------------------- the folder
@dataclass(frozen=True)
class _LocalFile:
    path: Path
    size: int
    sha256: str

    def same_as(self, remote: RepoFile) -> bool:
        if remote.lfs is not None:
            return remote.lfs.sha256 == self.sha256 and remote.size == self.size
        return remote.size == self.size and remote.blob_id == git_hash(self.path.read_bytes())


def _scan_folder(folder: Path, *, workers: int | None = None, progress: bool = False) -> tuple[dict[str, _LocalFile], Manifest]:
    """Every file to publish (path in repo -> local file): exactly the files `verify` vouched for.

    The whole folder is verified first (every shard and sample re-hashed, every row read, every file accounted
    for); a push of a folder with any problem is refused, so a stray shard, a tar member named `../x` or a card
    with another licence never reaches the Hub. Only the card, the manifest and the shards are published.
    """
    from ..parallel import default_workers
    from ..verify import verify_dataset

    if not folder.is_dir():
        raise HubError(f"{folder} is not a folder: pass the output folder of `synfashion build`")
    if (folder / ".synfashion-build").exists():
        raise HubError(f"{folder} holds an unfinished build (.synfashion-build/ is there): run the build again first")
    for name in ("README.md", "manifest.json"):
        if not (folder / name).is_file():
            raise HubError(f"{folder / name} is missing: {folder} is not a finished build (run synfashion build)")
    try:
        manifest = Manifest.read(folder)
    except ManifestError as e:
        raise HubError(str(e)) from None
    report = verify_dataset(folder, workers=workers or default_workers(), progress=progress)
    if not report.ok:
        shown = "\n".join(f"  - {p}" for p in report.problems[:20])
        more = f"\n  ... and {len(report.problems) - 20} more" if len(report.problems) > 20 else ""
        raise HubError(f"{folder} does not pass synfashion verify ({len(report.problems)} problem(s)); nothing was "
                       f"pushed:\n{shown}{more}")
    by_path = {s.path: s for s in manifest.shards}
    files: dict[str, _LocalFile] = {}
    for rel in sorted(report.vouched):
        path = folder / rel
        shard = by_path.get(rel)  # verify re-hashed it against these figures
        files[rel] = (_LocalFile(path, shard.num_bytes, shard.sha256) if shard is not None
                      else _LocalFile(path, path.stat().st_size, file_sha256(path)))
    if len(files) > MAX_FILES_PER_COMMIT:
        raise HubError(f"{folder} holds {len(files)} files, more than one Hub commit takes ({MAX_FILES_PER_COMMIT}): "
                       "rebuild with larger shards (--shard-size)")
    return files, manifest


def card_license(folder: str | Path) -> str | None:
    """The `license:` of the folder's dataset card (README.md YAML), or None."""
    from cards.common import CardError, parse_card

    card = Path(folder) / "README.md"
    if not card.is_file():
        return None
    try:
        return parse_card(card.read_text(encoding="utf-8")).data.to_dict().get("license") or None
    except CardError as e:  # malformed YAML header
        raise HubError(f"{card}: {e}; rebuild the card") from None


# ----------------------------------------------------------------------------------------------------- push
@dataclass(frozen=True)
class PushResult:
    """What a push did. `commit_url` is None when the revision already held exactly this build."""

    repo_id: str
    revision: str
    commit_oid: str  # head of `revision` after the push
    commit_url: str | None
    private: bool
    created: bool
    added: tuple[str, ...]
    replaced: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: tuple[str, ...]
    upload_bytes: int  # size of added + replaced files (blobs already on the Hub are not sent again)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.deleted)


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


@dataclass(frozen=True)
class LicenseGuard:
    """What a push says and refuses about publishing, for one kind of content (a dataset build, DKI weights).

    refuse_public: the error for `private=False` without `allow_public` ("{repo}" is filled in).
    existing_public: the error for a push into an existing public repo without `allow_public`.
    warning: printed before a public push ("{repo}" and "{license}" are filled in).
    """

    refuse_public: str
    existing_public: str
    warning: str


DATASET_GUARD = LicenseGuard(
    refuse_public=("refusing to make {repo} public without an explicit flag: SynFashion is CC BY-NC-ND 4.0 "
                   "(no derivatives, non-commercial). Pass --public (allow_public=True) once you have read the "
                   "license."),
    existing_public=("dataset repo {repo} already exists and is PUBLIC: pushing SynFashion data there publishes it "
                     "(CC BY-NC-ND 4.0). Make the repo private on the Hub, or pass --public after reading the "
                     "license."),
    warning=PUBLIC_WARNING,
)


def check_repo_id(repo_id: str) -> None:
    """A repo to write: `namespace/name` by the project's one rule (`refs.HUB_ID`), without a revision."""
    m = HUB_ID.fullmatch(repo_id)
    if m is None or m.group("revision") is not None or "/" not in m.group("repo"):
        raise HubError(f"repo id {repo_id!r} must be namespace/name, e.g. your-user/synfashion")


def push_dataset(
    folder: str | Path,
    repo_id: str,
    *,
    private: bool = True,
    allow_public: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str | None = None,
    commit_description: str | None = None,
    endpoint: str | None = None,
    console: Console | None = None,
    progress: bool = True,
    num_threads: int = 5,
) -> PushResult:
    """Push a built folder to the dataset repo `repo_id` (created if needed) as one commit on `revision`.

    Private by default. `private=False` also needs `allow_public=True` (the CLI's `--public` sets both), and so
    does pushing into a repo that is already public. A private repo pushed with `--public` is made public after
    the commit. Re-pushing only sends what changed and deletes stale shards in the same commit; an interrupted
    push, run again, does not re-send blobs that already reached the Hub. `endpoint` defaults to HF_ENDPOINT.
    """
    folder = Path(folder)
    check_repo_id(repo_id)
    license_id = card_license(folder) if (folder / "README.md").is_file() else None
    if license_id is None and folder.is_dir() and (folder / "manifest.json").is_file():
        raise LicenseGuardError(f"{folder / 'README.md'} has no `license:` in its YAML header: a SynFashion card must "
                                f"carry its license ({LICENSE_IDS[0]}); rebuild the card")
    if not private and not allow_public:
        raise LicenseGuardError(DATASET_GUARD.refuse_public.format(repo=repo_id))
    files, manifest = _scan_folder(folder, progress=progress)
    shards = [s for s in manifest.shards if s.path in files]
    message = commit_message or (
        f"Upload {manifest.source.get('name') or folder.name}: {len(shards)} shards "
        f"(synfashion {manifest.builder_version or __version__})"
    )
    return push_files(
        files, repo_id, repo_type=REPO_TYPE, guard=DATASET_GUARD, license_id=license_id,
        managed_prefixes=MANAGED_PREFIXES, private=private, allow_public=allow_public, revision=revision,
        token=token, commit_message=message, commit_description=commit_description, endpoint=endpoint,
        console=console, progress=progress, num_threads=num_threads,
    )


def local_file(path: Path, sha256: str | None = None) -> _LocalFile:
    """A file to publish; `sha256` when it was already hashed (and checked) by the caller."""
    return _LocalFile(path, path.stat().st_size, sha256 or file_sha256(path))


def push_files(
    files: dict[str, _LocalFile],
    repo_id: str,
    *,
    repo_type: str,
    guard: LicenseGuard,
    license_id: str | None,
    managed_prefixes: tuple[str, ...] = (),
    private: bool = True,
    allow_public: bool = False,
    revision: str | None = None,
    token: str | None = None,
    commit_message: str,
    commit_description: str | None = None,
    endpoint: str | None = None,
    console: Console | None = None,
    progress: bool = True,
    num_threads: int = 5,
) -> PushResult:
    """Commit `files` (path in repo -> checked local file) to the `repo_type` repo `repo_id` as one commit.

    The machinery every push shares: token check (never printed), the licence guard, repo (and branch) creation,
    a diff against the branch head (unchanged files are not sent; remote files under `managed_prefixes` that
    `files` lacks are deleted in the same commit), one `create_commit` pinned to that head, and making the repo
    public last when asked. The caller has vetted the files (what they are, that they are intact).
    """
    console = console or Console(stderr=True)
    check_repo_id(repo_id)
    if not private and not allow_public:
        raise LicenseGuardError(guard.refuse_public.format(repo=repo_id))
    if len(files) > MAX_FILES_PER_COMMIT:
        raise HubError(f"{len(files)} files are more than one Hub commit takes ({MAX_FILES_PER_COMMIT})")
    source = _token_source(token)
    if source is None:
        raise HubAuthError(f"no Hugging Face token for pushing to {repo_id}: set HF_TOKEN, run `hf auth login`, "
                           "or pass --token")
    if not private:
        console.print(guard.warning.format(repo=repo_id, license=license_id), style="yellow", markup=False,
                      highlight=False, soft_wrap=True)

    rev = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", rev) or rev.startswith("refs/"):
        raise HubError(f"--revision {rev!r}: a push commits to a branch; give a branch name (created if missing)")
    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("push", repo_id, rev, api.endpoint, source, token,
                   oid_paths={f.sha256: p for p, f in files.items()}, repo_type=repo_type)
    with _hub_errors(ctx), _progress_bars(progress):
        ctx.action = "reading the repo"
        created, info = False, None
        with contextlib.suppress(RepositoryNotFoundError):
            info = api.repo_info(repo_id, repo_type=repo_type)
        if info is None:
            ctx.action = "creating the repo"
            created = _create_repo(api, repo_id, private=private, ctx=ctx)
            info = api.repo_info(repo_id, repo_type=repo_type)
            visibility = "private" if private else "public"
            console.print(f"created {visibility} {repo_type} repo {repo_id}", highlight=False, soft_wrap=True)
        elif info.private is False and not allow_public:
            raise LicenseGuardError(guard.existing_public.format(repo=repo_id))
        if rev != "main":
            ctx.action = f"creating branch {rev}"
            branches = {b.name for b in api.list_repo_refs(repo_id, repo_type=repo_type).branches}
            if rev not in branches:
                api.create_branch(repo_id, branch=rev, repo_type=repo_type)
                console.print(f"created branch {rev} of {repo_id} from main", highlight=False, soft_wrap=True)

        ctx.action = f"listing {rev}"
        head = api.repo_info(repo_id, repo_type=repo_type, revision=rev).sha
        remote = {
            f.path: f for f in api.list_repo_tree(repo_id, repo_type=repo_type, revision=head, recursive=True)
            if isinstance(f, RepoFile)
        }
        added, replaced, unchanged, ops = [], [], [], []
        for rel, local in files.items():
            r = remote.get(rel)
            if r is not None and local.same_as(r):
                unchanged.append(rel)
                continue
            (replaced if r is not None else added).append(rel)
            op = CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(local.path))
            op.upload_info.sha256 = bytes.fromhex(local.sha256)  # hashed once, while the caller checked the file
            ops.append(op)
        deleted = sorted(p for p in remote if p.startswith(managed_prefixes) and p not in files) \
            if managed_prefixes else []
        ops += [CommitOperationDelete(path_in_repo=p) for p in deleted]
        upload_bytes = sum(files[p].size for p in added + replaced)
        console.print(
            f"{repo_id}@{rev}: {len(added)} new, {len(replaced)} changed ({_human(upload_bytes)}), "
            f"{len(deleted)} stale to delete, {len(unchanged)} unchanged",
            highlight=False, soft_wrap=True,
        )

        commit_url = None
        if ops:
            description = commit_description or (
                f"{len(added)} added, {len(replaced)} replaced, {len(deleted)} stale files removed, "
                f"{len(unchanged)} unchanged. Pushed with synfashion {__version__}."
            )
            ctx.action = f"uploading and committing to {rev}"
            info_commit = api.create_commit(
                repo_id, ops, commit_message=commit_message, commit_description=description, repo_type=repo_type,
                revision=rev, parent_commit=head, num_threads=num_threads,
            )
            head, commit_url = info_commit.oid, info_commit.commit_url
        made_public = False
        if not private and info.private:
            ctx.action = "making the repo public"
            api.update_repo_settings(repo_id, repo_type=repo_type, private=False)
            made_public = True
    if commit_url:
        console.print(f"[green]pushed[/] {repo_id}@{rev} commit {head[:12]}: {commit_url}", highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"[green]up to date[/] {repo_id}@{rev} already holds exactly these files (commit {head[:12]})",
                      highlight=False, soft_wrap=True)
    if made_public:
        console.print(f"{repo_id} is now public", style="yellow", highlight=False, soft_wrap=True)
    return PushResult(
        repo_id=repo_id, revision=rev, commit_oid=head, commit_url=commit_url,
        private=bool(info.private) and not made_public, created=created, added=tuple(added),
        replaced=tuple(replaced), deleted=tuple(deleted), unchanged=tuple(unchanged), upload_bytes=upload_bytes,
    )


def _create_repo(api: HfApi, repo_id: str, *, private: bool, ctx: _Context) -> bool:
    """Create the repo; a 409 means the id is taken (by a repo of this type created meanwhile, or another type)."""
    kind = ctx.repo_type
    try:
        api.create_repo(repo_id, repo_type=kind, private=private, exist_ok=False)
        return True
    except HfHubHTTPError as e:
        if e.response is None or e.response.status_code != 409:
            raise
    if api.repo_exists(repo_id, repo_type=kind):
        return False  # created by someone else in the meantime: fine
    taken_by = next((t for t in ("model", "dataset", "space") if t != kind and api.repo_exists(repo_id, repo_type=t)),
                    None)
    if taken_by is not None:
        raise HubRepoTypeError(
            f"{repo_id} already exists on {ctx.endpoint} as a {taken_by} repo, not a {kind}: choose another name "
            f"for the {kind} (e.g. {repo_id}-{kind})"
        )
    raise HubRepoTypeError(f"{ctx.endpoint} refused to create {kind} repo {repo_id} (409 Conflict): the id is taken")
