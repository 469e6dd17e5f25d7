#!/usr/bin/env bash
# The demo, from nothing: set up .venv, generate the embedded sample release, package it, verify it, show it.
# Everything lands in demo-out/ (ignored by git). Offline; CPU is enough.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/_venv.sh
OUT=demo-out
mkdir -p "$OUT"
rm -rf "$OUT/release" "$OUT/synfashion-sample"

echo "== 1. sample release (20 categories x 8 projects x 1 texture x 4 views, 768x1024)"
# 8 projects per category: enough groups (projects tied by shared textures) that every split holds every category
synfashion sample "$OUT/release" --projects 8 --textures 1

echo "== 2. build: Parquet (Hub layout, 2 configs) + WebDataset + card + manifest"
synfashion build "$OUT/release" "$OUT/synfashion-sample" --shard-size 16MB

echo "== 3. verify: re-hash everything, Parquet/WebDataset parity, no split leak"
synfashion verify "$OUT/synfashion-sample"

echo "== 4. stats + contact sheets"
synfashion stats "$OUT/synfashion-sample" --sheets "$OUT/sheets"

echo "== 5. load it the way users will"
python - "$OUT/synfashion-sample" <<'PY'
import sys, datasets
datasets.disable_progress_bars()
root = sys.argv[1]
ds = datasets.load_dataset(root)
print(ds)
row = ds["train"][0]
print("first train row:", {k: v for k, v in row.items() if k != "image"}, "image", row["image"].size)
g = datasets.load_dataset(root, "garments", split="train")
print("garments config:", g.num_rows, "rows with views", [c for c in g.column_names if c in ("front", "back", "random1", "random2")])
PY

echo "== 6. Hub round trip against a local Hub-compatible server: push, load_dataset (configs, streaming), pull, verify"
python scripts/demo_hub.py "$OUT/synfashion-sample"

echo "== 7. FashionR2R on a tiny random-weight SD-1.5-architecture model: the real code path end to end"
echo "   (random weights make noise, not photos: this shows the machinery; real use points --model at SD-1.5 weights)"
r2r tiny-model "$OUT/tiny-sd" --overwrite
r2r train-negative --model "$OUT/tiny-sd" --renders "$OUT/synfashion-sample" --split train --out "$OUT/dki-negative" --overwrite \
    --steps 20 --resolution 64 --batch-size 4 --num-workers 0 --checkpoint-every 10
rm -rf "$OUT/synfashion-r2r"
echo "== 8. translate the test split into a built translated dataset (192x256 so the CPU demo stays short)"
r2r translate-dataset "$OUT/synfashion-sample" "$OUT/synfashion-r2r" --split test --limit 8 --resize 192x256 \
    --model "$OUT/tiny-sd" --negative-embedding "$OUT/dki-negative/learned_embeds.safetensors" \
    --batch-size 4 --steps 50 --strength 0.3 --num-workers 1
synfashion verify "$OUT/synfashion-r2r"

echo "== 9. publish the translated variant on the local Hub server and load it back by repo id"
python scripts/demo_hub.py "$OUT/synfashion-r2r" --repo-id synfashion-tester/synfashion-r2r

echo "== 10. judge it with the paper's protocol: KID to real photos, LPIPS and SSIM to each source"
echo "   (--random-weights and the sample's train renders standing in for real photos: the numbers test the plumbing)"
r2r evaluate --translated "$OUT/synfashion-r2r" --real "$OUT/synfashion-sample" --real-split train \
    --out "$OUT/eval/r2r.json" --overwrite --random-weights --kid-subsets 10 --batch-size 4 --num-workers 1
r2r evaluate-table "$OUT/eval/r2r.json"
r2r report "$OUT/eval/r2r.json" --out "$OUT/report"

echo "== done: see $OUT/ (contact sheets in $OUT/sheets, the translated dataset in $OUT/synfashion-r2r, the report in $OUT/report/report.html)"
