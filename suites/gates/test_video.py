"""Video gate (``-m video``): fixed-size memory over a 1,000-frame stream, the memory's trainable
parameters, J&F with vs without memory (``slow``: needs a trained tiny student, by default
``runs/concept-world/phase2/final`` or ``phase1/final``, or the folder in ``SAM3SPEC_VIDEO_STUDENT``),
per-frame cost of ``VideoPredictor.step`` vs one image forward (``slow``: a timing), phone FPS
(device only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from sam3spec.config import SEED_PRESET, TINY_PRESET, get_preset, override
from sam3spec.distill.stages import set_trainable
from sam3spec.models.build import build_student
from sam3spec.video.stage import VIDEO
from sam3spec.world.stages import VIDEO_WORLD

pytestmark = pytest.mark.video
ROOT = Path(__file__).resolve().parents[2]
TRAINED = [ROOT / "runs" / "concept-world" / stage / "final" for stage in ("phase2", "phase1")]
STREAM_SIDE = 64  # the tiny preset at 64 px: 1,000 frames in ~10 s on one core


@pytest.fixture(scope="module")
def open_tiny():
    """A random tiny student (64 px) with an open memory gate, so the memory path really runs."""
    torch.manual_seed(0)
    student = build_student(override(get_preset(TINY_PRESET), {"image_size": STREAM_SIDE})).eval()
    with torch.no_grad():
        student.memory_attention.gate.fill_(0.5)
    return student


@pytest.mark.spec("video.memory.constant")
def test_memory_constant_over_1000_frames(gate, open_tiny):
    from sam3spec.bench.video import stream

    result = stream(open_tiny, 1000, STREAM_SIDE, checkpoints=(1, 100, 1000))
    shapes = result["state_shapes"]
    distinct = {repr(shape) for shape in shapes.values()}
    memory = shapes[1000]["memory"]
    assert memory == [1, open_tiny.config.memory.num_latents, open_tiny.config.hidden]
    gate.check(
        "video.memory.constant",
        len(distinct),
        preset=TINY_PRESET,
        weights="random",
        frames=1000,
        note=f"state at frames 1/100/1000: {shapes[1]} ({result['state_bytes']} bytes); "
        f"RSS MB {result['rss_mb']}",
    )


@pytest.mark.spec("video.trainable_params")
def test_only_the_memory_trains_on_the_seed_preset(gate):
    torch.manual_seed(0)
    student = build_student(SEED_PRESET)
    names = set(set_trainable(student, VIDEO.stage))
    trainable = sum(p.numel() for n, p in student.named_parameters() if p.requires_grad)
    frozen_wrong = [
        n
        for n, p in student.named_parameters()
        if p.requires_grad != n.startswith(("memory_resampler.", "memory_attention."))
    ]
    assert not frozen_wrong, f"wrongly (un)frozen: {frozen_wrong[:5]}"
    assert names and all(n.startswith(("memory_resampler.", "memory_attention.")) for n in names)
    counts = student.parameter_counts()
    gate.check(
        "video.trainable_params",
        trainable,
        preset=SEED_PRESET,
        weights="random",
        note=f"perceiver {counts['perceiver']:,} + memory_attention {counts['memory_attention']:,}; "
        f"{counts['total'] - trainable:,} frozen",
    )


@pytest.mark.slow
@pytest.mark.spec("video.jf_gain")
@pytest.mark.spec("video.reentry_gain_margin")
def test_memory_beats_no_memory_on_the_video_eval_split(gate, tmp_path_factory):
    from sam3spec.distill import RunOptions, distill
    from sam3spec.eval.video import evaluate_memory
    from sam3spec.world import WorldConfig, generate_world
    from sam3spec.world.evaluate import world_video_split
    from sam3spec.world.manifest import object_phrases

    candidates = (
        [Path(os.environ["SAM3SPEC_VIDEO_STUDENT"])] if os.environ.get("SAM3SPEC_VIDEO_STUDENT") else TRAINED
    )
    trained = next((path.resolve() for path in candidates if (path / "model.safetensors").is_file()), None)
    if trained is None:
        reason = (
            f"no trained tiny student ({', '.join(str(p) for p in candidates)} absent; "
            "produce it with `sam3spec train pipeline --out runs/concept-world`): memory on a random student is noise"
        )
        gate.not_measured("video.jf_gain", reason)
        gate.not_measured("video.reentry_gain_margin", reason)
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("video_world")
    # Half the videos held out (36 val videos, ~100 re-entry frames): with the default 20% the
    # split had 8 videos and 12 re-appearances, too few to say where memory helps.
    generate_world(root / "world", 4, 72, 11, WorldConfig(eval_fraction=0.5), progress=False)
    summary = distill(
        VIDEO_WORLD,
        RunOptions(
            root / "world", root / "run", init=trained, progress=False, phrases=object_phrases(root / "world")
        ),
    )
    assert summary["frozen_unchanged"]
    from sam3spec.checkpoint import load_student
    from sam3spec.video.checkpoint import load_memory

    student = load_student(trained)
    load_memory(student, root / "run" / "final")
    result = evaluate_memory(student, world_video_split(root / "world"), root / "eval")
    figures = result.as_dict()
    common = dict(preset=TINY_PRESET, weights="trained", data="concept-world")
    jf_note = (
        f"J&F {figures['with_memory']['J&F']:.2f} with vs {figures['without_memory']['J&F']:.2f} without "
        f"({figures['with_memory']['num_objects']} objects); student {trained}, "
        f"{summary['steps']} memory steps, gate {summary['gate']:.3f}"
    )
    reentry_note = (
        f"J gain {result.reentry_gain:+.1f} after re-entry vs {result.visible_gain:+.1f} on other "
        f"visible frames; J with vs without memory by frame: {result.describe()}"
    )
    gate.check_each(
        ("video.jf_gain", result.gain, dict(common, note=jf_note)),
        ("video.reentry_gain_margin", result.reentry_margin, dict(common, note=reentry_note)),
    )


@pytest.mark.slow
@pytest.mark.spec("video.step_cost_ratio")
def test_step_cost_vs_image_forward(gate):
    from sam3spec.bench.video import cost_ratio

    torch.manual_seed(0)
    student = build_student(TINY_PRESET).eval()
    with torch.no_grad():
        student.memory_attention.gate.fill_(0.5)
    figures = cost_ratio(student, student.config.image_size, repeats=30)
    gate.check(
        "video.step_cost_ratio",
        figures["ratio"],
        preset=TINY_PRESET,
        weights="random",
        threads=torch.get_num_threads(),
        resolution=student.config.image_size,
        note=f"step {figures['step_ms']} ms vs image forward {figures['image_forward_ms']} ms (median of 30, interleaved)",
    )


@pytest.mark.spec("video.fps_phone")
def test_phone_fps_needs_a_device(gate):
    gate.not_measured(
        "video.fps_phone",
        "needs a phone run of the exported track method (native runner); "
        "none ingested here (pass --ingest with a device results JSON)",
    )
