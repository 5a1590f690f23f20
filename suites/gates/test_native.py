"""Native gate (``-m native``): the C++ runner in ``native/`` built with CMake against the executorch
wheel; bad inputs give clear errors; (``slow``, they need exported programs) masks and scores of
``sam3spec-run`` match the Python ``executorch.runtime`` predictor on concept-world images, for images
and video, and its latency next to the Python runtime's.

Skipped, with the reason, where there is no CMake or C++ compiler.
"""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest

from sam3spec.config import SEED_PRESET, TINY_PRESET
from sam3spec.native.build import NATIVE_DIR, ToolchainMissing, build_native
from sam3spec.native.parity import (
    Agreement,
    compare,
    python_track,
    read_cli_result,
    run_cli,
    union_prediction,
)

pytestmark = pytest.mark.native
TINY = {"preset": TINY_PRESET, "weights": "random (randomised BN statistics)", "recipe": "xnnpack/fp32"}


@pytest.fixture(scope="module")
def runner():
    try:
        return build_native()
    except ToolchainMissing as error:
        pytest.skip(f"native runner not built: {error}")


def _program(path: Path, methods: dict, metadata: dict | None) -> Path:
    """A small ExecuTorch program (XNNPACK) with ``methods`` and optional constant methods."""
    import torch
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    exported = {
        name: torch.export.export(module.eval(), inputs) for name, (module, inputs) in methods.items()
    }
    edge = to_edge_transform_and_lower(
        exported, partitioner=[XnnpackPartitioner()], constant_methods=metadata
    )
    path.write_bytes(edge.to_executorch().buffer)
    return path


@pytest.fixture(scope="module")
def small_programs(tmp_path_factory):
    """``plain.pte`` (no sam3spec metadata) and ``no_decode.pte`` (metadata + encode_image only)."""
    import torch

    folder = tmp_path_factory.mktemp("programs")
    conv = (torch.nn.Conv2d(3, 4, 3, stride=4), (torch.randn(1, 3, 32, 32),))
    metadata = {
        "image_size": 32,
        "normalization_mean": [0.5] * 3,
        "normalization_std": [0.5] * 3,
        "resize": "letterbox",
        "preset": "test",
    }
    return {
        "plain": _program(folder / "plain.pte", {"forward": conv}, None),
        "no_decode": _program(
            folder / "no_decode.pte", {"encode_image": conv}, {"metadata_json": json.dumps(metadata)}
        ),
    }


def test_cli_targets_match_the_specs():
    """The thresholds sam3spec-run --json judges with are the YAML specs' (they must not drift)."""
    from sam3spec.report.specs import SPECS_DIR, load_specs

    specs = load_specs(SPECS_DIR)
    source = (NATIVE_DIR / "tools" / "sam3spec_run.cpp").read_text()
    targets = re.findall(r'Target k\w+\{"([\w.]+)", "([<>=]+)", ([0-9.]+)\}', source)
    assert len(targets) == 4, targets
    for spec_id, op, value in targets:
        assert spec_id in specs, f"{spec_id} is not a spec"
        assert (specs[spec_id].op, specs[spec_id].value) == (op, float(value)), spec_id


def test_bad_inputs_give_clear_errors(gate, runner, small_programs, tmp_path):
    image = tmp_path / "image.png"
    from PIL import Image

    Image.fromarray(np.full((20, 30, 3), 128, np.uint8)).save(image)
    (tmp_path / "notes.png").write_text("this is not an image\n")
    (tmp_path / "random.pte").write_bytes(np.random.default_rng(0).bytes(4096))
    plain, no_decode = small_programs["plain"], small_programs["no_decode"]
    cases = {  # name: (arguments, exit code, text the message must hold)
        "missing .pte": (
            [tmp_path / "absent.pte", image, "--box", "1,1,5,5"],
            1,
            "absent.pte: no such .pte file",
        ),
        "not a .pte": (
            [tmp_path / "random.pte", image, "--box", "1,1,5,5"],
            1,
            "random.pte: not an ExecuTorch program",
        ),
        "not sam3spec": ([plain, image, "--box", "1,1,5,5"], 1, "plain.pte: not exported by sam3spec"),
        "method missing": (
            [no_decode, image, "--box", "1,1,5,5"],
            1,
            "no_decode.pte: has no method 'decode'",
        ),
        "missing image": (
            [no_decode, tmp_path / "absent.png", "--box", "1,1,5,5"],
            1,
            "absent.png: no such image file",
        ),
        "non-image": (
            [no_decode, tmp_path / "notes.png", "--box", "1,1,5,5"],
            1,
            "notes.png: not a readable image",
        ),
        "empty prompt": ([no_decode, image], 2, "empty prompt"),
        "bad box": ([no_decode, image, "--box", "1,1,x,5"], 2, "--box: not a number list"),
    }
    failures = []
    for name, (arguments, code, text) in cases.items():
        done = run_cli(runner.binary, *arguments, timeout=120)
        if done.returncode != code or text not in done.stderr:
            failures.append(f"{name}: exit {done.returncode}, stderr {done.stderr.strip()[-300:]!r}")
    gate.check(
        "native.bad_inputs_clear_errors",
        float(not failures),
        cases=len(cases),
        build_s=round(runner.seconds, 1),
        note="; ".join(failures) or None,
    )


