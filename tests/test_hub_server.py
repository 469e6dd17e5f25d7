"""The test Hub server's own contract, over plain HTTP (urllib): resolve with ranges, tree pagination, access
rules, LFS content checks, atomic commits and fault rules. The real clients are exercised in test_hub*.py."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.error
import urllib.request

import pytest

from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, HubServer, running_hub

REPO = f"{DEFAULT_USER}/data"
AUTH = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}


def call(hub: HubServer, method: str, path: str, body: bytes | dict | None = None, headers: dict | None = None,
         auth: bool = True) -> tuple[int, dict, bytes]:
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    req = urllib.request.Request(hub.endpoint + path, data=data, method=method,
                                 headers={**(AUTH if auth else {}), **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def commit(hub: HubServer, *ops: dict, parent: str | None = None) -> tuple[int, dict]:
    header = {"summary": "test", **({"parentCommit": parent} if parent else {})}
    lines = [{"key": "header", "value": header}, *ops]
    status, _, body = call(hub, "POST", f"/api/datasets/{REPO}/commit/main",
                           b"".join(json.dumps(x).encode() + b"\n" for x in lines),
                           {"Content-Type": "application/x-ndjson"})
    return status, json.loads(body)


def regular(path: str, data: bytes) -> dict:
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(data).decode(), "encoding": "base64"}}


@pytest.fixture
def hub():
    with running_hub(tree_page_size=2) as server:
        server.create_repo(REPO, private=True)
        yield server


def test_resolve_head_and_ranges(hub):
    data = bytes(range(256)) * 4
    assert commit(hub, regular("dir/blob.bin", data))[0] == 200
    url = f"/datasets/{REPO}/resolve/main/dir/blob.bin"
    status, headers, body = call(hub, "HEAD", url)
    assert status == 200 and headers["Content-Length"] == str(len(data)) and body == b""
    assert headers["X-Repo-Commit"] == hub.head(REPO) and headers["Accept-Ranges"] == "bytes"
    assert call(hub, "GET", url, headers={"Range": "bytes=10-19"})[2] == data[10:20]
    status, headers, body = call(hub, "GET", url, headers={"Range": "bytes=-5"})
    n = len(data)
    assert status == 206 and body == data[-5:] and headers["Content-Range"] == f"bytes {n - 5}-{n - 1}/{n}"
    assert call(hub, "GET", url, headers={"Range": f"bytes={len(data)}-"})[0] == 416
    status, headers, _ = call(hub, "GET", f"/datasets/{REPO}/resolve/main/missing")
    assert status == 404 and headers["X-Error-Code"] == "EntryNotFound"


def test_private_repos_and_tokens(hub):
    status, headers, _ = call(hub, "GET", f"/api/datasets/{REPO}", auth=False)
    assert status == 401 and headers["X-Error-Code"] == "RepoNotFound"  # anonymous: looks absent
    status, _, body = call(hub, "GET", f"/api/datasets/{REPO}", headers={"Authorization": "Bearer nope"})
    assert status == 401 and b"Invalid credentials" in body
    assert call(hub, "GET", f"/api/datasets/{REPO}")[0] == 200
    hub.tokens["hf_other"] = "other"
    status, _, _ = call(hub, "GET", f"/api/datasets/{REPO}", headers={"Authorization": "Bearer hf_other"})
    assert status == 404
    assert all(DEFAULT_TOKEN not in repr(r) for r in hub.requests)  # tokens are never recorded


def test_tree_is_paginated_with_link_headers(hub):
    commit(hub, *(regular(f"a/f{i}.txt", b"x%d" % i) for i in range(5)))
    status, headers, body = call(hub, "GET", f"/api/datasets/{REPO}/tree/main/a?recursive=true")
    paths = [e["path"] for e in json.loads(body)]
    while "Link" in headers:
        nxt = headers["Link"].split(";")[0].strip("<>")
        status, headers, body = call(hub, "GET", nxt[len(hub.endpoint):])
        paths += [e["path"] for e in json.loads(body)]
    assert paths == [f"a/f{i}.txt" for i in range(5)]


def test_lfs_content_is_checked_and_commits_are_atomic(hub):
    data = b"\0parquet-ish" * 100
    oid = hashlib.sha256(data).hexdigest()
    status, _, body = call(hub, "POST", f"/datasets/{REPO}.git/info/lfs/objects/batch",
                           {"operation": "upload", "objects": [{"oid": oid, "size": len(data)}]})
    href = json.loads(body)["objects"][0]["actions"]["upload"]["href"]
    assert call(hub, "PUT", href[len(hub.endpoint):], data[:-1] + b"!")[0] == 400  # wrong bytes are refused
    head = hub.head(REPO)
    lfs = {"key": "lfsFile", "value": {"path": "x.parquet", "algo": "sha256", "oid": oid, "size": len(data)}}
    status, body = commit(hub, regular("ok.txt", b"fine"), lfs)
    assert status == 422 and hub.head(REPO) == head and "ok.txt" not in hub.files(REPO)  # all or nothing
    assert call(hub, "PUT", href[len(hub.endpoint):], data)[0] == 200 and hub.uploads == [oid]
    status, body = commit(hub, regular("ok.txt", b"fine"), lfs, parent=head)
    assert status == 200 and hub.files(REPO)["x.parquet"] == oid
    assert commit(hub, regular("late.txt", b"x"), parent=head)[0] == 412  # the branch moved since `head`


def test_fault_rules_count_their_hits(hub):
    fault = hub.fail("GET", r"/api/datasets/", 503, "busy", times=2)
    assert [call(hub, "GET", f"/api/datasets/{REPO}")[0] for _ in range(3)] == [503, 503, 200]
    assert fault.hits == 2 and fault.triggered.is_set()
    hub.drop("GET", r"/api/whoami-v2")
    with pytest.raises((urllib.error.URLError, ConnectionError)):
        call(hub, "GET", "/api/whoami-v2")
    assert json.loads(call(hub, "GET", "/api/whoami-v2")[2])["name"] == DEFAULT_USER
