"""Errors of the Hub, and turning whatever huggingface_hub raised into one line a user can act on.

The one mapping for every Hub failure: `hub_read_error` for reading any repo (a dataset to load or translate, a
model or DKI artifact to fetch), `_translate` for the push/pull round trip (which also knows upload and quota
failures). Every error names the repo (and the file) and what to do; a token never appears in a message (`_redact`).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from huggingface_hub import get_token
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    OfflineModeIsEnabled,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

try:  # the HTTP library huggingface_hub uses (httpx2 in 2.x); only for telling network failures apart
    from huggingface_hub.utils import httpx as _http
except ImportError:  # pragma: no cover
    import httpx as _http  # type: ignore[no-redef]


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
    repo_type: str = "dataset"


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
    repo = f"{ctx.repo_type} repo {ctx.repo_id}"
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
                f"(413{server}). "
                + ("Rebuild with smaller shards (synfashion build --shard-size ...) or free storage / upgrade the "
                   "quota" if ctx.repo_type == "dataset" else "Free storage or upgrade the quota")
                + f", then push again. {resume}"
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
            + (("Rebuild with smaller shards (synfashion build --shard-size ...) or free storage. "
                if ctx.repo_type == "dataset" else "Free storage or upgrade the quota. ") if quota else "")
            + resume
        )
    else:
        err = HubError(f"{ctx.kind} of {repo} failed {where}: {type(exc).__name__}: {exc}")
    return type(err)(_redact(str(err), ctx.token))


def hub_read_error(exc: BaseException, *, typed: str, repo_id: str, repo_type: str, revision: str | None = None,
                   what: str = "") -> str | None:
    """One line for a failure while reading a Hub repo (a dataset to load, a model or DKI artifact to fetch), or
    None when `exc` is not a Hub/network failure (the caller re-raises it). `typed`: what the user wrote."""
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    endpoint = constants.ENDPOINT
    of = f" {what} of" if what else ""
    kind = f"{repo_type} repo"
    if isinstance(exc, RevisionNotFoundError):
        return f"{typed}: {kind} {repo_id} has no revision {revision!r}"
    if isinstance(exc, GatedRepoError):
        return f"{typed}: {kind} {repo_id} is gated; accept its terms on {endpoint} and log in (hf auth login)"
    if isinstance(exc, RepositoryNotFoundError):
        return (f"{typed}: not a local path, and no {kind} {repo_id} on {endpoint} (or it is private and the token, "
                "HF_TOKEN or `hf auth login`, cannot read it)")
    if isinstance(exc, EntryNotFoundError):
        return f"{typed}: a file of the{of} {kind} {repo_id} is missing on {endpoint}"
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)) or (
            constants.HF_HUB_OFFLINE and isinstance(exc, (OSError, ValueError))):
        return (f"{typed}: not a local path, and the{of} {kind} {repo_id} is not in the local Hugging Face cache "
                f"while offline mode is on (HF_HUB_OFFLINE=1); download it once with network access (hf download "
                f"{repo_id}{' --repo-type ' + repo_type if repo_type != 'model' else ''}), or pass a local path")
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else "?"
        return f"{typed}: {endpoint} answered {status} while reading the{of} {kind} {repo_id}"
    if isinstance(exc, (_http.TransportError, ConnectionError, TimeoutError)) or isinstance(exc, OSError):
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        return (f"{typed}: cannot reach {endpoint} to read the{of} {kind} {repo_id} ({first}); check the network, "
                "or pass a local path (HF_HUB_OFFLINE=1 reads only the local cache)")
    return None


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