# ---- slow: exported programs --------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_program(run_dir):
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.pipeline import companion_paths
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.world.inputs import WorldExportInputs

    pte, _ = cached_export(
        TINY_PRESET,
        get_export_recipe("xnnpack", "fp32"),
        "tiny",
        inputs=WorldExportInputs(),
        random_weights=True,
        run_dir=run_dir,
    )
    return pte, companion_paths(pte)["text_table"]


@pytest.fixture(scope="module")
def world_images(tmp_path_factory):
    """Concept-world images as PNG (lossless, so C++ and PIL see the same pixels): as generated, a wide
    crop (letterbox padding) and a small crop (upscaled: the resize's other branch)."""
    from PIL import Image

    from sam3spec.world import generate_world

    folder = tmp_path_factory.mktemp("native-world")
    generate_world(folder / "world", num_images=4, num_videos=0, seed=5, progress=False)
    sources = sorted((folder / "world" / "sa1b").rglob("*.jpg"))
    images = {}
    for index, source in enumerate(sources):
        rgb = Image.open(source).convert("RGB")
        width, height = rgb.size
        variants = {
            "full": rgb,
            "wide": rgb.crop((0, 0, width, height * 2 // 3)),
            "small": rgb.crop((10, 20, 70, 110)),
        }
        for name, image in variants.items():
            path = folder / f"{index}-{name}.png"
            image.save(path)
            images[path.stem] = path
    return images


@pytest.mark.slow
def test_image_parity(gate, runner, tiny_program, world_images, tmp_path):
    from PIL import Image

    from sam3spec.data.transforms import Normalization, ResizeNormalize, TransformConfig
    from sam3spec.export.runtime import PtePredictor
    from sam3spec.predictor import image_to_tensor
    from sam3spec.world.phrases import all_phrases

    pte, table = tiny_program
    predictor = PtePredictor(pte, text_table=table)
    side = predictor.model.shapes.image_size
    transform = ResizeNormalize(TransformConfig(side, "letterbox", Normalization.IMAGENET))
    phrases = all_phrases()
    agreement, pixel_diff, cases = Agreement(), 0.0, 0
    for stem, path in sorted(world_images.items())[:6]:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        height, width = rgb.shape[:2]
        predictor.set_image(rgb)
        reference_pixels = transform({"image": image_to_tensor(rgb)})["image"].numpy()
        prompts = {
            "text": (["--prompt", phrases[0]], {"text": phrases[0]}),
            "text2": (["--prompt", phrases[9]], {"text": phrases[9]}),
            "box": (
                ["--box", f"{width * 0.2:.1f},{height * 0.2:.1f},{width * 0.7:.1f},{height * 0.8:.1f}"],
                {
                    "boxes": [
                        [
                            float(f"{width * 0.2:.1f}"),
                            float(f"{height * 0.2:.1f}"),
                            float(f"{width * 0.7:.1f}"),
                            float(f"{height * 0.8:.1f}"),
                        ]
                    ]
                },
            ),
            "points": (
                ["--point", f"{width // 2},{height // 2}", "--point", f"{width // 4},{height // 4},0"],
                {"points": [[width // 2, height // 2], [width // 4, height // 4]], "point_labels": [1, 0]},
            ),
        }
        for name, (arguments, kwargs) in prompts.items():
            out = tmp_path / f"{stem}-{name}"
            done = run_cli(
                runner.binary,
                pte,
                path,
                *arguments,
                "--threshold",
                "0",
                "--out-dir",
                out,
                "--save-pixels",
                out / "pixels.bin",
            )
            assert done.returncode == 0, done.stderr[-2000:]
            pixels = np.fromfile(out / "pixels.bin", dtype=np.float32).reshape(reference_pixels.shape)
            pixel_diff = max(pixel_diff, float(np.abs(pixels - reference_pixels).max()))
            compare(
                predictor.predict(threshold=0.0, **kwargs),
                read_cli_result(out)[0],
                agreement,
                f"{stem}/{name}",
            )
            cases += 1
    assert predictor.model.text_lookups > 0, "the Python side did not use the text table"
    assert not agreement.count_mismatches, agreement.count_mismatches
    context = {**TINY, "cases": cases, "instances": agreement.instances}
    gate.check("native.preprocess_abs_diff", pixel_diff, **context)
    gate.check(
        "native.parity_score_abs_diff",
        agreement.score_diff,
        **context,
        note=f"presence max diff {agreement.presence_diff:.2e}, box max diff {agreement.box_diff:.2e} px",
    )
    gate.check("native.parity_mask_iou", agreement.mask_iou, **context)


@pytest.mark.slow
def test_unknown_phrase_and_token_ids(runner, tiny_program, world_images, tmp_path):
    pte, _ = tiny_program
    image = next(iter(world_images.values()))
    done = run_cli(runner.binary, pte, image, "--prompt", "purple unicorn")
    assert done.returncode == 1 and "'purple unicorn' is not in the text table" in done.stderr, done.stderr
    done = run_cli(
        runner.binary, pte, image, "--token-ids", "49406,736,7117,49407", "--out", tmp_path / "m.png"
    )
    assert done.returncode == 0 and (tmp_path / "m.png").is_file(), done.stderr[-2000:]


@pytest.mark.slow
def test_video_parity(gate, runner, tiny_program, world_images, tmp_path):
    from PIL import Image

    from sam3spec.export.runtime import PtePredictor
    from sam3spec.world.phrases import all_phrases

    pte, table = tiny_program
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    sources = [path for stem, path in sorted(world_images.items()) if stem.endswith("-full")]
    for index, source in enumerate(sources * 2):  # 8 frames: the buffer fills up
        (frames_dir / f"{index:04d}.png").write_bytes(source.read_bytes())
    phrase = all_phrases()[0]
    done = run_cli(
        runner.binary,
        pte,
        "--video",
        frames_dir,
        "--prompt",
        phrase,
        "--threshold",
        "0",
        "--out-dir",
        tmp_path / "out",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    native = read_cli_result(tmp_path / "out")
    frames = [np.asarray(Image.open(path).convert("RGB")) for path in sorted(frames_dir.glob("*.png"))]
    reference = python_track(PtePredictor(pte, text_table=table), frames, phrase, 0.0)
    assert len(native) == len(reference) == len(frames)
    agreement = Agreement()
    for index, (ref, nat) in enumerate(zip(reference, native, strict=True)):
        merged = union_prediction(ref)
        agreement.add_masks(merged.masks[0], nat.masks[0])
        agreement.score_diff = max(
            agreement.score_diff, float(np.abs(np.sort(ref.scores) - np.sort(nat.scores)).max())
        )
        assert len(ref.scores) == len(nat.scores), f"frame {index}"
    gate.check(
        "native.track_parity_mask_iou",
        agreement.mask_iou,
        **TINY,
        frames=len(frames),
        note=f"score max diff {agreement.score_diff:.2e}",
    )


def _side_by_side(
    binary: Path, pte: Path, image: Path, repeats: int, rounds: int, threads: int = 1
) -> tuple[float, float]:
    """Median encode_image + decode (ms) of the C++ runner and of the Python runtime: fresh processes,
    alternating, the same thread-pool size (a shared machine's load hits both sides alike)."""
    from sam3spec.native.bench import native, python_worker

    cpp, python = [], []
    for _ in range(rounds):
        cpp.append(native(str(binary), str(pte), str(image), repeats, threads)["image_path"])
        python.append(python_worker(str(pte), repeats, threads)["image_path"])
    return statistics.median(cpp), statistics.median(python)


@pytest.mark.slow
def test_latency_next_to_python(gate, runner, tiny_program, world_images):
    pte, _ = tiny_program
    image = next(iter(world_images.values()))
    native_ms, python_ms = _side_by_side(runner.binary, pte, image, repeats=20, rounds=3)
    gate.check(
        "native.latency_ratio_vs_python",
        native_ms / python_ms,
        **TINY,
        threads=1,
        note=f"C++ {native_ms:.2f} ms, Python executorch.runtime {python_ms:.2f} ms "
        "(median of 3 alternating rounds of 20)",
    )


@pytest.mark.slow
def test_seed_latency_and_results_json(gate, runner, run_dir, world_images, tmp_path):
    """The seed preset (504 px, XNNPACK 8da4w): the runner's --json ingests into the result store."""
    from sam3spec.export.artifacts import cached_export
    from sam3spec.export.recipes import get_export_recipe
    from sam3spec.report.results import ResultStore
    from sam3spec.world.inputs import WorldExportInputs

    pte, _ = cached_export(
        SEED_PRESET,
        get_export_recipe("xnnpack", "8da4w"),
        "seed",
        inputs=WorldExportInputs(),
        random_weights=True,
        run_dir=run_dir,
    )
    image = next(iter(world_images.values()))
    results = tmp_path / "native.json"
    done = run_cli(runner.binary, pte, image, "--box", "10,10,60,60", "--repeat", "5", "--json", results)
    assert done.returncode == 0, done.stderr[-2000:]
    store = ResultStore()
    assert store.ingest(results) == 2
    _, python_ms = _side_by_side(runner.binary, pte, image, repeats=5, rounds=1, threads=2)
    context = {
        "preset": SEED_PRESET,
        "weights": "random (randomised BN statistics)",
        "recipe": "xnnpack/8da4w",
    }
    latency = store.results["native.cpu_image_latency_ms"].measured
    gate.check(
        "native.cpu_image_latency_ms",
        latency,
        **context,
        note=f"Python executorch.runtime, same program, same run: {python_ms:.1f} ms",
    )
    gate.check("native.cpu_peak_rss_mb", store.results["native.cpu_peak_rss_mb"].measured, **context)
