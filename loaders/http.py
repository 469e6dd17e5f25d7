"""Shards over http(s) without a shell: streamed in-process, the Hub token in a request header.

webdataset opens http(s) URLs by running curl, so a private Hub repo needs either the token on curl's command line
(visible to every user of the machine in the process list) or a `pipe:` shell command. Here a shard is fetched with
huggingface_hub's HTTP client (its session, retries, proxy settings and offline mode) and read as a stream, a chunk
at a time, so a tar is never held whole in memory. The token (an explicit `token=`, else HF_TOKEN or the saved
`hf auth login`) goes only to the Hub endpoint's origin (HF_ENDPOINT, huggingface.co, hf.co, or an `endpoint=` the
caller names): never to another host, never in a URL, a process argument or a message; httpx drops the header when
a redirect leaves that origin (the Hub sends downloads on to its CDN). This module does not parse tars.

Plain `webdataset.WebDataset(urls)` users reading a private repo can register the same opener,
`from webdataset.gopen import gopen_schemes; gopen_schemes.update(http=gopen_http, https=gopen_http)`, at import
time of the module that builds the dataset (so spawned workers register it too).
"""

from __future__ import annotations

import contextlib
import io
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHUNK = 1 << 20  # bytes asked of the response stream at a time
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(parts.scheme, 0)


def is_http(url: str) -> bool:
    return url.startswith(("http://", "https://"))


@dataclass(frozen=True)
class HttpAccess:
    """Who may read what: `token` (None: HF_TOKEN or the saved login; False: never send one) for the Hub at
    `endpoint` (None: HF_ENDPOINT, which defaults to huggingface.co). The token is kept out of repr."""

    token: str | bool | None = field(default=None, repr=False)
    endpoint: str | None = None

    def hub_origins(self) -> set[tuple[str, str, int]]:
        from huggingface_hub import constants

        endpoints = {constants.ENDPOINT, "https://huggingface.co", "https://hf.co"}
        if self.endpoint:
            endpoints.add(self.endpoint)
        return {_origin(e) for e in endpoints}

    def headers(self, url: str) -> dict[str, str]:
        """Request headers for `url`: the Authorization header only when it is on the Hub."""
        from huggingface_hub.utils import build_hf_headers

        from synfashion import __version__

        token = self.token if _origin(url) in self.hub_origins() else False
        return build_hf_headers(token=token, library_name="synfashion", library_version=__version__)

    def scrub(self, text: str) -> str:
        """`text` without the token (an error message must never carry it, whatever a server echoes)."""
        for secret in (self.token if isinstance(self.token, str) else None, os.environ.get("HF_TOKEN")):
            if secret and len(secret) >= 4:
                text = text.replace(secret, "***")
        return text


def http_failure(exn: BaseException) -> tuple[str, str] | None:
    """(what the server answered, what to do) for an HTTP error status, in one line each; None for other errors."""
    response = getattr(exn, "response", None)
    status = getattr(response, "status_code", None)
    if status is None:
        return None
    what = f"HTTP {status} {getattr(response, 'reason_phrase', '') or ''}".strip()
    if status in (401, 403, 404):
        return what, ("The repo may be private or the URL wrong: pass token=..., or set HF_TOKEN / run "
                      "`hf auth login` with an account that can read it, and check the URL.")
    return what, "Try again later (or pass on_error='skip' to skip the shard, reported in loader.skipped)."


class HttpStream(io.RawIOBase):
    """The body of one GET, read as it arrives. Raises huggingface_hub's HTTP errors (401, 404, ...) on open."""

    def __init__(self, url: str, access: HttpAccess = HttpAccess(), *, chunk_size: int = CHUNK):
        from huggingface_hub import constants
        from huggingface_hub.utils import hf_raise_for_status, http_stream_backoff

        super().__init__()
        self.url = url
        self._stack = contextlib.ExitStack()
        try:
            response = self._stack.enter_context(http_stream_backoff(
                "GET", url, headers=access.headers(url), follow_redirects=True,
                timeout=constants.HF_HUB_DOWNLOAD_TIMEOUT,
            ))
            hf_raise_for_status(response)
        except BaseException:
            self._stack.close()
            raise
        self._chunks = response.iter_bytes(chunk_size)
        self._pending = memoryview(b"")

    def __repr__(self) -> str:  # webdataset writes the stream's repr into its error messages
        return f"<HTTP stream {self.url}>"

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, None)
            if chunk is None:
                return 0
            self._pending = memoryview(chunk)
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        if not self.closed:
            self._stack.close()
        super().close()


def open_http(url: str, access: HttpAccess = HttpAccess()) -> io.BufferedReader:
    return io.BufferedReader(HttpStream(url, access), buffer_size=CHUNK)


def gopen_http(url: str, mode: str = "rb", bufsize: int = 8192, **kw) -> io.BufferedReader:
    """An opener for webdataset's `gopen_schemes` table (http/https): read-only, the token from HF_TOKEN or the
    saved login for Hub URLs (HF_ENDPOINT), no curl, no shell."""
    if mode[0] != "r":
        raise ValueError(f"{url}: only reading is supported (mode {mode!r})")
    return open_http(url)
