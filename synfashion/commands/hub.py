"""`synfashion push`, `synfashion pull` and `synfashion hub-server`: argument parsing only; the work is in
`synfashion.hub` (and the local server in `synfashion.testing.hub_server`).

Their options are `push_dataset` / `pull_dataset`'s keyword arguments (no config dataclass: a transfer has nothing
to record), all off or unset by default, so they are written here. The Hub client is imported only when a Hub
command runs, so the rest of the CLI stays fast. The endpoint is huggingface_hub's (HF_ENDPOINT), the token comes
from --token, HF_TOKEN or `hf auth login`, and is never printed.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from ..build.core import FORMATS

console = Console(stderr=True, soft_wrap=True)
HUB_SERVER_PORT = 8808  # `synfashion hub-server`'s default port, as the README's export line spells it


def formats_arg(text: str) -> tuple[str, ...]:
    """--formats: a comma-separated subset of FORMATS (checked here, so a typo is a usage error before any request)."""
    items = tuple(f.strip() for f in text.split(",") if f.strip())
    bad = [f for f in items if f not in FORMATS]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {', '.join(FORMATS)} (comma-separated)")
    return items


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `push` and `pull` to the `synfashion` command's subparsers; each sets `func(args) -> exit code`."""
    token_help = ("Hub token (default: HF_TOKEN, then the `hf auth login` token); prefer HF_TOKEN, a token on the "
                  "command line is visible to other users of this machine")

    p = subparsers.add_parser(
        "push", help="upload a built folder to a Hub dataset repo as one commit (private by default)",
        description="Create the dataset repo if needed and upload the card, manifest and shards of a built folder "
                    "in one commit; stale shards are deleted in the same commit, and an interrupted push run again "
                    "does not re-send what already reached the Hub.",
    )
    # push_dataset's arguments (no config dataclass; every default off or unset)
    p.add_argument("out", help="a folder made by `synfashion build`")
    p.add_argument("repo_id", help="namespace/name of the dataset repo")
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="public", action="store_false", default=False,
                            help="keep the repo private (default)")
    visibility.add_argument("--public", dest="public", action="store_true",
                            help="publish (SynFashion is CC BY-NC-ND 4.0: read the warning this prints)")
    p.add_argument("--revision", default=None, help="branch to commit to (created from main if missing; default main)")
    p.add_argument("--token", default=None, help=token_help)
    p.add_argument("--commit-message", default=None, help="commit title (default: a summary of the build)")
    p.set_defaults(func=cmd_push)

    q = subparsers.add_parser(
        "pull", help="download a pushed dataset repo into a folder and verify it",
        description="Download every file of the dataset repo at one commit of REVISION into OUT (resumable), "
                    "then run `synfashion verify` on it. A repo listing a file whose path is not a plain relative "
                    "path (pipe:..., ../x, /x, a URL) is refused before anything is written (exit 2).",
    )
    # pull_dataset's arguments (no config dataclass; every default off or unset)
    q.add_argument("repo_id", help="namespace/name of the dataset repo")
    q.add_argument("out", help="an empty folder, or an earlier pull of the same repo")
    q.add_argument("--revision", default=None, help="branch, tag or commit (default main)")
    q.add_argument("--token", default=None, help=token_help)
    q.add_argument("--formats", type=formats_arg, default=None,
                   help="fetch only these copies of the images: parquet (data/: renders and garments) and/or "
                        "webdataset (webdataset/: tars); comma-separated, default both. The card and manifest always "
                        "come, and verify checks what was fetched")
    q.add_argument("--no-verify", action="store_true", help="skip `synfashion verify` after downloading")
    q.set_defaults(func=cmd_pull)

    s = subparsers.add_parser(
        "hub-server", help="run a local Hub-compatible server to try push, pull and loading by repo id offline",
        description="Serve the part of the Hugging Face Hub API that push, pull, load_dataset, hf_hub_download and "
                    "r2r push-model use, on 127.0.0.1, in the foreground, until Ctrl-C. It prints the environment "
                    "to set in the shell where you run the clients (HF_ENDPOINT, HF_HUB_DISABLE_XET=1, a token). "
                    "Repos live in memory: they are gone when it stops. For trying things and for tests; not "
                    "the Hub.",
    )
    # serve_hub's arguments (no config dataclass: a server records nothing)
    s.add_argument("--port", type=int, default=HUB_SERVER_PORT, help="port on 127.0.0.1 (0: any free port)")
    s.add_argument("--root", default=None,
                   help="folder for the uploaded files (default: a temporary folder, removed when it stops)")
    s.set_defaults(func=cmd_hub_server)


def cmd_push(args: argparse.Namespace) -> int:
    from ..hub import HubError, push_dataset

    try:
        push_dataset(
            args.out, args.repo_id, private=not args.public, allow_public=args.public, revision=args.revision,
            token=args.token, commit_message=args.commit_message, console=console,
        )
    except HubError as e:
        console.print(f"[red]push failed[/]: {e}", highlight=False)
        return 1
    return 0


def cmd_pull(args: argparse.Namespace) -> int:
    from ..hub import HubError, pull_dataset
    from ..hub.pull import UnsafeRepoError

    try:
        pull_dataset(args.repo_id, args.out, revision=args.revision, token=args.token, verify=not args.no_verify,
                     formats=args.formats, console=console)
    except UnsafeRepoError as e:  # the repo's content is bad input, not a failure to reach it
        console.print(f"[red]pull refused[/]: {e}", highlight=False)
        return 2
    except HubError as e:
        console.print(f"[red]pull failed[/]: {e}", highlight=False)
        return 1
    return 0


def cmd_hub_server(args: argparse.Namespace) -> int:
    import time

    from ..testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, HubServer

    try:
        server = HubServer(args.root, port=args.port)
    except OSError as e:
        raise OSError(f"cannot listen on 127.0.0.1:{args.port} ({e.strerror or e}); pass another --port (0: any "
                      "free port)") from None
    server.start()
    out = Console(soft_wrap=True, highlight=False)  # stdout: what the user copies
    try:  # from the first line on: Ctrl-C may come as soon as the user has read it
        out.print(f"local Hub-compatible server on {server.endpoint} (files in {server.root}); account "
                  f"{DEFAULT_USER}, so push to {DEFAULT_USER}/<name>. In the shell where you run synfashion, r2r and "
                  "python, set:", markup=False)
        out.print(f"export HF_ENDPOINT={server.endpoint} HF_HUB_DISABLE_XET=1 HF_TOKEN={DEFAULT_TOKEN} "
                  "HF_HUB_OFFLINE=0", markup=False)
        out.print("Ctrl-C stops it (its repos are then gone); unset those variables to talk to the Hub again.",
                  markup=False)
        out.file.flush()
        # serve (on the server's thread) until Ctrl-C. Woken every 0.2 s, never blocked for good: the kernel may
        # hand SIGINT to one of the server's threads, which does not wake a main thread blocked on a lock, and
        # Python runs the handler only once the main thread runs again (seen as a 1-in-4 hang under load)
        while True:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    console.print("hub server stopped")
    return 0
