"""Time methods of a ``.pte`` (or the eager float student) in a fresh process; print one JSON line.

    python -m sam3spec.bench.pte_worker --pte model.pte --methods encode_image,decode
    python -m sam3spec.bench.pte_worker --eager efficientsam3-repvit_m2_3-mobileclip_s1 --methods encode_image,decode

Run by :func:`sam3spec.bench.pte.benchmark` through :func:`sam3spec.bench.measure.run_isolated`
so the peak RSS is this workload's alone. Inputs are synthetic (random normalised pixels, a fixed
4-token prompt, one point), so no tokenizer is imported. ``image_path`` = ``encode_image`` + ``decode``.
Printed: per method ``{median_ms, min_ms, mean_ms, repeats}``, ``baseline_rss_mb`` (after
imports, before loading the model), ``loaded_rss_mb`` (after loading), ``peak_rss_mb``,
``threads`` (libtorch) and, for a ``.pte``, ``executorch_threads`` (XNNPACK's pool, set equal).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence

import torch

from sam3spec.bench.measure import current_rss_mb, peak_rss_mb, time_callable

PROMPT_IDS = (49406, 320, 321, 49407)


def _inputs(image_size: int, context_length: int, hidden: int, shapes, level_side: int) -> dict[str, tuple]:
    from sam3spec.export.shapes import padded_prompt

    generator = torch.Generator().manual_seed(0)
    pixels = torch.randn(1, 3, image_size, image_size, generator=generator)
    ids = torch.zeros(1, context_length, dtype=torch.long)
    ids[0, : len(PROMPT_IDS)] = torch.tensor(PROMPT_IDS)
    geometry = padded_prompt(shapes, points=[[0.5, 0.5]])
    context = torch.randn(1, shapes.memory_frames, hidden, level_side, level_side, generator=generator)
    valid = torch.ones(1, shapes.memory_frames, dtype=torch.bool)
    return {"pixels": (pixels,), "ids": (ids,), "geometry": geometry, "context": (context, valid)}


def match_executorch_threads() -> int:
    """Size ExecuTorch's threadpool (XNNPACK's threads) to ``torch.get_num_threads()``; returns it.

    The bindings size their pool from cpuinfo (every core: 2 here) whatever ``OMP_NUM_THREADS``
    says, so without this a ".pte vs eager" ratio compares 2 XNNPACK threads with 1 libtorch
    thread. Called before any program is loaded (the reset is unsafe while one runs).
    """
    from executorch.extension.pybindings import portable_lib

    threads = torch.get_num_threads()
    if portable_lib._threadpool_get_thread_count() != threads:
        portable_lib._unsafe_reset_threadpool(threads)
    return int(portable_lib._threadpool_get_thread_count())


def bench_pte(path: str, methods: Sequence[str], warmup: int, repeats: int) -> dict:
    import executorch.kernels.quantized  # noqa: F401
    from executorch.runtime import Runtime

    from sam3spec.export.runtime import PteProgram
    from sam3spec.export.shapes import level_side

    Runtime.get()
    executorch_threads = match_executorch_threads()
    baseline = current_rss_mb()  # after torch + ExecuTorch bindings, before the program
    program = PteProgram(path)
    meta = program.metadata
    shapes = program.shapes
    side = level_side(meta["image_size"], meta["memory_level"])
    data = _inputs(meta["image_size"], meta["context_length"], meta["hidden"], shapes, side)
    needed = {"encode_image", "decode"} if "image_path" in methods else set()
    for name in sorted(set(methods) - {"image_path"} | needed):
        program.method(name)
    loaded = current_rss_mb()
    levels = tuple(program.run("encode_image", *data["pixels"]))
    # Synthetic text states (decode's cost does not depend on them), so measuring the image path
    # does not load encode_text.
    text_mask = torch.ones(1, meta["context_length"], dtype=torch.bool)
    text_mask[0, : len(PROMPT_IDS)] = False
    text = (torch.randn(1, meta["context_length"], meta["hidden"]), text_mask)
    calls = {
        "encode_image": lambda: program.run("encode_image", *data["pixels"]),
        "encode_text": lambda: program.run("encode_text", *data["ids"]),
        "decode": lambda: program.run("decode", *levels, *text, *data["geometry"]),
        "track": lambda: program.run("track", *data["pixels"], *text, *data["geometry"], *data["context"]),
        "image_path": lambda: program.run(
            "decode", *program.run("encode_image", *data["pixels"]), *text, *data["geometry"]
        ),
    }
    timings = {name: time_callable(calls[name], warmup=warmup, repeats=repeats) for name in methods}
    return {
        "kind": "pte",
        "path": path,
        "executorch_threads": executorch_threads,
        "timings": timings,
        "baseline_rss_mb": baseline,
        "loaded_rss_mb": loaded,
    }


def bench_eager(source: str, methods: Sequence[str], warmup: int, repeats: int, random_bn: bool) -> dict:
    from pathlib import Path

    from sam3spec.export.shapes import ExportShapes, padded_prompt
    from sam3spec.models.build import build_student
    from sam3spec.models.image_encoder import randomise_batch_norms

    baseline = current_rss_mb()
    if Path(source).is_dir():
        from sam3spec.checkpoint import load_student

        model = load_student(source, verbose=False)
    else:
        model = build_student(source)
        if random_bn:
            randomise_batch_norms(model)
    model = model.eval().reparameterize()
    loaded = current_rss_mb()
    config = model.config
    shapes = ExportShapes.of(model)
    pixels = torch.randn(
        1, 3, config.image_size, config.image_size, generator=torch.Generator().manual_seed(0)
    )
    ids = torch.zeros(1, config.text.context_length, dtype=torch.long)
    ids[0, : len(PROMPT_IDS)] = torch.tensor(PROMPT_IDS)
    points, point_labels, _, _ = padded_prompt(shapes, points=[[0.5, 0.5]])
    with torch.no_grad():
        features = model.encode_image(pixels)
        prompt, mask = model.encode_prompt(
            input_ids=ids, points=points, point_labels=point_labels, image_features=features
        )

    @torch.no_grad()
    def image_path() -> None:
        image_features = model.encode_image(pixels)
        model.decode(image_features, prompt, mask)

    calls = {
        "encode_image": torch.no_grad()(lambda: model.encode_image(pixels)),
        "encode_text": torch.no_grad()(lambda: model.text_encoder(ids)),
        "decode": torch.no_grad()(lambda: model.decode(features, prompt, mask)),
        "image_path": image_path,
    }
    timings = {
        name: time_callable(calls[name], warmup=warmup, repeats=repeats) for name in methods if name in calls
    }
    return {
        "kind": "eager",
        "source": source,
        "timings": timings,
        "baseline_rss_mb": baseline,
        "loaded_rss_mb": loaded,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--pte")
    what.add_argument("--eager", help="preset name (random weights) or checkpoint directory")
    parser.add_argument("--methods", default="image_path")
    parser.add_argument("--threads", type=int, help="torch and ExecuTorch threads (default: torch's)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--random-bn", action="store_true", help="eager preset: randomise BatchNorm statistics"
    )
    args = parser.parse_args(argv)
    methods = [name for name in args.methods.split(",") if name]
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.pte:
        result = bench_pte(args.pte, methods, args.warmup, args.repeats)
    else:
        result = bench_eager(args.eager, methods, args.warmup, args.repeats, args.random_bn)
    result.update(threads=torch.get_num_threads(), peak_rss_mb=peak_rss_mb(), methods=methods)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
