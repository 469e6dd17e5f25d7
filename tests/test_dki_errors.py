"""DKI bad input and data plumbing: clear errors naming the file or token, sources, shards, random-crop streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from r2r.dki import (
    DataConfig,
    DKIError,
    NegativeConfig,
    NegativeTrainer,
    PositiveConfig,
    PositiveTrainer,
    RunConfig,
    TrainConfig,
)
from r2r.dki.data import RankShard, open_source, step_seed

RES = 64


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # see conftest.py


@pytest.fixture(scope="module")
def model(tiny_dki_model):
    return tiny_dki_model  # conftest.py: made once per test process


def _images(root, n=4, size=(72, 80), prefix="im"):
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(root / f"{prefix}{i}.png")
    return root


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return _images(tmp_path_factory.mktemp("imgs") / "renders")


def _run(model, src, out, method=None, train=None, resume=None, **data) -> RunConfig:
    return RunConfig(
        model=str(model), out=str(out), data=DataConfig(source=str(src), resolution=RES, num_workers=0, **data),
        train=train or TrainConfig(steps=1, batch_size=2, lr=1e-2, checkpoint_every=0, progress=False),
        method=method or NegativeConfig(), resume=resume,
    )


def test_empty_source(model, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DKIError, match=r"no images .* under .*empty"):
        NegativeTrainer(_run(model, tmp_path / "empty", tmp_path / "out")).setup()


def test_filters_that_select_nothing(tmp_path):
    from synfashion.build import BuildConfig, build_dataset
    from synfashion.sample import SampleConfig, generate_sample

    generate_sample(tmp_path / "rel", SampleConfig(width=64, height=96, projects_per_category=2, textures_per_project=1,
                                                   categories=("pants", "hat")), workers=1, progress=False)
    build_dataset(tmp_path / "rel", tmp_path / "built", BuildConfig(), workers=1, progress=False)
    with pytest.raises(DKIError, match="no training images in SynFashion .* 'categories': \\('coat',\\)"):
        open_source(DataConfig(source=str(tmp_path / "built"), categories=("coat",), resolution=RES))
    # the SynFashion size check reads width/height from the metadata and names the release files
    with pytest.raises(DKIError, match=r"smaller than 128 px .*(Pants|Hat)/\S+\.jpg \(64x96\)"):
        open_source(DataConfig(source=str(tmp_path / "built"), resolution=128))


def test_images_too_small_are_named(model, tmp_path):
    src = _images(tmp_path / "mixed", n=2)
    _images(src, n=1, size=(40, 90), prefix="tiny")
    with pytest.raises(DKIError, match=r"1 image\(s\) .* smaller than 64 px .*tiny0\.png \(40x90\)"):
        NegativeTrainer(_run(model, src, tmp_path / "out")).setup()
    assert len(open_source(DataConfig(source=str(src), resolution=RES, min_size=32))) == 3  # --min-size allows them


def test_token_already_in_vocabulary(model, folder, tmp_path):
    with pytest.raises(DKIError, match=r"token '<\|endoftext\|>' is already in the tokenizer vocabulary"):
        NegativeTrainer(_run(model, folder, tmp_path / "out", NegativeConfig(token="<|endoftext|>"))).setup()


def test_init_embedding_width_and_format(model, folder, tmp_path):
    wrong = tmp_path / "wide.safetensors"
    save_file({"<old>": torch.zeros(1, 16)}, str(wrong))
    with pytest.raises(DKIError, match=r"wide\.safetensors: embedding width 16 does not match .* width 32"):
        NegativeTrainer(_run(model, folder, tmp_path / "o1", NegativeConfig(init_embedding=str(wrong)))).setup()
    two = tmp_path / "two.safetensors"
    save_file({"<old>": torch.zeros(2, 32)}, str(two))
    with pytest.raises(DKIError, match="has 2 vector.*--num-vectors 2"):
        NegativeTrainer(_run(model, folder, tmp_path / "o2", NegativeConfig(init_embedding=str(two)))).setup()
    pickled = tmp_path / "emb.pt"
    torch.save({"<old>": torch.zeros(1, 32)}, pickled)
    with pytest.raises(DKIError, match="pickled .* refused"):
        NegativeTrainer(_run(model, folder, tmp_path / "o3", NegativeConfig(init_embedding=str(pickled)))).setup()


def test_not_a_pipeline_folder(folder, tmp_path):
    with pytest.raises(DKIError, match="not a diffusers pipeline folder"):
        NegativeTrainer(_run(folder, folder, tmp_path / "out")).setup()


def test_resume_refuses_other_settings_and_bad_paths(model, folder, tmp_path):
    out = tmp_path / "out"
    NegativeTrainer(_run(model, folder, out)).fit()
    with pytest.raises(DKIError, match=r"other settings \(as taken -> now: method_config\.num_vectors: 1 -> 3\)"):
        NegativeTrainer(_run(model, folder, out, NegativeConfig(num_vectors=3), resume="latest")).setup()
    with pytest.raises(DKIError, match="not a complete DKI checkpoint"):
        NegativeTrainer(_run(model, folder, out, resume=str(tmp_path / "nowhere"))).setup()
    # a fresh output folder with --resume simply starts from step 0
    t = NegativeTrainer(_run(model, folder, tmp_path / "fresh", resume="latest")).setup()
    assert t.state.step == 0 and t.resumed_from is None


def test_cli_errors_are_one_line_value_errors(model, folder, tmp_path, capsys):
    import r2r.cli
    from r2r.commands import dki

    parser = r2r.cli.build_parser((dki,))
    args = parser.parse_args(["train-negative", "--model", str(model), "--renders", str(tmp_path / "missing"),
                              "--out", str(tmp_path / "o"), "--no-progress", "--num-workers", "0"])
    with pytest.raises(DKIError, match="does not exist"):
        args.func(args)
    assert issubclass(DKIError, ValueError)  # r2r's main prints it and exits 2
    with pytest.raises(SystemExit):
        parser.parse_args(["train-positive", "--model", "m", "--real", "r", "--out", "o", "--full", "--lora-rank", "8"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_datasets_source_with_captions(tmp_path):
    src = _images(tmp_path / "photos", n=3)
    (src / "metadata.jsonl").write_text("\n".join(json.dumps({"file_name": f"im{i}.png", "text": f"cap {i}"})
                                                  for i in range(3)))
    source = open_source(DataConfig(source=str(src), kind="datasets", resolution=RES))
    assert source.kind == "datasets" and len(source) == 3
    caps = sorted(source.dataset[(i, 0)]["caption"] for i in range(3))
    assert caps == ["cap 0", "cap 1", "cap 2"]
    with pytest.raises(DKIError, match="cannot open .*nonexistent-dataset-id"):
        open_source(DataConfig(source="nonexistent-dataset-id", resolution=RES))


def test_checkpoint_names_are_canonical():
    from r2r.dki.checkpoint import canonical

    assert canonical("module.unet._orig_mod.down_blocks.0.lora_A.default.weight") == \
        "unet.down_blocks.0.lora_A.default.weight"
    assert canonical("text_encoder.embeddings.token_embedding.vectors") == \
        "text_encoder.embeddings.token_embedding.vectors"


def test_rank_shards_partition_and_order_is_a_function_of_the_step():
    from loaders import DistInfo, EpochSampler

    shards = [RankShard(10, seed=3, dist=DistInfo(r, 3)) for r in range(3)]
    assert sorted(np.concatenate([s.indices for s in shards]).tolist()) == list(range(10))  # nothing dropped
    for r, s in enumerate(shards):  # the split is the loaders' rank split, not a second implementation
        assert s.indices.tolist() == EpochSampler(10, dist=DistInfo(r, 3), seed=3).indices().tolist()
    s = shards[0]
    local, epochs = s.local(0, 3 * len(s))
    assert epochs.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    for e in range(3):
        assert sorted(local[e * 4 : (e + 1) * 4].tolist()) == [0, 1, 2, 3]  # each epoch a permutation
    again, _ = RankShard(10, seed=3, dist=DistInfo(0, 3)).local(5, 4)  # random access = resume
    assert again.tolist() == local[5:9].tolist()
    assert step_seed(0, 0, 7) == step_seed(0, 0, 7) != step_seed(0, 1, 7)
    with pytest.raises(DKIError, match="cannot be shared by 4 processes"):
        RankShard(3, seed=0, dist=DistInfo(3, 4))


def test_random_crops_stream_and_encode_every_step(model, tmp_path):
    src = _images(tmp_path / "big", n=3, size=(96, 120))
    run = _run(model, src, tmp_path / "out", PositiveConfig(lora_rank=2), random_crop=True, caption_template="a photo",
               train=TrainConfig(steps=2, batch_size=2, lr=1e-2, checkpoint_every=0, progress=False, grad_accum=2,
                                 gradient_checkpointing=True))
    trainer = PositiveTrainer(run)
    result = trainer.fit()
    from r2r.dki.data import StreamBatches

    assert isinstance(trainer.batches, StreamBatches) and result.steps == 2
    assert trainer.trained_unet().is_gradient_checkpointing
    assert len(result.losses) == 2 and all(np.isfinite(result.losses))
