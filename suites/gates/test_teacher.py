"""Teacher gate (``-m teacher``): the SAM 3 adapter on tiny random models, the cache's crash
safety, and the shipped concept-world teacher's quality on the held-out split."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.teacher

# The held-out split the acceptance figures are measured on: the eval split (20 %) of
# `sam3spec data generate --images 1000 --videos 0 --seed 0`, i.e. 200 images never trained on.
EVAL_WORLD_IMAGES, EVAL_WORLD_SEED = 1000, 0
SMALL_WORLD = dict(
    image_size=64, video_min_frames=8, video_max_frames=8, video_min_objects=2, video_max_objects=2
)
CACHE_ARGS = [
    "--shard-size",
    "2",
    "--levels",
    "0",
    "2",
    "--boxes-per-image",
    "1",
    "--points-per-image",
    "1",
    "--limit",
    "3",
    "--dtype",
    "float32",
    "--quiet",
]


@pytest.fixture(scope="module")
def tiny_teacher_dir(tmp_path_factory) -> Path:
    from sam3spec.teacher.architecture import TINY
    from sam3spec.teacher.hf_models import build_models
    from sam3spec.teacher.loading import save_teacher

    detector, tracker = build_models(TINY, seed=0)
    return save_teacher(tmp_path_factory.mktemp("teacher") / "tiny", detector, tracker, {"kind": "test"})


@pytest.fixture(scope="module")
def small_world(tmp_path_factory) -> Path:
    from sam3spec.world import WorldConfig, generate_world

    root = tmp_path_factory.mktemp("small_world")
    generate_world(
        root, num_images=10, num_videos=3, seed=0, config=WorldConfig(**SMALL_WORLD), progress=False
    )
    return root


@pytest.mark.spec("teacher.adapter.cached_embeddings_diff")
def test_cached_embeddings_equal_a_full_forward(gate, tiny_teacher_dir) -> None:
    from sam3spec.teacher.loading import load_teacher

    teacher = load_teacher(tiny_teacher_dir, dtype=torch.float32)
    images = torch.randint(
        0, 256, (2, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8
    )
    values = teacher.preprocess(images)
    texts = ["red circle", "large blue star"]
    with torch.no_grad():
        full = teacher.detector(pixel_values=values, **teacher.tokenizer(texts))
    cached = teacher.predict(teacher.encode_image(values), text=texts)
    names = ("pred_logits", "pred_boxes", "pred_masks", "presence_logits", "semantic_seg")
    diff = max(float((getattr(full, n) - getattr(cached, n)).abs().max()) for n in names)
    gate.check("teacher.adapter.cached_embeddings_diff", diff, weights="random", model="tiny Sam3Model")


@pytest.mark.spec("teacher.tokenizer.open_clip_equal")
def test_tokenizer_equals_open_clip(gate) -> None:
    open_clip = pytest.importorskip("open_clip")
    from sam3spec.teacher.tokenizer import Sam3Tokenizer

    prompts = [
        "red circle",
        "Crème brûlée, naïve façade!",
        "a dog!!! (running)... fast?",
        " ".join(["word"] * 40),
    ]
    batch = Sam3Tokenizer()(prompts)
    ours = torch.where(batch["attention_mask"].bool(), batch["input_ids"], 0)
    equal = torch.equal(ours, open_clip.get_tokenizer("ViT-B-32")(prompts, context_length=32))
    gate.check("teacher.tokenizer.open_clip_equal", int(equal), prompts=len(prompts))


def _cache_files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file() and path.name != "cache.json"
    }


@pytest.mark.spec("teacher.cache.resume_equal")
def test_cache_survives_sigkill(gate, tiny_teacher_dir, small_world, tmp_path) -> None:
    base = [
        sys.executable,
        "-m",
        "sam3spec.cli",
        "teacher",
        "cache",
        "--data",
        str(small_world),
        "--teacher",
        str(tiny_teacher_dir),
        *CACHE_ARGS,
    ]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run([*base, "--out", str(reference)], check=True, capture_output=True)
    process = subprocess.Popen(
        [*base, "--out", str(killed), "--pause", "60"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 300
    while (
        not list((killed / "shards").glob("*.json"))
        and process.poll() is None
        and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert sorted(p.name for p in (killed / "shards").glob("*.json")) == ["shard_00000.json"], (
        "not killed mid-run"
    )
    assert not (killed / "index.json").exists()
    subprocess.run([*base, "--out", str(killed)], check=True, capture_output=True)
    equal = _cache_files(killed) == _cache_files(reference)
    gate.check(
        "teacher.cache.resume_equal",
        int(equal),
        shards=json.loads((killed / "index.json").read_text())["num_shards"],
    )


@pytest.fixture(scope="module")
def world_metrics(tmp_path_factory, run_dir) -> dict[str, float]:
    from sam3spec.teacher.loading import load_teacher
    from sam3spec.world import generate_world
    from sam3spec.world.evaluate import evaluate_world
    from sam3spec.world.teacher import shipped_teacher_path

    if not (shipped_teacher_path() / "teacher.json").is_file():
        pytest.skip(
            "no shipped concept-world teacher in sam3spec/world/assets/teacher (run `sam3spec teacher train --ship`)"
        )
    world = (
        run_dir / "world" if run_dir is not None and (run_dir / "world" / "world.json").is_file() else None
    )
    if world is None:
        world = tmp_path_factory.mktemp("eval_world")
        generate_world(world, EVAL_WORLD_IMAGES, 0, EVAL_WORLD_SEED, progress=False)
    teacher = load_teacher(shipped_teacher_path())
    # The shipped teacher's scores carry its calibrated offset (teacher.json, fitted by cgF1 on a
    # world's training split): the report names it next to the figures.
    return {**evaluate_world(teacher, world), "score_offset": teacher.score_offset}


# Evaluating 1,000 held-out images takes minutes on 2 cores: main job only (scripts/main.sh).
@pytest.mark.slow
@pytest.mark.spec("teacher.world.miou", "teacher.world.presence_f1", "teacher.world.cgf1")
@pytest.mark.parametrize(
    ("spec_id", "key"),
    [
        ("teacher.world.miou", "mIoU"),
        ("teacher.world.presence_f1", "presence_f1"),
        ("teacher.world.cgf1", "cgF1"),
    ],
)
def test_world_teacher_quality(gate, world_metrics, spec_id, key) -> None:
    gate.check(
        spec_id,
        world_metrics[key],
        weights="trained (shipped)",
        data="concept world, held-out eval split",
        pairs=int(world_metrics["num_pairs"]),
        instances=int(world_metrics["num_instances"]),
        score_offset=world_metrics["score_offset"],
    )
