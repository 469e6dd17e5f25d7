"""Can the Hub be reached at all? One quick question, before a library spends a minute retrying.

huggingface_hub retries a failed connection five times with growing pauses (about 25 s), for every file it is asked
for, and transformers or datasets ask for several: with no network (or a firewall, or a wrong HF_ENDPOINT) a Hub id
took one to several minutes of "Retrying in 8s" lines to become an error. `unreachable()` asks once per process and
endpoint: one HEAD request to the endpoint through huggingface_hub's own HTTP session (its proxy and certificate
settings), answered or failed within `TIMEOUT_S`. Any HTTP answer, even an error status, means the Hub is there;
only a connection that cannot be made counts. `require_hub` turns that into one line naming what the command can do
offline instead. In offline mode (HF_HUB_OFFLINE=1) nothing is asked: the libraries read their cache and fail fast.
"""

from __future__ import annotations

from .errors import HubConnectionError

TIMEOUT_S = 5.0
_ANSWERS: dict[str, str | None] = {}  # endpoint -> why it cannot be reached (None: it answered)


def offline_mode() -> bool:
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE)


def unreachable(timeout: float = TIMEOUT_S) -> str | None:
    """Why the Hub endpoint (HF_ENDPOINT, else huggingface.co) cannot be reached, or None when it answers."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    endpoint = constants.ENDPOINT
    if endpoint not in _ANSWERS:
        try:
            get_session().head(endpoint, timeout=timeout, follow_redirects=False)
            _ANSWERS[endpoint] = None
        except Exception as e:  # noqa: BLE001 - DNS, refused, TLS, timeout: each means "not reachable from here"
            first = next((line.strip() for line in str(e).splitlines() if line.strip()), type(e).__name__)
            _ANSWERS[endpoint] = first
    return _ANSWERS[endpoint]


def require_hub(typed: str, what: str, offline_way: str) -> None:
    """Raise one `HubConnectionError` line at once when the Hub cannot be reached (and offline mode is off):
    `typed` is what the user wrote, `what` what it names ("image-classification model"), `offline_way` what to
    do without the Hub ("--arch resnet18 builds one with random weights")."""
    if offline_mode():
        return
    why = unreachable()
    if why is not None:
        from huggingface_hub import constants

        raise HubConnectionError(f"{typed}: cannot reach {constants.ENDPOINT} to fetch this {what} ({why}); "
                                 f"without the Hub: {offline_way}")


__all__ = ["HubConnectionError", "TIMEOUT_S", "offline_mode", "require_hub", "unreachable"]
