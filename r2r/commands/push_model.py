"""`r2r push-model DIR REPO_ID`: argument parsing only; the work is in r2r/dki/publish.py.

Its options are `push_model`'s keyword arguments (no config dataclass: a push has nothing to record), all off or
unset by default, so they are written here. Nothing here imports torch or huggingface_hub (fast `r2r --help`). A
bad folder (DKIError) or a Hub failure (synfashion's HubError, a RuntimeError) is one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse

from ..cliargs import add_parser


def register(subparsers: argparse._SubParsersAction) -> None:
    p = add_parser(
        subparsers, "push-model", help="publish a DKI training folder as a Hub model repo (one commit, private)",
        description="Upload what a finished r2r train-negative / train-positive run wrote (safetensors artifacts, "
                    "model card, loss curve, training record; each checked against the run's record) to a Hub "
                    "model repo in one commit. Private by default; checkpoints and TensorBoard logs only when "
                    "asked; the run's private state never. The repo then loads with diffusers' "
                    "load_textual_inversion(REPO_ID) / load_lora_weights(REPO_ID) and with r2r translate-images / "
                    "translate-dataset --negative-embedding REPO_ID / --lora REPO_ID.",
    )
    # push_model's arguments (no config dataclass; every default off or unset)
    p.add_argument("folder", help="the --out folder of r2r train-negative or train-positive")
    p.add_argument("repo_id", help="namespace/name of the model repo (created if missing)")
    visibility = p.add_mutually_exclusive_group()
    visibility.add_argument("--private", dest="public", action="store_false", default=False,
                            help="keep the repo private (default)")
    visibility.add_argument("--public", dest="public", action="store_true",
                            help="publish (read the warning this prints: weights trained on SynFashion derive from "
                                 "CC BY-NC-ND 4.0 data)")
    p.add_argument("--revision", help="branch to commit to (created from main if missing; default main)")
    p.add_argument("--token", help="Hub token (default: HF_TOKEN, then the `hf auth login` token); prefer HF_TOKEN, "
                                   "a token on the command line is visible to other users of this machine")
    p.add_argument("--commit-message", help="commit title (default: what was trained, and the run id)")
    p.add_argument("--include-checkpoints", action="store_true",
                   help="also push this run's checkpoints/ (resumable state; optimizer and RNG states are torch.save "
                        "files)")
    p.add_argument("--include-logs", action="store_true",
                   help="also push the TensorBoard logs/ (--report-to tensorboard)")
    p.set_defaults(func=_cmd_push_model)


def _cmd_push_model(args: argparse.Namespace) -> int:
    from ..dki.publish import push_model

    push_model(args.folder, args.repo_id, private=not args.public, allow_public=args.public, revision=args.revision,
               token=args.token, commit_message=args.commit_message, include_checkpoints=args.include_checkpoints,
               include_logs=args.include_logs)
    return 0
