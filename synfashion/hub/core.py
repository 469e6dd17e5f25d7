"""Publish a built dataset folder on the Hugging Face Hub, and bring a pushed one back.

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
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import json
import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi, get_token, hf_hub_url
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils.sha import git_hash
from rich.console import Console

from . import __version__

try:  # the HTTP library huggingface_hub uses (httpx2 in 2.x); only for telling network failures apart
    from huggingface_hub.utils import httpx as _http
except ImportError:  # pragma: no cover
    import httpx as _http  # type: ignore[no-redef]

REPO_TYPE = "dataset"
LICENSE_IDS = ("cc-by-nc-nd-4.0",)  # SynFashion's license, as the card's `license:` spells it
MANAGED_PREFIXES = ("data/", "webdataset/")  # remote files here that a new build lacks are stale, and deleted
PUBLISHED = ("README.md", "manifest.json", *MANAGED_PREFIXES)  # what a push sends (stats/ sheets stay local)
IGNORED = ("*/.*", "*.tmp-*")  # hidden files and atomic-write temps inside the published folders
MAX_FILES_PER_COMMIT = 20_000  # the Hub caps a commit at 25k LFS files

PUBLIC_WARNING = """\
WARNING: this makes {repo} PUBLIC. The card's license is {license}.
SynFashion is licensed CC BY-NC-ND 4.0 (Attribution, NonCommercial, NoDerivatives):
- NoDerivatives: you may share the images unchanged, with attribution, but you may NOT distribute modified
  material. A translated (rendered-to-real) variant, a re-cropped or re-encoded copy, or any image generated
  from a SynFashion render is modified material: do not publish it without the rights holders' permission.
