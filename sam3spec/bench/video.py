"""Video streaming benchmark: RSS and state size while streaming, and per-frame cost of
``VideoPredictor.step`` vs one image forward of the same preset, measured side by side.

    python -m sam3spec.bench.video --preset efficientsam3-tiny --frames 1000 --threads 1

Frames are random RGB images (content does not change the cost of a dense model); the prompt is a
text phrase, encoded once by the predictor as in real use. The image forward is
``student(pixels, input_ids)`` (encoders + decoder, text included: what an image call costs). Both
are timed interleaved on the same frames after a warm-up; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from sam3spec.bench.measure import current_rss_mb


def stream(student, frames: int, side: int, checkpoints=(1, 10, 100, 1000), seed: int = 0) -> dict:
    """Stream ``frames`` random frames through a VideoPredictor; RSS (MB) and state tensor sizes at
    the given frame counts."""
    from sam3spec.video.predictor import VideoPredictor

    predictor = VideoPredictor(student, threshold=0.5)
    predictor.start(text="red circle")
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    rss, sizes = {}, {}
    for index in range(1, frames + 1):
        predictor.step(np.roll(image, index, axis=1))  # a moving picture, same cost
        if index in checkpoints:
            rss[index] = round(current_rss_mb(), 1)
            sizes[index] = {k: list(v.shape) for k, v in predictor.state.tensors().items()}
    return {"rss_mb": rss, "state_shapes": sizes, "state_bytes": predictor.state.nbytes()}


def cost_ratio(student, side: int, repeats: int = 30, warmup: int = 5) -> dict:
    """Median ms of ``VideoPredictor.step`` and of one image forward, interleaved."""
    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.models.text_encoder import Tokenizer
    from sam3spec.predictor import image_to_tensor
    from sam3spec.video.predictor import VideoPredictor

    predictor = VideoPredictor(student, threshold=0.5)
    predictor.start(text="red circle")
    ids = Tokenizer(student.config.text)(["red circle"])
    transform = ResizeNormalize(
        TransformConfig(student.config.image_size, "letterbox", Normalization.IMAGENET)
    )
    rng = np.random.default_rng(1)
    steps, images = [], []
    for index in range(warmup + repeats):
        frame = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
        start = time.perf_counter()
        predictor.step(frame)
        step_ms = 1000 * (time.perf_counter() - start)
        start = time.perf_counter()
        with torch.no_grad():
            pixels = transform({"image": image_to_tensor(frame)})["image"][None]
            student(pixels, ids)
        image_ms = 1000 * (time.perf_counter() - start)
        if index >= warmup:
            steps.append(step_ms)
            images.append(image_ms)
    step, image = statistics.median(steps), statistics.median(images)
    return {
        "step_ms": round(step, 2),
        "image_forward_ms": round(image, 2),
        "ratio": round(step / image, 3),
        "repeats": repeats,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="efficientsam3-tiny")
    parser.add_argument("--frames", type=int, default=1000)
    parser.add_argument(
        "--size", type=int, default=None, help="frame side and model resolution (default: preset's)"
    )
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", default=None, help="also write the results here")
    args = parser.parse_args(argv)
    from sam3spec.config import get_preset, override
    from sam3spec.models.build import build_student

    if args.threads:
        torch.set_num_threads(args.threads)
    config = get_preset(args.preset)
    if args.size:
        config = override(config, {"image_size": args.size})
    torch.manual_seed(0)
    student = build_student(config).eval()
    with torch.no_grad():
        student.memory_attention.gate.fill_(0.5)  # an open gate: the memory path really runs
    side = student.config.image_size
    result = {
        "preset": args.preset,
        "side": side,
        "threads": torch.get_num_threads(),
        "cost": cost_ratio(student, side, args.repeats),
        "stream": stream(
            student, args.frames, side, tuple(c for c in (1, 10, 100, 1000) if c <= args.frames)
        ),
    }
    print(json.dumps(result, indent=1))
    if args.json:
        from pathlib import Path

        Path(args.json).write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
