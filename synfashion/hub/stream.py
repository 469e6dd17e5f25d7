"""Streaming a pushed dataset's WebDataset shards straight from the Hub."""

from __future__ import annotations

import shlex

from huggingface_hub import HfApi, hf_hub_url

from .. import __version__
from .errors import HubNotFoundError, _Context, _hub_errors, _token_source
from .push import REPO_TYPE

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
