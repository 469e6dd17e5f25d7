"""One SD-1.5 UNet call on the CPU, per row, by batch size: oneDNN against thnn (im2col + gemm) convolutions.

Why: it isolates the finding behind `R2RPipeline.cpu_conv_im2col`. RIG's exact mode calls the UNet with 1 to 3 rows
(the published pattern with 2 or 4), and on a CPU oneDNN re-lays out every convolution's weights on every call: a
cost per call, not per row, that at 256x256 makes a batch-1 call much dearer per row than a batch-4 one. `im2col`
is r2r/cpu_conv.py's switch (PyTorch's thnn convolution, oneDNN off), whose cost per row hardly depends on the batch.
(Issue 15.) Random weights (speed does not depend on
their values); CPU seconds (process time) are printed beside wall seconds, since this machine is shared.

    python benchmarks/bench_translate_unet.py --size 256 --batches 1,2,3,4 --threads 1
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from r2r.rig.cpu_conv import cpu_conv_im2col  # noqa: E402
from r2r.sd15 import SD15_UNET  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="image side in pixels (latent = size / 8)")
    p.add_argument("--batches", default="1,2,3,4")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each is reported")
    p.add_argument("--tiny", action="store_true", help="a tiny UNet (smoke test)")
    args = p.parse_args(argv)
    from diffusers import UNet2DConditionModel

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.tiny:
        from r2r.tiny import TinyModelConfig, unet_config

        config = unet_config(TinyModelConfig())
    else:
        config = SD15_UNET
    unet = UNet2DConditionModel(**config).eval()
    side = args.size // 8
    width = config["cross_attention_dim"]

    @torch.no_grad()
    def call(batch: int, path: str) -> tuple[float, float, torch.Tensor]:
        x = torch.randn(batch, 4, side, side, generator=torch.Generator().manual_seed(1))
        text = torch.randn(batch, 77, width, generator=torch.Generator().manual_seed(2))
        c0, w0 = time.process_time(), time.perf_counter()
        with cpu_conv_im2col(path == "im2col"):
            y = unet(x, torch.tensor(281), encoder_hidden_states=text).sample
        return time.process_time() - c0, time.perf_counter() - w0, y

    _, _, a = call(1, "onednn")  # warm-up of every path, and their differences
    _, _, b = call(1, "im2col")
    batches = [int(b) for b in args.batches.split(",")]
    best: dict[str, dict[int, list[float]]] = {"onednn": {}, "im2col": {}}
    for _ in range(args.rounds):
        for batch in batches:
            for name in best:
                cpu, wall, _ = call(batch, name)
                prev = best[name].get(batch)
                if prev is None or cpu < prev[0]:
                    best[name][batch] = [cpu / batch, wall / batch]
    print(f"UNet call at {args.size}x{args.size} (latent {side}x{side}), {args.threads} thread(s); seconds per row "
          "(CPU / wall), best of each:", file=sys.stderr)
    for batch in batches:
        print(f"  batch {batch}: " + "   ".join(f"{name} {d[batch][0]:.2f} / {d[batch][1]:.2f}"
                                              for name, d in best.items()), file=sys.stderr)
    result = {"benchmark": "bench_translate_unet", "size": args.size, "threads": args.threads, "tiny": args.tiny,
              "max_abs_diff_onednn_vs_im2col": float((a - b).abs().max()),
              "cpu_s_per_row": {n: {str(k): round(v[0], 3) for k, v in d.items()} for n, d in best.items()},
              "wall_s_per_row": {n: {str(k): round(v[1], 3) for k, v in d.items()} for n, d in best.items()}}
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
