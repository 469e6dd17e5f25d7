"""Demo of the Hub round trip, offline: start a local Hub-compatible server, push a built folder to it, load it
back with `datasets.load_dataset` (each config, and streaming), stream the WebDataset tars, pull and verify.

    python scripts/demo_hub.py OUT [--repo-id synfashion-tester/synfashion-sample] [--no-verify]

OUT is a folder made by `synfashion build`. The server is `synfashion.testing.hub_server` on 127.0.0.1 with a
throwaway account; HF_ENDPOINT, HF_HUB_DISABLE_XET and an isolated HF_HOME are set before huggingface_hub and
datasets are imported, because both read them at import time.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from synfashion.testing.hub_server import DEFAULT_TOKEN, DEFAULT_USER, running_hub  # noqa: E402  (stdlib only)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", type=Path, help="a built dataset folder (synfashion build SOURCE OUT)")
    ap.add_argument("--repo-id", default=f"{DEFAULT_USER}/synfashion-sample")
    ap.add_argument("--no-verify", action="store_true", help="skip verify after the pull")
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="synfashion-demo-hub-") as tmp, running_hub(Path(tmp) / "server") as hub:
        os.environ.update(hub.client_env(token=DEFAULT_TOKEN, home=Path(tmp) / "hf_home"))
        import datasets
        import pyarrow.parquet as pq
        from rich.console import Console

        from synfashion.hub import pull_dataset, push_dataset, webdataset_urls

        console = Console(soft_wrap=True)
        datasets.disable_progress_bars()
        console.rule("Hub round trip (local Hub-compatible server)")
        console.print(f"server: {hub.endpoint} (storage {hub.root}), account {DEFAULT_USER}; HF_ENDPOINT points at it")

        t = time.perf_counter()
        result = push_dataset(args.out, args.repo_id, console=console, progress=False)
        console.print(f"push: {len(result.added) + len(result.replaced)} files, "
                      f"{result.upload_bytes / 2**20:.1f} MiB in {time.perf_counter() - t:.1f}s "
                      f"({'private' if result.private else 'public'} repo)")

        local = {}  # key -> sha256 of the image bytes, from the local Parquet shards
        for p in sorted((args.out / "data" / "renders").glob("*.parquet")):
            for row in pq.read_table(p, columns=["key", "image"]).to_pylist():
                local[row["key"]] = hashlib.sha256(row["image"]["bytes"]).hexdigest()

        t = time.perf_counter()
        ds = datasets.load_dataset(args.repo_id).cast_column("image", datasets.Image(decode=False))
        same = sum(hashlib.sha256(r["image"]["bytes"]).hexdigest() == local.get(r["key"])
                   for split in ds.values() for r in split)
        console.print(f"load_dataset({args.repo_id!r}): "
                      + ", ".join(f"{s} {len(d)} rows" for s, d in ds.items())
                      + f"; {same}/{len(local)} images byte-identical to the local shards "
                      + f"({time.perf_counter() - t:.1f}s)")
        for config in ("garments", "pairs"):  # the original's second config, or a translated variant's
            if (args.out / "data" / config).is_dir():
                g = datasets.load_dataset(args.repo_id, config)
                console.print(f"load_dataset(..., {config!r}): " + ", ".join(f"{s} {len(d)} rows" for s, d in g.items()))
        split = next(iter(ds))  # a translated variant may hold only the test split
        first = next(iter(datasets.load_dataset(args.repo_id, split=split, streaming=True)))
        console.print(f"load_dataset(..., streaming=True): first {split} row {first['key']!r}, "
                      f"image {first['image'].size[0]}x{first['image'].size[1]}")

        if (args.out / "webdataset" / split).is_dir():
            from loaders import EVAL_512, LoaderConfig, webdataset_loader

            urls = webdataset_urls(args.repo_id, split)  # plain https resolve URLs: no shell, no token in them
            n = sum(len(b["key"]) for b in webdataset_loader(
                urls, transform=EVAL_512.with_(size=(64, 64)), loader=LoaderConfig(batch_size=16, num_workers=0)))
            console.print(f"webdataset: streamed {n} {split} samples from {len(urls)} tar shard(s) of the private repo "
                          "(the token travels in a header, never in a URL or a command)")

        pulled = Path(tmp) / "pulled"
        pull_dataset(args.repo_id, pulled, verify=not args.no_verify, console=console, progress=False)
        console.print("[green]done[/]: pushed, loaded back (Arrow, streaming, WebDataset) and pulled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
