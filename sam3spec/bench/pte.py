"""``sam3spec bench --pte``: per-method latency, peak RSS, bytes per method and delegated share.

Latency and memory are measured in fresh processes (:mod:`sam3spec.bench.pte_worker` through
:func:`sam3spec.bench.measure.run_isolated`): one for the image path alone (``encode_image`` +
``decode``: its peak RSS is the app's image-path footprint, including libtorch and the ExecuTorch
bindings that any Python process carries), one for every method. With ``eager`` the float
student's image path is timed the same way, in the same run, for the speed ratio. Bytes per
method come from the ``.pte`` itself; the delegated share from the manifest written by
``sam3spec export`` (``model.json``), which holds ExecuTorch's delegation info.

The ExecuTorch side (:mod:`sam3spec.export`) is imported inside :func:`benchmark`, so this module
stays importable without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sam3spec.bench.measure import run_isolated


def benchmark(
    pte: str | Path,
    warmup: int = 2,
    repeats: int = 5,
    eager: str | None = None,
    random_bn: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """Measure a ``.pte``; see the module docstring.

    Args:
        pte: the program.
        warmup: untimed runs per method.
        repeats: timed runs per method (the median is reported).
        eager: a preset name or checkpoint directory to time the eager float image path beside it.
        random_bn: for an eager preset, randomise BatchNorm statistics (as the export did).
        threads: libtorch and ExecuTorch (XNNPACK) threads in the workers (default: libtorch's
            default, e.g. ``OMP_NUM_THREADS``; the ExecuTorch pool is set to the same number).

    Returns:
        A JSON-ready dict: ``sizes``, ``delegation`` (or None), ``image_path``, ``all_methods``,
        ``eager`` (or None) and ``speedup`` (eager image path / .pte image path).
    """
    from sam3spec.export.pipeline import companion_paths
    from sam3spec.export.profile import pte_breakdown
    from sam3spec.export.runtime import PteProgram

    # Absolute paths: the workers run with the repository as their working directory.
    pte = Path(pte).resolve()
    if eager is not None and Path(eager).exists():
        eager = str(Path(eager).resolve())
    program = PteProgram(pte)
    methods = [
        name for name in ("encode_image", "encode_text", "decode", "track") if name in program.method_names
    ]
    manifest_path = companion_paths(pte)["manifest"]
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else None
    common = ["--warmup", str(warmup), "--repeats", str(repeats)]
    if threads is not None:
        common += ["--threads", str(threads)]
    module = "sam3spec.bench.pte_worker"
    image_path = run_isolated(module, ["--pte", str(pte), "--methods", "image_path", *common])
    all_methods = run_isolated(module, ["--pte", str(pte), "--methods", ",".join(methods), *common])
    eager_result = None
    if eager is not None:
        flags = ["--random-bn"] if random_bn else []
        eager_result = run_isolated(
            module, ["--eager", eager, "--methods", "image_path,encode_text", *common, *flags]
        )
    result: dict[str, Any] = {
        "pte": str(pte),
        "metadata": program.metadata,
        "sizes": pte_breakdown(pte).to_json(),
        "delegation": None if manifest is None else manifest.get("delegation"),
        "parity": None if manifest is None else manifest.get("parity"),
        "image_path": image_path,
        "all_methods": all_methods,
        "eager": eager_result,
    }
    if eager_result is not None:
        result["speedup"] = (
            eager_result["timings"]["image_path"]["median_ms"]
            / image_path["timings"]["image_path"]["median_ms"]
        )
    return result


def format_report(result: dict[str, Any]) -> str:
    """The benchmark as text tables (methods, sizes, delegation, memory)."""
    from tabulate import tabulate

    sizes, delegation = result["sizes"], result.get("delegation") or {}
    timings = {
        **result["all_methods"]["timings"],
        "image_path": result["image_path"]["timings"]["image_path"],
    }
    rows = []
    for name, timing in timings.items():
        size = sizes["methods"].get(name, {})
        share = delegation.get(name, {}).get("share") if name in delegation else None
        rows.append(
            [
                name,
                f"{timing['median_ms']:.1f}",
                f"{timing['min_ms']:.1f}",
                f"{size['total'] / 1e6:.2f}" if size else "",
                "" if share is None else f"{share:.1%}",
            ]
        )
    lines = [
        f"{result['pte']}: {sizes['file_bytes'] / 1e6:.2f} MB, preset {result['metadata']['preset']}, "
        f"{result['metadata']['backend']}/{result['metadata']['recipe']}, {result['all_methods']['threads']} threads "
        f"(ExecuTorch pool {result['all_methods'].get('executorch_threads', '?')})",
        tabulate(rows, headers=["method", "median ms", "min ms", "own MB", "delegated"], tablefmt="github"),
    ]
    if sizes["shared"]:
        shared = ", ".join(f"{names}: {size / 1e6:.2f} MB" for names, size in sizes["shared"].items())
        lines.append(f"weights shared between methods (counted once): {shared}")
    if delegation:
        lines.append(
            f"delegated share, all methods: {delegation['overall_share']:.1%} of operators (getitem excluded)"
        )
        for name, item in delegation.items():
            if isinstance(item, dict) and item.get("cpu"):
                ops = ", ".join(f"{op} x{count}" for op, count in item["cpu"].items())
                lines.append(f"  on CPU in {name}: {ops}")
    else:
        lines.append("delegated share: unknown (no manifest next to the .pte)")
    image = result["image_path"]
    lines.append(
        f"image path peak RSS {image['peak_rss_mb']:.0f} MB (process after imports {image['baseline_rss_mb']:.0f} MB; "
        f"+{image['peak_rss_mb'] - image['baseline_rss_mb']:.0f} MB for the program); all methods peak "
        f"{result['all_methods']['peak_rss_mb']:.0f} MB"
    )
    if result.get("eager"):
        eager = result["eager"]
        lines.append(
            f"eager float image path {eager['timings']['image_path']['median_ms']:.1f} ms (peak RSS "
            f"{eager['peak_rss_mb']:.0f} MB): .pte is {result['speedup']:.2f}x faster"
        )
    return "\n".join(lines)