- NonCommercial: no commercial use, including training models for commercial products.
A verbatim repackaging (this build keeps every image's original bytes) is redistribution, not a derivative."""


# ----------------------------------------------------------------------------------------------------- errors
class HubError(RuntimeError):
    """A Hub operation failed; the message names the repo (and file) and what to do about it."""


class HubConnectionError(HubError):
    """The Hub could not be reached (network, proxy, HF_ENDPOINT, offline mode)."""


class HubAuthError(HubError):
    """No token, a refused token (401), or a token without the needed rights (403)."""


class HubNotFoundError(HubError):
    """The repo, revision or file does not exist (or is private and the token cannot see it)."""


class HubRepoTypeError(HubError):
    """The repo id is taken by a repo of another type (model, space)."""


class HubQuotaError(HubError):
    """A file or the repo is over a size limit or the storage quota (413)."""


class LicenseGuardError(HubError):
    """A public push that was not explicitly allowed, or a card without a license."""


@dataclass
class _Context:
    """What an error message needs to say where things went wrong (never the token itself)."""

    kind: str  # "push" or "pull"
    repo_id: str
    revision: str
    endpoint: str
    token_source: str | None
    token: str | None
    action: str = "talking to the Hub"
    oid_paths: dict[str, str] = field(default_factory=dict)  # sha256 -> path in repo, to name a failing blob


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        yield e
        e = e.__cause__ or e.__context__


def _failed_file(chain: list[BaseException], ctx: _Context) -> str | None:
    for e in chain:
        m = re.search(r"Error while uploading '([^']+)'", str(e))
        if m:
            return m.group(1)
        if isinstance(e, HfHubHTTPError) and e.response is not None:
            url = str(e.response.request.url)
            for oid in re.findall(r"[0-9a-f]{64}", url):
                if oid in ctx.oid_paths:
                    return ctx.oid_paths[oid]
            m = re.search(r"/resolve/[^/]+/([^?]+)", url)
            if m:
                return m.group(1)
    for oid in re.findall(r"OID ([0-9a-f]{64})", str(chain[0])):
        if oid in ctx.oid_paths:
            return ctx.oid_paths[oid]
    return None


def _action_from_url(url: str, ctx: _Context) -> str:
    if "/commit/" in url:
        return f"creating the commit on {ctx.revision}"
    if "/preupload/" in url or "/info/lfs/" in url or "/_lfs/" in url:
        return "uploading files"
    if "/repos/create" in url:
        return "creating the repo"
    return ctx.action


def _translate(exc: BaseException, ctx: _Context) -> HubError:
    """Turn whatever huggingface_hub raised into a HubError a user can act on."""
    chain = list(_chain(exc))
    repo = f"dataset repo {ctx.repo_id}"
    file = _failed_file(chain, ctx)
    http = next((e for e in chain if isinstance(e, HfHubHTTPError) and e.response is not None), None)
    action = _action_from_url(str(http.response.request.url), ctx) if http is not None else ctx.action
    if file:
        where = f"while uploading {file}" if ctx.kind == "push" else f"while fetching {file}"
    else:
        where = f"while {action}"
    if ctx.kind == "push":
        resume = ("Nothing was committed; run the same push again: files that already reached the Hub are not sent "
                  "again.")
    else:
        resume = "Run the same pull again: files already downloaded are kept."
    who = f"the token from {ctx.token_source}" if ctx.token_source else "an anonymous request (no token)"

    if http is not None:
        status = http.response.status_code
        server = (getattr(http, "server_message", None) or http.response.reason_phrase or "").strip()
        server = f": {server}" if server else ""
        if isinstance(http, RevisionNotFoundError):
            err: HubError = HubNotFoundError(f"revision {ctx.revision!r} of {repo} does not exist on {ctx.endpoint}.")
        elif isinstance(http, EntryNotFoundError):
            err = HubNotFoundError(f"{file or 'a file'} is missing from {repo}@{ctx.revision} on {ctx.endpoint}.")
        elif isinstance(http, RepositoryNotFoundError):
            err = HubNotFoundError(
                f"{repo} was not found on {ctx.endpoint} ({status}), or it is private and {who} cannot read it. "
                "Check the repo id (namespace/name) and use a token of an account that can access it."
            )
        elif status == 401:
            err = HubAuthError(
                f"{ctx.endpoint} refused {who} (401 Unauthorized{server}) {where} for {repo}: the token is invalid, "
                f"expired or revoked. Create a token with write access at {ctx.endpoint}/settings/tokens and pass "
                "it with HF_TOKEN or `hf auth login`."
            )
        elif status == 403:
            err = HubAuthError(
                f"{who} may not do this on {repo} (403 Forbidden{server}) {where}. Use a token with write access "
                f"to the namespace {ctx.repo_id.split('/')[0]!r}, or push to a namespace you own."
            )
        elif status == 413:
            err = HubQuotaError(
                f"{ctx.endpoint} rejected {file or 'the request'} for {repo} as too large or over the storage quota "
                f"(413{server}). Rebuild with smaller shards (synfashion build --shard-size ...) or free storage / "
                f"upgrade the quota, then push again. {resume}"
            )
        elif status == 412:
            err = HubError(
                f"{repo}@{ctx.revision} changed while pushing (someone else committed; 412{server}). "
                "Nothing was committed; run the push again to compute the change against the new head."
            )
        elif status == 409:
            err = HubError(f"conflict on {repo} {where} (409{server}).")
        elif status == 429:
            err = HubError(f"rate limited by {ctx.endpoint} {where} for {repo} (429{server}). Wait, then run "
                           f"again. {resume}")
        elif status >= 500:
            err = HubError(f"{ctx.endpoint} failed {where} for {repo} ({status}{server}). {resume}")
        else:
            err = HubError(f"{ctx.endpoint} answered {status}{server} {where} for {repo}.")
    elif any(isinstance(e, OfflineModeIsEnabled) for e in chain):
        err = HubConnectionError(
            f"offline mode is on (HF_HUB_OFFLINE), so {repo} on {ctx.endpoint} cannot be reached: unset "
            "HF_HUB_OFFLINE to push or pull."
        )
    elif any(isinstance(e, (_http.TransportError, ConnectionError, TimeoutError)) for e in chain):
        net = next(e for e in chain if isinstance(e, (_http.TransportError, ConnectionError, TimeoutError)))
        err = HubConnectionError(
            f"the connection to the Hub at {ctx.endpoint} failed {where} for {repo} ({type(net).__name__}: {net}). "
            f"Check the network, any proxy, and HF_ENDPOINT. {resume}"
        )
    elif "LFS batch API returned errors" in str(chain[0]):  # the Hub refused some objects before any upload
        refused = re.findall(r"OID ([0-9a-f]{64}): `([^\n]*)", str(chain[0]))
        listed = [f"{ctx.oid_paths.get(oid, oid[:12])} ({message.rstrip('`')})" for oid, message in refused]
        more = f"; and {len(listed) - 3} more" if len(listed) > 3 else ""
        quota = re.search(r"413|too large|exceed|limit|quota", str(chain[0]), re.I)
        err = (HubQuotaError if quota else HubError)(
            f"{ctx.endpoint} refused to store {len(listed)} file(s) for {repo}: {'; '.join(listed[:3])}{more}. "
            + ("Rebuild with smaller shards (synfashion build --shard-size ...) or free storage. " if quota else "")
            + resume
        )
    else:
        err = HubError(f"{ctx.kind} of {repo} failed {where}: {type(exc).__name__}: {exc}")
    return type(err)(_redact(str(err), ctx.token))


def _redact(text: str, token: str | None) -> str:
    for secret in {token, os.environ.get("HF_TOKEN"), os.environ.get("HUGGING_FACE_HUB_TOKEN")}:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


@contextlib.contextmanager
def _hub_errors(ctx: _Context) -> Iterator[None]:
    try:
        yield
    except HubError:
        raise
    except Exception as e:
        raise _translate(e, ctx) from None  # the original chain may carry request details; the message has it all


def _token_source(token: str | None) -> str | None:
    """Where the token will come from, in words (never its value)."""
    if token:
        return "--token"
    if os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN"):
        return "HF_TOKEN"
    if get_token():
        return "the saved login (hf auth login)"
    return None


@contextlib.contextmanager
def _progress_bars(enabled: bool) -> Iterator[None]:
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if enabled or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(2**20), b""):
            h.update(chunk)
    return h.hexdigest()


