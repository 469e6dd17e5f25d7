"""A small Hugging Face Hub-compatible HTTP server on 127.0.0.1, for tests and the demo. Not a product feature.

It implements the part of the Hub HTTP API that the real clients call for a dataset or model round trip (model
repos too: create, model_info, tree, commit, resolve at /<owner>/<name>/..., what `r2r push-model`, diffusers'
`load_textual_inversion` / `load_lora_weights` and `hf_hub_download` use):
huggingface_hub's create_repo, repo_info / dataset_info, list_repo_tree, get_paths_info, list_repo_refs,
list_repo_commits, create_branch, update_repo_settings, whoami, create_commit (preupload, LFS batch, basic
LFS upload and verify, NDJSON commit), hf_hub_download / snapshot_download / HfFileSystem (resolve with HTTP
Range), and what datasets' `load_dataset` (also `streaming=True`) and webdataset/curl hit on top of those.

What a client must know:
- Uploads go through the classic LFS path: run clients with `HF_HUB_DISABLE_XET=1` (Xet uploads need a CAS
  service this server does not have). Production pushes use whatever the installed client uses.
- huggingface_hub and datasets read `HF_ENDPOINT`, `HF_HUB_OFFLINE` and `HF_HUB_DISABLE_XET` when they are
  imported. Start the server, then run the client in a subprocess with `env=server.client_env(...)`, or set
  `os.environ` before the first import. This module imports only the standard library for that reason.
  In-process, `HfApi(endpoint=server.endpoint)` works once `huggingface_hub.constants.HF_HUB_OFFLINE` is off.

Fault injection (`fail`, `drop`, `hang`) makes chosen requests answer an HTTP error, lose their connection half
way through the request body, or stall until `release()`; `requests` and `uploads` record what the clients did.
`commit_files` puts files into a repo server-side, under any path (a stranger's repo with hostile names).

Deliberate simplifications: one namespace per repo id across repo types (so "exists with another type" can be
exercised), no git protocol, no pull requests, no Xet, no gated repos, state in memory and blobs in a folder.
Authorization headers are checked and never recorded.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hashlib
import json
import os
import re
import socket
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Literal
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

DEFAULT_TOKEN = "hf_synfashion_test_token"
DEFAULT_USER = "synfashion-tester"
LFS_THRESHOLD = 10 * 2**20  # like the Hub: larger files go to LFS whatever their type
DEFAULT_GITATTRIBUTES = "".join(
    f"{pattern} filter=lfs diff=lfs merge=lfs -text\n"
    for pattern in ("*.parquet", "*.arrow", "*.tar", "*.zip", "*.gz", "*.jpg", "*.jpeg", "*.png", "*.webp", "*.bin")
)
_PLURALS = {"models": "model", "datasets": "dataset", "spaces": "space"}
_URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _lfs_pointer(sha256: str, size: int) -> bytes:
    return f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()


# ----------------------------------------------------------------------------------------------------- the model
@dataclass(frozen=True)
class _File:
    size: int
    sha256: str  # of the content; the blob store key
    oid: str  # git oid: of the content (regular file) or of the LFS pointer
    lfs: bool

    def entry(self, path: str) -> dict:
        out: dict[str, Any] = {"type": "file", "oid": self.oid, "size": self.size, "path": path}
        if self.lfs:
            pointer = _lfs_pointer(self.sha256, self.size)
            out["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        return out


@dataclass(frozen=True)
class _Commit:
    oid: str
    parent: str | None
    title: str
    message: str
    date: str
    files: Mapping[str, _File]  # the whole tree: path -> file (commits are snapshots)


@dataclass
class _Repo:
    type: str
    id: str
    owner: str
    private: bool
    created: str
    commits: dict[str, _Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    @property
    def url_path(self) -> str:
        return f"{_URL_PREFIX[self.type]}{self.id}"


@dataclass
class Fault:
    """A rule: the next `times` requests matching `method` and the `path` regex (searched) get `kind` instead.

    kind "status" answers `status` with `message`; "drop" reads half of the request body and closes the
    connection without answering; "hang" stalls until `HubServer.release()` (or 120 s), then drops.
    `triggered` is set on the first hit, so a test can wait for it.
    """

    method: str
    path: str
    kind: Literal["status", "drop", "hang"]
    status: int = 500
    message: str = "injected failure"
    times: int = 1  # -1: every matching request
    hits: int = 0
    triggered: threading.Event = field(default_factory=threading.Event, repr=False)

    def take(self, method: str, path: str) -> bool:
        if self.times != -1 and self.hits >= self.times:
            return False
        if self.method not in ("*", method) or not re.search(self.path, path):
            return False
        self.hits += 1
        self.triggered.set()
        return True


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str  # without the query string
    status: int  # 0 when the connection was dropped without an answer
    user: str | None  # who the Authorization header authenticated (never the token)
    body_bytes: int


class _HTTPError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


class _Dropped(Exception):
    pass


# ----------------------------------------------------------------------------------------------------- the server
class HubServer:
    """The server and its state. Use `running_hub()` or `with HubServer() as hub:`; `hub.endpoint` is its URL.

    `tokens` maps bearer tokens to user names (each user owns the namespace of its name); `tree_page_size` is the
    tree listing page (small values make clients follow `Link` pagination); `max_file_size` makes the LFS batch
    refuse larger objects, like a Hub size limit. `root` keeps the blobs in a folder of your choice.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        *,
        tokens: Mapping[str, str] | None = None,
        tree_page_size: int = 1000,
        max_file_size: int | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ):
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="synfashion-hub-")
        self.root = Path(root if root is not None else self._tmp.name)
        self.blobs = self.root / "blobs"
        self.blobs.mkdir(parents=True, exist_ok=True)
        self.tokens: dict[str, str] = dict(tokens if tokens is not None else {DEFAULT_TOKEN: DEFAULT_USER})
        self.tree_page_size = tree_page_size
        self.max_file_size = max_file_size
        self.requests: list[RequestRecord] = []
        self.uploads: list[str] = []  # sha256 of every completed LFS upload, in order
        self._repos: dict[tuple[str, str], _Repo] = {}
        self._pending_lfs: set[str] = set()  # oids announced by an LFS batch, accepted by PUT /_lfs/<oid>
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._release = threading.Event()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self._httpd.hub = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- lifecycle
    @property
    def endpoint(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hub-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def client_env(self, *, token: str | None = None, home: str | Path | None = None,
                   base: Mapping[str, str] | None = None) -> dict[str, str]:
        """Environment for a client subprocess: this endpoint, LFS uploads, online, no progress bars.

        `home` isolates HF_HOME (cache and stored login); `token` becomes HF_TOKEN (otherwise none is inherited).
        """
        env = dict(os.environ if base is None else base)
        for k in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE",
                  "TRANSFORMERS_OFFLINE"):
            env.pop(k, None)
        env.update(
            HF_ENDPOINT=self.endpoint, HF_HUB_DISABLE_XET="1", HF_HUB_OFFLINE="0", HF_DATASETS_OFFLINE="0",
            HF_HUB_DISABLE_TELEMETRY="1", HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_UPDATE_CHECK="1",
        )
        if home is not None:
            env["HF_HOME"] = str(home)
        if token is not None:
            env["HF_TOKEN"] = token
        return env

    # -- faults
    def fail(self, method: str, path: str, status: int = 500, message: str = "injected failure", *,
             times: int = 1) -> Fault:
        return self._add_fault(Fault(method, path, "status", status, message, times))

    def drop(self, method: str, path: str, *, times: int = 1) -> Fault:
        return self._add_fault(Fault(method, path, "drop", times=times))

    def hang(self, method: str, path: str, *, times: int = 1) -> Fault:
        self._release.clear()
        return self._add_fault(Fault(method, path, "hang", times=times))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def release(self) -> None:
        """Let hung requests go (they are then dropped)."""
        self._release.set()

    def _add_fault(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            return next((f for f in self._faults if f.take(method, path)), None)

    # -- state, for tests
    def create_repo(self, repo_id: str, *, repo_type: str = "dataset", private: bool = True,
                    owner: str | None = None) -> None:
        with self._lock:
            self._new_repo(repo_type, repo_id, owner or repo_id.split("/")[0], private)

    def head(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> str | None:
        repo = self._repos.get((repo_type, repo_id))
        return repo.branches.get(revision) if repo else None

    def files(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> dict[str, str]:
        """path -> sha256 of the content, at `revision`."""
        commit = self._commit_at(self._repos[(repo_type, repo_id)], revision)
        return {p: f.sha256 for p, f in commit.files.items()}

    def read(self, repo_id: str, path: str, revision: str = "main", repo_type: str = "dataset") -> bytes:
        commit = self._commit_at(self._repos[(repo_type, repo_id)], revision)
        return self._blob_path(commit.files[path].sha256).read_bytes()

    def commits(self, repo_id: str, revision: str = "main", repo_type: str = "dataset") -> list[dict]:
        repo = self._repos[(repo_type, repo_id)]
        return [self._commit_json(repo, c) for c in self._history(repo, self._commit_at(repo, revision))]

    def is_private(self, repo_id: str, repo_type: str = "dataset") -> bool:
        return self._repos[(repo_type, repo_id)].private

    def commit_files(self, repo_id: str, files: Mapping[str, bytes], *, revision: str = "main",
                     title: str = "server-side commit", repo_type: str = "dataset") -> str:
        """Commit `files` (path -> content) on top of `revision` directly, without a client: how a test makes a repo
        hold what a well-behaved client refuses to upload (a path like `pipe:...` or `../x`), as a stranger's repo
        might. Returns the new commit's oid."""
        with self._lock:
            repo = self._repos[(repo_type, repo_id)]
            head = self._commit_at(repo, revision)
            tree = dict(head.files)
            for path, data in files.items():
                tree[path] = _File(len(data), self._put_blob(data), _git_blob_oid(data), lfs=False)
            return self._add_commit(repo, revision, head.oid, title, "", tree).oid

    # -- internals shared by handlers
    def _blob_path(self, sha256: str) -> Path:
        return self.blobs / sha256[:2] / sha256[2:]

    def _has_blob(self, sha256: str, size: int | None = None) -> bool:
        p = self._blob_path(sha256)
        return p.is_file() and (size is None or p.stat().st_size == size)

    def _put_blob(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        p = self._blob_path(sha)
        if not p.is_file():
            p.parent.mkdir(parents=True, exist_ok=True)
            tmp = p.with_name(p.name + f".tmp-{threading.get_ident()}")
            tmp.write_bytes(data)
            os.replace(tmp, p)
        return sha

    def _new_repo(self, repo_type: str, repo_id: str, owner: str, private: bool) -> _Repo:
        repo = _Repo(type=repo_type, id=repo_id, owner=owner, private=private, created=_now())
        attrs = DEFAULT_GITATTRIBUTES.encode()
        files = {".gitattributes": _File(len(attrs), self._put_blob(attrs), _git_blob_oid(attrs), lfs=False)}
        self._add_commit(repo, "main", None, "initial commit", "", files)
        self._repos[(repo_type, repo_id)] = repo
        return repo

    def _add_commit(self, repo: _Repo, branch: str, parent: str | None, title: str, message: str,
                    files: Mapping[str, _File]) -> _Commit:
        tree = sorted((p, f.oid) for p, f in files.items())
        seed = json.dumps([parent, title, tree, time.time_ns(), len(repo.commits)])
        commit = _Commit(hashlib.sha1(seed.encode()).hexdigest(), parent, title, message, _now(), dict(files))
        repo.commits[commit.oid] = commit
        repo.branches[branch] = commit.oid
        return commit

    def _commit_at(self, repo: _Repo, revision: str) -> _Commit:
        if revision in repo.branches:
            return repo.commits[repo.branches[revision]]
        if re.fullmatch(r"[0-9a-f]{7,40}", revision):
            found = [c for oid, c in repo.commits.items() if oid.startswith(revision)]
            if len(found) == 1:
                return found[0]
        raise _HTTPError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def _history(self, repo: _Repo, commit: _Commit) -> Iterator[_Commit]:
        c: _Commit | None = commit
        while c is not None:
            yield c
            c = repo.commits.get(c.parent) if c.parent else None

    def _last_commit(self, repo: _Repo, commit: _Commit, path: str) -> dict:
        """The newest commit that changed `path` (a file, or anything under a folder)."""

        def state(c: _Commit) -> list:
            return sorted((p, f.oid) for p, f in c.files.items() if p == path or p.startswith(path + "/"))

        last, mine = commit, state(commit)
        for c in self._history(repo, commit):
            if state(c) != mine:
                break
            last = c
        return {"id": last.oid, "title": last.title, "date": last.date}

    def _commit_json(self, repo: _Repo, c: _Commit) -> dict:
        return {"id": c.oid, "title": c.title, "message": c.message, "date": c.date,
                "authors": [{"user": repo.owner, "avatar": None}]}

    def _upload_mode(self, commit: _Commit, path: str, size: int, sample: bytes) -> str:
        attrs = commit.files.get(".gitattributes")
        patterns = []
        if attrs is not None:
            for line in self._blob_path(attrs.sha256).read_text().splitlines():
                parts = line.split()
                if len(parts) > 1 and "filter=lfs" in parts[1:]:
                    patterns.append(parts[0])
        name = path.rsplit("/", 1)[-1]
        by_pattern = any(fnmatch.fnmatch(path if "/" in p else name, p) for p in patterns)
        return "lfs" if size >= LFS_THRESHOLD or by_pattern or b"\0" in sample else "regular"


# ----------------------------------------------------------------------------------------------------- handlers
_REPO = r"/api/(?P<type>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
_GIT_REPO = r"/(?:(?P<type>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+?)"
Route = tuple[str, "re.Pattern[str]", Callable[["_Handler", HubServer, dict, dict], None]]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "SynFashionTestHub/1"

    # -- plumbing
    def setup(self) -> None:
        super().setup()
        # headers and body go out in separate writes: without this, Nagle + delayed ACK add ~40 ms per request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # silence the default stderr access log
        pass

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        hub: HubServer = self.server.hub  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        self._query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        self._status, self._bytes_in, self._body_done, self.user = 0, 0, False, None
        try:
            self.user = self._authenticate(hub)
            fault = hub._take_fault(method, url.path)
            if fault is not None:
                if fault.kind == "status":
                    raise _HTTPError(fault.status, fault.message)
                if fault.kind == "hang":
                    hub._release.wait(120)
                self._drop()
            for route_method, pattern, handler in _ROUTES:
                match = pattern.fullmatch(url.path)
                if match and route_method == ("GET" if method == "HEAD" else method):
                    groups = {k: unquote(v) for k, v in match.groupdict().items() if v is not None}
                    handler(self, hub, groups, self._query)
                    return
            raise _HTTPError(404, f"{method} {url.path} is not implemented by the test Hub server")
        except _HTTPError as e:
            self._drain()
            headers = {"X-Error-Message": e.message}
            if e.code:
                headers["X-Error-Code"] = e.code
            self._json({"error": e.message}, e.status, headers)
        except _Dropped:
            pass
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            with hub._lock:
                hub.requests.append(RequestRecord(method, url.path, self._status, self.user, self._bytes_in))

    def _authenticate(self, hub: HubServer) -> str | None:
        auth = self.headers.get("Authorization")
        if not auth:
            return None
        token = auth.split(" ", 1)[1].strip() if auth.lower().startswith("bearer ") else ""
        user = hub.tokens.get(token)
        if user is None:
            raise _HTTPError(401, "Invalid credentials in Authorization header")
        return user

    def _drop(self) -> None:
        """Read part of the request body, then close the connection without an answer."""
        length = self.headers.get("Content-Length")
        if length is not None:
            self._bytes_in += len(self.rfile.read(int(length) // 2))
        elif self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            size = int(self.rfile.readline().split(b";")[0], 16)
            self._bytes_in += len(self.rfile.read(size // 2))
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise _Dropped()

    def _drain(self, limit: int = 64 * 2**20) -> None:
        """Read an unread request body before answering an error, as a real server would (else close)."""
        if self._body_done or self.command not in ("POST", "PUT"):
            return
        if int(self.headers.get("Content-Length") or 0) <= limit:
            with contextlib.suppress(OSError, ValueError, _Dropped):
                for _ in self._body_chunks():
                    pass

    def _body_chunks(self) -> Iterator[bytes]:
        """The request body, de-chunked, as it arrives."""
        self._body_done = True
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return
                data = self.rfile.read(size)
                self.rfile.readline()
                self._bytes_in += len(data)
                yield data
        remaining = int(self.headers.get("Content-Length") or 0)
        while remaining > 0:
            data = self.rfile.read(min(remaining, 2**20))
            if not data:
                raise _Dropped()
            remaining -= len(data)
            self._bytes_in += len(data)
            yield data

    def _body(self) -> bytes:
        return b"".join(self._body_chunks())

    def _form_or_json(self) -> dict[str, list[str] | Any]:
        raw = self._body()
        if "json" in self.headers.get("Content-Type", ""):
            return json.loads(raw or b"{}")
        return {k: v for k, v in parse_qs(raw.decode()).items()}

    def _send(self, status: int, body: bytes, headers: Mapping[str, str], *, length: int | None = None) -> None:
        self._status = status
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        if not self._body_done and self.command in ("POST", "PUT") and self.headers.get("Content-Length") != "0":
            self.close_connection = True  # the unread request body would corrupt the next request
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> None:
        body = json.dumps(obj).encode()
        self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

    # -- access rules
    def _repo(self, hub: HubServer, g: dict, *, write: bool = False) -> _Repo:
        repo_type = _PLURALS.get(g.get("type") or "models", "model")
        repo = hub._repos.get((repo_type, f"{g['ns']}/{g['name']}"))
        if repo is None or (repo.private and self.user != repo.owner):
            raise _HTTPError(401 if self.user is None else 404, "Repository not found", "RepoNotFound")
        if write and self.user is None:
            raise _HTTPError(401, "You must be authenticated to write to this repository")
        if write and self.user != repo.owner:
            raise _HTTPError(403, f"You don't have the rights to write to {repo.type}s/{repo.id}")
        return repo

    # -- account and repos
    def whoami(self, hub: HubServer, g: dict, q: dict) -> None:
        if self.user is None:
            raise _HTTPError(401, "Invalid credentials in Authorization header")
        self._json({"type": "user", "id": self.user, "name": self.user, "fullname": self.user, "orgs": [],
                    "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})

    def create_repo(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        if self.user is None:
            raise _HTTPError(401, "You must be authenticated to create a repository")
        namespace = body.get("organization") or self.user
        if namespace != self.user:
            raise _HTTPError(403, f"You don't have the rights to create a repository under the namespace {namespace!r}")
        repo_type, repo_id = body.get("type") or "model", f"{namespace}/{body['name']}"
        private = body.get("visibility", "private" if body.get("private") else "public") == "private"
        with hub._lock:
            existing = next((r for (t, i), r in hub._repos.items() if i == repo_id), None)
            if existing is not None:
                what = "You already created this" if existing.type == repo_type else "This name is taken by a"
                self._json({"error": f"{what} {existing.type} repo", "url": f"{hub.endpoint}/{existing.url_path}"}, 409)
                return
            repo = hub._new_repo(repo_type, repo_id, self.user, private)
        self._json({"url": f"{hub.endpoint}/{repo.url_path}", "name": repo_id, "id": repo_id})

    def delete_repo(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        repo_id = f"{body.get('organization') or self.user}/{body['name']}"
        ns, name = repo_id.split("/")
        repo = self._repo(hub, {"type": (body.get("type") or "model") + "s", "ns": ns, "name": name}, write=True)
        with hub._lock:
            del hub._repos[(repo.type, repo.id)]
        self._json({})

    def settings(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        repo = self._repo(hub, g, write=True)
        with hub._lock:
            if "visibility" in body:
                repo.private = body["visibility"] == "private"
            elif "private" in body:
                repo.private = bool(body["private"])
        self._json({})

    def validate_yaml(self, hub: HubServer, g: dict, q: dict) -> None:
        content = json.loads(self._body() or b"{}").get("content", "")
        errors = []
        if content.startswith("---"):
            end = content.find("\n---", 3)
            if end < 0:
                errors.append({"message": "YAML metadata block is not closed by '---'"})
            else:
                try:
                    import yaml  # optional: only to reject a malformed card like the Hub does

                    if not isinstance(yaml.safe_load(content[3:end]) or {}, dict):
                        errors.append({"message": "YAML metadata is not a mapping"})
                except ImportError:
                    pass
                except Exception as e:  # yaml.YAMLError
                    errors.append({"message": f"invalid YAML: {e}"})
        self._json({"errors": errors, "warnings": []}, 400 if errors else 200)

    def repo_info(self, hub: HubServer, g: dict, q: dict) -> None:
        repo = self._repo(hub, g)
        commit = hub._commit_at(repo, g.get("rev", "main"))
        blobs = q.get("blobs", "").lower() in ("1", "true")
        siblings = []
        for path in sorted(commit.files):
            f = commit.files[path]
            s: dict[str, Any] = {"rfilename": path}
            if blobs:
                s.update(size=f.size, blobId=f.oid)
                if f.lfs:
                    s["lfs"] = {"size": f.size, "sha256": f.sha256, "pointerSize": len(_lfs_pointer(f.sha256, f.size))}
            siblings.append(s)
        self._json({
            "_id": hashlib.md5(repo.id.encode()).hexdigest()[:24], "id": repo.id, "author": repo.owner,
            "sha": commit.oid, "lastModified": commit.date, "createdAt": repo.created, "private": repo.private,
            "gated": False, "disabled": False, "downloads": 0, "likes": 0, "tags": [], "siblings": siblings,
            "usedStorage": sum(f.size for f in commit.files.values()),
        })

    def refs(self, hub: HubServer, g: dict, q: dict) -> None:
        repo = self._repo(hub, g)
        branches = [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": oid}
                    for b, oid in sorted(repo.branches.items())]
        out: dict[str, Any] = {"branches": branches, "converts": [], "tags": []}
        if q.get("include_prs"):
            out["pullRequests"] = []
        self._json(out)

    def commits(self, hub: HubServer, g: dict, q: dict) -> None:
        repo = self._repo(hub, g)
        self._json([hub._commit_json(repo, c) for c in hub._history(repo, hub._commit_at(repo, g["rev"]))])

    def create_branch(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        repo = self._repo(hub, g, write=True)
        with hub._lock:
            if g["branch"] in repo.branches:
                raise _HTTPError(409, f"Reference refs/heads/{g['branch']} already exists")
            start = hub._commit_at(repo, body.get("startingPoint") or "main")
            repo.branches[g["branch"]] = start.oid
        self._json({})

    # -- listing
    def _entries(self, hub: HubServer, repo: _Repo, commit: _Commit, paths: list[str], *, expand: bool) -> list[dict]:
        out = []
        for path in paths:
            f = commit.files.get(path)
            if f is not None:
                entry = f.entry(path)
            else:
                children = sorted((p, x.oid) for p, x in commit.files.items() if p.startswith(path + "/"))
                entry = {"type": "directory", "size": 0, "path": path,
                         "oid": hashlib.sha1(json.dumps(children).encode()).hexdigest()}
            if expand:
                entry["lastCommit"] = hub._last_commit(repo, commit, path)
            out.append(entry)
        return out

    def tree(self, hub: HubServer, g: dict, q: dict) -> None:
        repo = self._repo(hub, g)
        commit = hub._commit_at(repo, g["rev"])
        base = g.get("path", "").strip("/")
        recursive = q.get("recursive", "").lower() in ("1", "true")
        expand = q.get("expand", "").lower() in ("1", "true")
        prefix = base + "/" if base else ""
        under = [p for p in commit.files if p.startswith(prefix)]
        if base and not under:
            raise _HTTPError(404, f"{base} does not exist on {g['rev']}", "EntryNotFound")
        listed: set[str] = set()
        for p in under:
            parts = p[len(prefix):].split("/")
            depth = len(parts) if recursive else 1
            for i in range(1, depth + 1):
                listed.add(prefix + "/".join(parts[:i]))
        ordered = sorted(listed, key=lambda p: (p in commit.files, p))  # like the Hub: folders, then files
        page = min(hub.tree_page_size, 50) if expand else hub.tree_page_size
        start = int(q.get("cursor", "0"))
        entries = self._entries(hub, repo, commit, ordered[start:start + page], expand=expand)
        headers = {}
        if start + page < len(ordered):
            nq = urlencode({**q, "cursor": str(start + page)})
            headers["Link"] = f'<{hub.endpoint}{urlsplit(self.path).path}?{nq}>; rel="next"'
        self._json(entries, 200, headers)

    def paths_info(self, hub: HubServer, g: dict, q: dict) -> None:
        body = self._form_or_json()
        repo = self._repo(hub, g)
        commit = hub._commit_at(repo, g["rev"])
        paths = body.get("paths", [])
        paths = [paths] if isinstance(paths, str) else paths
        expand = body.get("expand", "false")
        expand = str(expand[0] if isinstance(expand, list) else expand)
        exists = [p.strip("/") for p in paths if p.strip("/") in commit.files
                  or any(f.startswith(p.strip("/") + "/") for f in commit.files)]
        self._json(self._entries(hub, repo, commit, exists, expand=expand.lower() in ("1", "true")))

    # -- uploads
    def preupload(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        repo = self._repo(hub, g, write=True)
        commit = hub._commit_at(repo, g["rev"])
        out = []
        for f in body.get("files", []):
            mode = hub._upload_mode(commit, f["path"], int(f["size"]), base64.b64decode(f.get("sample", "")))
            remote = commit.files.get(f["path"])
            entry = {"path": f["path"], "uploadMode": mode, "shouldIgnore": False}
            if remote is not None:
                entry["oid"] = remote.sha256 if remote.lfs else remote.oid
            out.append(entry)
        self._json({"files": out, "commitOid": commit.oid})

    def lfs_batch(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        repo = self._repo(hub, {**g, "type": g.get("type") or "models"}, write=body.get("operation") == "upload")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], int(obj["size"])
            if hub.max_file_size is not None and size > hub.max_file_size:
                limit = f"object of {size} bytes exceeds the {hub.max_file_size} byte file size limit of {repo.id}"
                objects.append({"oid": oid, "size": size, "error": {"code": 413, "message": limit}})
            elif hub._has_blob(oid, size):
                objects.append({"oid": oid, "size": size})  # no actions: already stored, nothing to send
            else:
                with hub._lock:
                    hub._pending_lfs.add(oid)
                objects.append({"oid": oid, "size": size, "authenticated": True, "actions": {
                    "upload": {"href": f"{hub.endpoint}/_lfs/{oid}"},
                    "verify": {"href": f"{hub.endpoint}/_lfs/verify"},
                }})
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   {"Content-Type": "application/vnd.git-lfs+json"})

    def lfs_upload(self, hub: HubServer, g: dict, q: dict) -> None:
        oid = g["oid"]
        if oid not in hub._pending_lfs:
            raise _HTTPError(403, f"upload of {oid} was not announced by an LFS batch request")
        final = hub._blob_path(oid)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f"{final.name}.upload-{threading.get_ident()}")
        digest, size = hashlib.sha256(), 0
        try:
            with open(tmp, "wb") as f:
                for chunk in self._body_chunks():
                    digest.update(chunk)
                    size += len(chunk)
                    f.write(chunk)
            if digest.hexdigest() != oid:
                raise _HTTPError(400, f"uploaded content has sha256 {digest.hexdigest()}, expected {oid}")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        with hub._lock:
            hub.uploads.append(oid)
        self._send(200, b"", {})

    def lfs_verify(self, hub: HubServer, g: dict, q: dict) -> None:
        body = json.loads(self._body() or b"{}")
        if not hub._has_blob(body.get("oid", ""), body.get("size")):
            raise _HTTPError(404, f"object {body.get('oid')} is not stored")
        self._json({})

    def commit(self, hub: HubServer, g: dict, q: dict) -> None:
        lines = [json.loads(line) for line in self._body().splitlines() if line.strip()]
        repo = self._repo(hub, g, write=True)
        if q.get("create_pr"):
            raise _HTTPError(400, "pull requests are not supported by the test Hub server")
        if not lines or lines[0].get("key") != "header":
            raise _HTTPError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        with hub._lock:
            if g["rev"] not in repo.branches:
                raise _HTTPError(404, f"Invalid rev id: {g['rev']} (commits go to a branch)", "RevisionNotFound")
            head = repo.commits[repo.branches[g["rev"]]]
            parent = header.get("parentCommit")
            if parent and not head.oid.startswith(parent):
                raise _HTTPError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for op in lines[1:]:
                key, v = op.get("key"), op.get("value", {})
                path = v.get("path", "").strip("/")
                if key == "file":
                    data = base64.b64decode(v["content"])
                    files[path] = _File(len(data), hub._put_blob(data), _git_blob_oid(data), lfs=False)
                elif key == "lfsFile":
                    sha = v["oid"]
                    if not hub._has_blob(sha):
                        raise _HTTPError(422, f"LFS object {sha} for {path} was never uploaded")
                    size = hub._blob_path(sha).stat().st_size
                    files[path] = _File(size, sha, _git_blob_oid(_lfs_pointer(sha, size)), lfs=True)
                elif key == "deletedFile":
                    if files.pop(path, None) is None:
                        raise _HTTPError(404, f"A file with this name doesn't exist: {path}", "EntryNotFound")
                elif key == "deletedFolder":
                    gone = [p for p in files if p.startswith(path + "/")]
                    if not gone:
                        raise _HTTPError(404, f"A folder with this name doesn't exist: {path}", "EntryNotFound")
                    for p in gone:
                        del files[p]
                else:
                    raise _HTTPError(400, f"unknown commit operation {key!r}")
            commit = hub._add_commit(repo, g["rev"], head.oid, header.get("summary") or "update",
                                     header.get("description") or "", files)
        self._json({"success": True, "commitOid": commit.oid, "hookOutput": "", "pullRequestUrl": None,
                    "commitUrl": f"{hub.endpoint}/{repo.url_path}/commit/{commit.oid}"})

    # -- downloads
    def resolve(self, hub: HubServer, g: dict, q: dict) -> None:
        repo = self._repo(hub, g)
        commit = hub._commit_at(repo, g["rev"])
        f = commit.files.get(g["path"])
        if f is None:
            raise _HTTPError(404, f"Entry not found: {g['path']}", "EntryNotFound")
        headers = {"ETag": f'"{f.sha256 if f.lfs else f.oid}"', "X-Repo-Commit": commit.oid,
                   "Accept-Ranges": "bytes", "Content-Type": "application/octet-stream"}
        start, end, status = 0, f.size - 1, 200
        rng = self.headers.get("Range")
        if rng:
            m = re.fullmatch(r"bytes=(\d*)-(\d*)", rng.strip())
            if m is None or m.groups() == ("", ""):
                raise _HTTPError(416, f"unsupported Range {rng!r}")
            if m.group(1):
                start, end = int(m.group(1)), min(int(m.group(2)), f.size - 1) if m.group(2) else f.size - 1
            else:
                start = max(f.size - int(m.group(2)), 0)
            if start >= f.size or start > end:
                self._send(416, b"", {"Content-Range": f"bytes */{f.size}"})
                return
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{f.size}"
        length = end - start + 1 if f.size else 0
        self._send(status, b"", headers, length=length)
        if self.command == "HEAD" or not length:
            return
        with open(hub._blob_path(f.sha256), "rb") as fh:
            fh.seek(start)
            remaining = length
            while remaining:
                chunk = fh.read(min(remaining, 2**20))
                self.wfile.write(chunk)
                remaining -= len(chunk)


_ROUTES: list[Route] = [
    (method, re.compile(pattern), handler)
    for method, pattern, handler in (
        ("GET", r"/api/whoami-v2", _Handler.whoami),
        ("POST", r"/api/repos/create", _Handler.create_repo),
        ("DELETE", r"/api/repos/delete", _Handler.delete_repo),
        ("POST", r"/api/validate-yaml", _Handler.validate_yaml),
        ("GET", _REPO, _Handler.repo_info),
        ("GET", _REPO + r"/revision/(?P<rev>[^/]+)", _Handler.repo_info),
        ("GET", _REPO + r"/tree/(?P<rev>[^/]+)(?:/(?P<path>.+))?", _Handler.tree),
        ("POST", _REPO + r"/paths-info/(?P<rev>[^/]+)", _Handler.paths_info),
        ("GET", _REPO + r"/refs", _Handler.refs),
        ("GET", _REPO + r"/commits/(?P<rev>[^/]+)", _Handler.commits),
        ("POST", _REPO + r"/preupload/(?P<rev>[^/]+)", _Handler.preupload),
        ("POST", _REPO + r"/commit/(?P<rev>[^/]+)", _Handler.commit),
        ("POST", _REPO + r"/branch/(?P<branch>[^/]+)", _Handler.create_branch),
        ("PUT", _REPO + r"/settings", _Handler.settings),
        ("POST", _GIT_REPO + r"\.git/info/lfs/objects/batch", _Handler.lfs_batch),
        ("PUT", r"/_lfs/(?P<oid>[0-9a-f]{64})", _Handler.lfs_upload),
        ("POST", r"/_lfs/verify", _Handler.lfs_verify),
        ("GET", _GIT_REPO + r"/resolve/(?P<rev>[^/]+)/(?P<path>.+)", _Handler.resolve),
    )
]


@contextlib.contextmanager
def running_hub(root: str | Path | None = None, **kwargs: Any) -> Iterator[HubServer]:
    """`with running_hub() as hub:` a started server on 127.0.0.1 (a free port), stopped and cleaned on exit.

    `hub.endpoint` is its URL; the default account is `DEFAULT_USER` with token `DEFAULT_TOKEN`
    (pass `tokens={token: user}` for others). Storage is a temp folder unless `root` is given.
    """
    server = HubServer(root, **kwargs).start()
    try:
        yield server
    finally:
        server.stop()


__all__ = ["DEFAULT_TOKEN", "DEFAULT_USER", "Fault", "HubServer", "RequestRecord", "running_hub"]


if __name__ == "__main__":  # the server is run by `synfashion hub-server` (this module imports only the stdlib)
    import sys

    sys.exit("this module is the server behind `synfashion hub-server`: run that instead (synfashion hub-server "
             "--help)")
