"""Eager image-path benchmark of a student preset, one resolution, in its own process.

    python -m sam3spec.bench.image --preset efficientsam3-repvit_m2_3-mobileclip_s1 --resolution 504

Times ``encode_image`` + ``encode_prompt`` (text) + ``decode`` at batch 1 (fp32, eval, no grad,
random weights, backbone re-parameterised as deployed) and prints one JSON line:
``{"preset", "resolution", "threads", "median_ms", "min_ms", "mean_ms", "repeats",
"baseline_rss_mb", "peak_rss_mb"}``. ``baseline_rss_mb`` is the RSS after imports and model
construction; ``peak_rss_mb`` the process's high-water mark (libtorch alone is ~0.7 GB).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from sam3spec.bench.measure import current_rss_mb, peak_rss_mb, time_callable


@torch.no_grad()
def image_path(model: torch.nn.Module, inputs: dict[str, torch.Tensor]) -> None:
    """One text-prompted image path: ``encode_image`` + ``encode_prompt`` + ``decode``."""
    features = model.encode_image(inputs["pixel_values"])
    tokens, mask = model.encode_prompt(input_ids=inputs["input_ids"], image_features=features)
    model.decode(features, tokens, mask)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", required=True)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--unfused", action="store_true", help="keep the training-time backbone branches")
    args = parser.parse_args(argv)

    from sam3spec.info import example_inputs
    from sam3spec.models.build import build_student

    model = build_student(args.preset).eval()
    if not args.unfused:
        model.reparameterize()
    inputs = example_inputs(model, args.resolution)
    baseline = current_rss_mb()

    stats = time_callable(lambda: image_path(model, inputs), warmup=args.warmup, repeats=args.repeats)
    print(
        json.dumps(
            {
                "preset": args.preset,
                "resolution": args.resolution,
                "threads": torch.get_num_threads(),
                "fused": not args.unfused,
                **stats,
                "baseline_rss_mb": baseline,
                "peak_rss_mb": peak_rss_mb(),
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