def _scan_folder(folder: Path) -> tuple[dict[str, _LocalFile], dict]:
    """Every file to publish (path in repo -> local file), checked against the build's manifest.

    Only the card, the manifest and the shards under data/ and webdataset/ are published (PUBLISHED).
    """
    if not folder.is_dir():
        raise HubError(f"{folder} is not a folder: pass the output folder of `synfashion build`")
    if (folder / ".synfashion-build").exists():
        raise HubError(f"{folder} holds an unfinished build (.synfashion-build/ is there): run the build again first")
    for name in ("README.md", "manifest.json"):
        if not (folder / name).is_file():
            raise HubError(f"{folder / name} is missing: {folder} is not a finished build (run synfashion build)")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise HubError(f"{folder / 'manifest.json'} is not valid JSON ({e})") from None
    files: dict[str, _LocalFile] = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if (p.is_file() and any(rel == x or (x.endswith("/") and rel.startswith(x)) for x in PUBLISHED)
                and not any(fnmatch.fnmatch(rel, pat) for pat in IGNORED)):
            files[rel] = _LocalFile(p, p.stat().st_size, _sha256(p))
    if len(files) > MAX_FILES_PER_COMMIT:
        raise HubError(f"{folder} holds {len(files)} files, more than one Hub commit takes ({MAX_FILES_PER_COMMIT}): "
                       "rebuild with larger shards (--shard-size)")
    for shard in manifest.get("shards", []):
        local = files.get(shard["path"])
        if local is None:
            raise HubError(f"{folder / shard['path']} is listed in manifest.json but missing: run synfashion verify")
        if local.size != shard["num_bytes"] or local.sha256 != shard["sha256"]:
            raise HubError(f"{folder / shard['path']} differs from manifest.json (size or sha256): the build was "
                           "modified or is corrupt; run synfashion verify, then rebuild")
    return files, manifest


