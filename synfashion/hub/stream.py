"""Streaming a pushed dataset's WebDataset shards straight from the Hub: their resolve URLs, pinned to one commit.

The URLs are plain https (no `pipe:` command, no token in them) for public and private repos alike; the repo's
file listing is data, so a listed path that is not a plain relative path is refused by name, never turned into a
URL. Reading them: `loaders.webdataset_loader(urls)` streams them in-process and sends the token in a header.
"""

from __future__ import annotations

from huggingface_hub import HfApi, hf_hub_url

from .. import __version__
from ..fs.safepath import path_problem
from .errors import HubError, HubNotFoundError, _Context, _hub_errors, _token_source
from .push import REPO_TYPE


def webdataset_urls(
    repo_id: str,
    split: str,
    *,
    revision: str | None = None,
    token: str | None = None,
    endpoint: str | None = None,
) -> list[str]:
    """https resolve URLs of the WebDataset tar shards of `split` in a pushed repo, pinned to the revision's commit.

    Read them with `loaders.webdataset_loader(urls)`: it streams each tar with huggingface_hub's HTTP client and,
    for a private repo, sends the token (its `token=`, else HF_TOKEN or the saved login) in the Authorization
    header, only to the Hub; no curl, no shell, no token in a URL or a process argument.

    Plain `webdataset.WebDataset(urls)` reads a public repo as is (webdataset runs curl). For a private repo, register
    the same opener first, at import time of the module that builds the dataset:
    `from webdataset.gopen import gopen_schemes; from loaders.http import gopen_http;
    gopen_schemes.update(http=gopen_http, https=gopen_http)`
    (webdataset's own `hf://` handler would put the token on curl's command line, visible to other users).
    """
    api = HfApi(endpoint=endpoint, token=token, library_name="synfashion", library_version=__version__)
    ctx = _Context("pull", repo_id, revision or "main", api.endpoint, _token_source(token), token)
    with _hub_errors(ctx):
        info = api.dataset_info(repo_id, revision=revision)
    prefix = f"webdataset/{split}/"
    listed = [s.rfilename for s in info.siblings or [] if s.rfilename.startswith(prefix)]
    unsafe = [(f, path_problem(f)) for f in listed if path_problem(f)]
    if unsafe:
        shown = "; ".join(f"{f!r} {problem}" for f, problem in unsafe[:3])
        raise HubError(f"{repo_id}@{info.sha[:12]} lists {len(unsafe)} file(s) under {prefix} whose path is not a "
                       f"plain relative path: {shown}. Refusing to stream from it.")
    files = sorted(f for f in listed if f.endswith(".tar"))
    if not files:
        raise HubNotFoundError(f"{repo_id}@{info.sha[:12]} has no WebDataset shards under {prefix}")
    return [hf_hub_url(repo_id, f, repo_type=REPO_TYPE, revision=info.sha, endpoint=api.endpoint) for f in files]
