"""The C++ runner next to the Python ``executorch.runtime`` on one ``.pte``, same machine, same run.

``python -m sam3spec.native.bench --pte model.pte --image img.png --threads 1 2`` alternates
fresh processes of ``sam3spec-run --repeat N`` and of a Python worker that times the same methods
(``encode_image`` then ``decode`` with a one-box prompt) with the same thread-pool size, and prints a
markdown table of medians (encode_image, decode, both) and peak RSS. Alternating rounds spread a
shared machine's load over both sides.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

from sam3spec.bench.measure import peak_rss_mb


def worker(pte: str, repeats: int, threads: int) -> dict[str, float]:
    """Median encode_image / decode / both (ms) and peak RSS (MB) through executorch.runtime."""
    import time

    import torch
    from executorch.extension.pybindings.portable_lib import _unsafe_reset_threadpool

    from sam3spec.export.runtime import PteModel, PteProgram

    _unsafe_reset_threadpool(threads)
    program = PteProgram(pte)
    model = PteModel(program)
    side = program.shapes.image_size
    pixels = torch.randn(1, 3, side, side)
    (tokens, mask), geometry = model.encode_prompt(
        boxes=torch.tensor([[[0.2, 0.2, 0.7, 0.8]]]), box_labels=torch.ones(1, 1, dtype=torch.long)
    )
    encode, decode = [], []
    for index in range(repeats + 1):
        start = time.perf_counter()
        levels = program.run("encode_image", pixels)
        middle = time.perf_counter()
        program.run("decode", *levels, tokens, mask, *geometry)
        end = time.perf_counter()
        if index:  # the first run is a warm-up
            encode.append((middle - start) * 1e3)
            decode.append((end - middle) * 1e3)
    both = [a + b for a, b in zip(encode, decode, strict=True)]
    peak = peak_rss_mb()  # VmHWM on Linux: this process image only (ru_maxrss survives execve)
    return {
        "encode_image": statistics.median(encode),
        "decode": statistics.median(decode),
        "image_path": statistics.median(both),
        "peak_rss_mb": peak,
    }


def python_worker(pte: str, repeats: int, threads: int) -> dict[str, float]:
    """:func:`worker` in a fresh Python process (its own thread pool and peak RSS)."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sam3spec.native.bench",
            "--worker",
            "--pte",
            pte,
            "--image",
            "-",
            "--threads",
            str(threads),
            "--repeats",
            str(repeats),
        ],
        capture_output=True,
        text=True,
        errors="replace",
        cwd=Path(__file__).resolve().parents[2],
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def native(binary: str, pte: str, image: str, repeats: int, threads: int) -> dict[str, float]:
    done = subprocess.run(
        [binary, pte, image, "--box", "10,10,60,60", "--repeat", str(repeats), "--threads", str(threads)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    stages = re.search(r"encode_image ([0-9.]+) ms, decode ([0-9.]+) ms", done.stdout)
    total = re.search(
        r"image path \(encode_image \+ decode\): ([0-9.]+) ms median; peak RSS ([0-9.]+) MB", done.stdout
    )
    if not stages or not total:
        raise RuntimeError(f"unexpected runner output:\n{done.stdout}")
    return {
        "encode_image": float(stages.group(1)),
        "decode": float(stages.group(2)),
        "image_path": float(total.group(1)),
        "peak_rss_mb": float(total.group(2)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pte", required=True)
    parser.add_argument(
        "--image", required=True, help="any RGB image (the input is letterboxed to the program's size)"
    )
    parser.add_argument("--binary", default=None, help="sam3spec-run (default: build native/ into the cache)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.pte, args.repeats, args.threads[0])))
        return 0
    if args.binary is None:
        from sam3spec.native.build import build_native

        args.binary = str(build_native().binary)
    rows = []
    for threads in args.threads:
        figures: dict[str, list[dict[str, float]]] = {"C++ sam3spec-run": [], "Python executorch.runtime": []}
        for _ in range(args.rounds):
            figures["C++ sam3spec-run"].append(
                native(args.binary, args.pte, args.image, args.repeats, threads)
            )
            figures["Python executorch.runtime"].append(python_worker(args.pte, args.repeats, threads))
        for name, runs in figures.items():
            med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
            rows.append(
                f"| {name} | {threads} | {med['encode_image']:.0f} ms | {med['decode']:.0f} ms | "
                f"{med['image_path']:.0f} ms | {med['peak_rss_mb']:.0f} MB |"
            )
    print("| runner | threads | encode_image | decode | encode_image + decode | peak RSS (process) |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
