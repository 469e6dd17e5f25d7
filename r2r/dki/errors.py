"""The one error type DKI training raises for bad input (it subclasses ValueError, so `r2r` prints one line).

Why a module of its own: data, checkpoint and trainer modules all raise it, and the CLI catches it, without any of
them importing torch just to name an error. Messages name the file or token at fault and the fix.
"""

from __future__ import annotations


class DKIError(ValueError):
    """Bad DKI input: an empty source, images too small, a token already in the vocabulary, a wrong-width embedding,
    a checkpoint that does not belong to this run."""