def card_license(folder: str | Path) -> str | None:
    """The `license:` of the folder's dataset card (README.md YAML), or None."""
    from huggingface_hub import DatasetCard

    card = Path(folder) / "README.md"
    if not card.is_file():
        return None
    try:
        return DatasetCard(card.read_text(encoding="utf-8")).data.to_dict().get("license") or None
    except ValueError as e:  # malformed YAML header
        raise HubError(f"{card}: the YAML header cannot be read ({e}); rebuild the card") from None


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
    console = console or Console(stderr=True)
    folder = Path(folder)
    if repo_id.count("/") != 1 or not all(repo_id.split("/")):
        raise HubError(f"repo id {repo_id!r} must be namespace/name, e.g. your-user/synfashion")
    license_id = card_license(folder) if (folder / "README.md").is_file() else None
    files, manifest = _scan_folder(folder)
    if license_id is None:
        raise LicenseGuardError(f"{folder / 'README.md'} has no `license:` in its YAML header: a SynFashion card must "
                                f"carry its license ({LICENSE_IDS[0]}); rebuild the card")
    if not private and not allow_public:
        raise LicenseGuardError(
            f"refusing to make {repo_id} public without an explicit flag: SynFashion is CC BY-NC-ND 4.0 "
            "(no derivatives, non-commercial). Pass --public (allow_public=True) once you have read the license."
        )
    source = _token_source(token)
    if source is None:
        raise HubAuthError(f"no Hugging Face token for pushing to {repo_id}: set HF_TOKEN, run `hf auth login`, "
                           "or pass --token")
    if not private:
        console.print(PUBLIC_WARNING.format(repo=repo_id, license=license_id), style="yellow", markup=False,
                      highlight=False, soft_wrap=True)

    rev = revision or "main"
    if re.fullmatch(r"[0-9a-f]{40}", rev) or rev.startswith("refs/"):
        raise HubError(f"--revision {rev!r}: a push commits to a branch; give a branch name (created if missing)")
    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("push", repo_id, rev, api.endpoint, source, token,
                   oid_paths={f.sha256: p for p, f in files.items()})
    with _hub_errors(ctx), _progress_bars(progress):
        ctx.action = "reading the repo"
        created, info = False, None
        with contextlib.suppress(RepositoryNotFoundError):
            info = api.dataset_info(repo_id)
        if info is None:
            ctx.action = "creating the repo"
            created = _create_repo(api, repo_id, private=private, ctx=ctx)
            info = api.dataset_info(repo_id)
            visibility = "private" if private else "public"
            console.print(f"created {visibility} dataset repo {repo_id}", highlight=False, soft_wrap=True)
        elif info.private is False and not allow_public:
            raise LicenseGuardError(
                f"dataset repo {repo_id} already exists and is PUBLIC: pushing SynFashion data there publishes it "
                "(CC BY-NC-ND 4.0). Make the repo private on the Hub, or pass --public after reading the license."
            )
        if rev != "main":
            ctx.action = f"creating branch {rev}"
            branches = {b.name for b in api.list_repo_refs(repo_id, repo_type=REPO_TYPE).branches}
            if rev not in branches:
                api.create_branch(repo_id, branch=rev, repo_type=REPO_TYPE)
                console.print(f"created branch {rev} of {repo_id} from main", highlight=False, soft_wrap=True)

        ctx.action = f"listing {rev}"
        head = api.dataset_info(repo_id, revision=rev).sha
        remote = {
            f.path: f for f in api.list_repo_tree(repo_id, repo_type=REPO_TYPE, revision=head, recursive=True)
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
            op.upload_info.sha256 = bytes.fromhex(local.sha256)  # hashed once, while checking the manifest
            ops.append(op)
        deleted = sorted(p for p in remote if p.startswith(MANAGED_PREFIXES) and p not in files)
        ops += [CommitOperationDelete(path_in_repo=p) for p in deleted]
        upload_bytes = sum(files[p].size for p in added + replaced)
        console.print(
            f"{repo_id}@{rev}: {len(added)} new, {len(replaced)} changed ({_human(upload_bytes)}), "
            f"{len(deleted)} stale to delete, {len(unchanged)} unchanged",
            highlight=False, soft_wrap=True,
        )

        commit_url = None
        if ops:
            shards = [s for s in manifest.get("shards", []) if s["path"] in files]
            message = commit_message or (
                f"Upload {manifest.get('source', {}).get('name') or folder.name}: {len(shards)} shards "
                f"(synfashion {manifest.get('builder_version', __version__)})"
            )
            description = commit_description or (
                f"{len(added)} added, {len(replaced)} replaced, {len(deleted)} stale files removed, "
                f"{len(unchanged)} unchanged. Pushed with synfashion {__version__}."
            )
            ctx.action = f"uploading and committing to {rev}"
            info_commit = api.create_commit(
                repo_id, ops, commit_message=message, commit_description=description, repo_type=REPO_TYPE,
                revision=rev, parent_commit=head, num_threads=num_threads,
            )
            head, commit_url = info_commit.oid, info_commit.commit_url
        made_public = False
        if not private and info.private:
            ctx.action = "making the repo public"
            api.update_repo_settings(repo_id, repo_type=REPO_TYPE, private=False)
            made_public = True
    if commit_url:
        console.print(f"[green]pushed[/] {repo_id}@{rev} commit {head[:12]}: {commit_url}", highlight=False,
                      soft_wrap=True)
    else:
        console.print(f"[green]up to date[/] {repo_id}@{rev} is already this build (commit {head[:12]})",
                      highlight=False, soft_wrap=True)
    if made_public:
        console.print(f"{repo_id} is now public", style="yellow", highlight=False, soft_wrap=True)
    return PushResult(
        repo_id=repo_id, revision=rev, commit_oid=head, commit_url=commit_url,
        private=bool(info.private) and not made_public, created=created, added=tuple(added),
        replaced=tuple(replaced), deleted=tuple(deleted), unchanged=tuple(unchanged), upload_bytes=upload_bytes,
    )


def _create_repo(api: HfApi, repo_id: str, *, private: bool, ctx: _Context) -> bool:
    """Create the dataset repo; a 409 means the id is taken (by a dataset created meanwhile, or another type)."""
    try:
        api.create_repo(repo_id, repo_type=REPO_TYPE, private=private, exist_ok=False)
        return True
    except HfHubHTTPError as e:
        if e.response is None or e.response.status_code != 409:
            raise
    if api.repo_exists(repo_id, repo_type=REPO_TYPE):
        return False  # created by someone else in the meantime: fine
    taken_by = next((t for t in ("model", "space") if api.repo_exists(repo_id, repo_type=t)), None)
    if taken_by is not None:
        raise HubRepoTypeError(
            f"{repo_id} already exists on {ctx.endpoint} as a {taken_by} repo, not a dataset: choose another name "
            f"for the dataset (e.g. {repo_id}-dataset)"
        )
    raise HubRepoTypeError(f"{ctx.endpoint} refused to create dataset repo {repo_id} (409 Conflict): the id is taken")


# ----------------------------------------------------------------------------------------------------- pull
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
        from .parallel import default_workers
        from .verify import verify_dataset

        report = verify_dataset(out, workers=default_workers(), progress=progress)
        if not report.ok:
            shown = "\n".join(f"  - {p}" for p in report.problems[:20])
            raise HubError(f"pulled {repo_id}@{info.sha[:12]} into {out}, but verify found "
                           f"{len(report.problems)} problem(s):\n{shown}")
        console.print(f"[green]verified[/] {out}: " + ", ".join(f"{v} {k}" for k, v in report.checked.items()),
                      highlight=False, soft_wrap=True)
    return out


# ----------------------------------------------------------------------------------------------------- streaming
def webdataset_urls(
    repo_id: str,
    split: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> list[str]:
    """URLs of the WebDataset tar shards of `split` in a pushed repo, pinned to the revision's commit.

    For `webdataset.WebDataset(urls)`. A public repo gives plain resolve URLs (webdataset fetches them with curl).
    A private repo gives `pipe:` commands in which the shell hands `$HF_TOKEN` (or the saved login file) to curl on
    stdin, so the token appears neither in the URLs nor in any process's arguments; the reading process needs
    HF_TOKEN set or a saved login.
    """
    from huggingface_hub import constants

    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("pull", repo_id, revision or "main", api.endpoint, _token_source(token), token)
    with _hub_errors(ctx):
        info = api.dataset_info(repo_id, revision=revision)
    prefix = f"webdataset/{split}/"
    files = sorted(s.rfilename for s in info.siblings or [] if s.rfilename.startswith(prefix)
                   and s.rfilename.endswith(".tar"))
    if not files:
        raise HubNotFoundError(f"{repo_id}@{info.sha[:12]} has no WebDataset shards under {prefix}")
    urls = [hf_hub_url(repo_id, f, repo_type=REPO_TYPE, revision=info.sha, endpoint=api.endpoint) for f in files]
    if not info.private:
        return urls
    token_file = shlex.quote(constants.HF_TOKEN_PATH)
    header = f"printf 'Authorization: Bearer %s\\n' \"${{HF_TOKEN:-$(cat {token_file} 2>/dev/null)}}\""
    return [f"pipe:{header} | curl -s -f -L -H @- {shlex.quote(u)}" for u in urls]


__all__ = [
    "HubAuthError", "HubConnectionError", "HubError", "HubNotFoundError", "HubQuotaError", "HubRepoTypeError",
    "LicenseGuardError", "PUBLIC_WARNING", "PushResult", "card_license", "pull_dataset", "push_dataset",
    "webdataset_urls",
]
