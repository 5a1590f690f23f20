"""Build the native C++ runner (``native/``, CMake) against the installed ExecuTorch wheel.

Used by the native gate and by hand (``python -m sam3spec.native.build [--out DIR]``). The
build folder is keyed by a hash of ``native/``'s sources and the ExecuTorch version, so an
unchanged tree is built once; the commands are the ones docs/NATIVE.md gives.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

NATIVE_DIR = Path(__file__).resolve().parents[2] / "native"
CACHE_DIR = Path(__file__).resolve().parents[2] / ".sam3spec-cache" / "native"
SOURCE_SUFFIXES = (".cpp", ".h", ".txt", ".cmake")


class ToolchainMissing(RuntimeError):
    """No C++ compiler or CMake on this machine."""


@dataclass(frozen=True)
class NativeBuild:
    """A built runner: the ``sam3spec-run`` binary, its build folder and how long the build took."""

    binary: Path
    build_dir: Path
    seconds: float
    cached: bool


def executorch_prefix() -> Path:
    """The installed ``executorch`` package folder (holds ``share/cmake/executorch-config.cmake``)."""
    import importlib.util

    spec = importlib.util.find_spec("executorch")
    if spec is None or not spec.submodule_search_locations:
        raise ToolchainMissing("the executorch Python package is not installed (pip install executorch)")
    return Path(list(spec.submodule_search_locations)[0])


def toolchain() -> tuple[str, str]:
    """``(cmake, c++ compiler)`` paths; raises :class:`ToolchainMissing` naming what is missing."""
    cmake = shutil.which("cmake")
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    missing = [
        name for name, path in (("cmake", cmake), ("a C++ compiler (c++/g++/clang++)", compiler)) if not path
    ]
    if missing:
        raise ToolchainMissing(f"cannot build native/: {' and '.join(missing)} not found on PATH")
    return cmake, compiler  # type: ignore[return-value]


def source_hash(native_dir: Path = NATIVE_DIR) -> str:
    digest = hashlib.sha256()
    for path in sorted(native_dir.rglob("*")):
        if (
            path.is_file()
            and path.suffix in SOURCE_SUFFIXES
            and "ios" not in path.parts
            and "android" not in path.parts
        ):
            digest.update(str(path.relative_to(native_dir)).encode())
            digest.update(path.read_bytes())
    try:
        from executorch.version import __version__ as et_version
    except ImportError:  # pragma: no cover
        et_version = "unknown"
    digest.update(et_version.encode())
    return digest.hexdigest()[:16]


def build_native(out_dir: Path | None = None, jobs: int = 2, native_dir: Path = NATIVE_DIR) -> NativeBuild:
    """Configure and build ``native/`` (Release); reuse an earlier build of the same sources.

    Raises:
        ToolchainMissing: no CMake / compiler / executorch.
        RuntimeError: configure or build failed (the tail of the log is in the message).
    """
    cmake, compiler = toolchain()
    prefix = executorch_prefix()
    build_dir = Path(out_dir) if out_dir else CACHE_DIR / f"build-{source_hash(native_dir)}"
    binary = build_dir / "sam3spec-run"
    if binary.is_file():
        return NativeBuild(binary, build_dir, 0.0, True)
    start = time.perf_counter()
    build_dir.mkdir(parents=True, exist_ok=True)
    commands = [
        [
            cmake,
            "-S",
            str(native_dir),
            "-B",
            str(build_dir),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_PREFIX_PATH={prefix}",
            f"-DCMAKE_CXX_COMPILER={compiler}",
        ],
        [cmake, "--build", str(build_dir), f"-j{jobs}"],
    ]
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            log = (done.stdout + done.stderr)[-4000:]
            raise RuntimeError(f"native build failed: {' '.join(command)}\n{log}")
    if not binary.is_file():
        raise RuntimeError(f"native build finished without {binary}")
    return NativeBuild(binary, build_dir, time.perf_counter() - start, False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", type=Path, default=None, help="build folder (default: the source-keyed cache)"
    )
    parser.add_argument("-j", "--jobs", type=int, default=2)
    args = parser.parse_args(argv)
    build = build_native(args.out, args.jobs)
    print(f"{build.binary} ({'cached' if build.cached else f'built in {build.seconds:.0f} s'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
