"""The full-size rehearsal's machinery (suites/mission): the real-layout folders written from a
concept world, the script that writes the full-size SAM 3 in the hub layout, and :class:`Chain`,
which runs each command of the real job as a user would (a subprocess of ``python -m
sam3spec.cli``) and records its exit status, wall time and peak memory.

Every command's record is kept in ``records.json`` in the chain's folder, and a command whose
record says it finished is not run again: a rehearsal that stopped (a fix, a killed process)
continues where it was.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from sam3spec.world import WorldConfig, WorldPaths, generate_world

# The world the folders are copied from: 8 images (6 train, 2 eval) and 2 videos of 8 frames.
WORLD = WorldConfig(video_min_frames=8, video_max_frames=8, video_min_objects=2, video_max_objects=2)
IMAGES, VIDEOS = 8, 2
# The teacher's input side: SAM 3's own 1008 px costs ~82 s of the 2-core CPU per image; the
# rehearsal runs it at 504 px unless MISSION_TEACHER_RESOLUTION says otherwise.
TEACHER_RESOLUTION = int(os.environ.get("MISSION_TEACHER_RESOLUTION", "504"))
THREADS = os.environ.get("MISSION_THREADS", "2")

# A command's own peak resident set: ru_maxrss of a child counts the memory of the process it was
# forked from (Linux keeps the fork-time high-water mark across exec), so the command is started
# from this small launcher, not from the test process, and wait4 reads its peak (KiB).
MEASURE = """
import os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
open(sys.argv[1], "w").write(f"{usage.ru_maxrss} {usage.ru_utime + usage.ru_stime}")
sys.exit(os.waitstatus_to_exitcode(status))
"""

# The student's two pretrained towers as their libraries publish them (random weights): timm's
# ``repvit_m2_3.dist_450e_in1k`` (``model.safetensors``) and open_clip's MobileCLIP-S1
# (``open_clip_pytorch_model.bin``, image tower included).
WRITE_TOWERS = """
import sys, torch, timm, open_clip
from pathlib import Path
from safetensors.torch import save_file
torch.manual_seed(0)
folder = Path(sys.argv[1])
folder.mkdir(parents=True, exist_ok=True)
repvit = timm.create_model("repvit_m2_3", pretrained=False)
save_file({k: v.contiguous() for k, v in repvit.state_dict().items()}, str(folder / "model.safetensors"))
clip = open_clip.create_model("MobileCLIP-S1", pretrained=None)
torch.save(clip.state_dict(), folder / "open_clip_pytorch_model.bin")
"""

WRITE_TEACHER = """
import sys, torch
from pathlib import Path
from safetensors.torch import save_file
from transformers import Sam3VideoConfig, Sam3VideoModel
torch.manual_seed(0)
model = Sam3VideoModel(Sam3VideoConfig()).eval()
folder = Path(sys.argv[1])
folder.mkdir(parents=True)
model.config.save_pretrained(folder)
state = {key: value.contiguous() for key, value in model.state_dict().items()}
save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})
print(sum(p.numel() for p in model.parameters()))
"""


@dataclass
class Record:
    """One command of the chain: its arguments, exit status, wall seconds and peak RSS (MB)."""

    name: str
    args: list[str]
    returncode: int
    seconds: float
    peak_rss_mb: float
    log: str
    load: list[float] | None = None  # the machine's 1-minute load average at the start and the end
    cpu_seconds: float | None = None  # user + system CPU time: the cost without the machine's contention

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class Chain:
    """Runs the real job's commands in order under ``root``; see the module docstring."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.teacher_resolution = TEACHER_RESOLUTION
        self.threads = THREADS
        # Report only: run nothing, report what the records hold (a rehearsal still under way).
        self.report_only = os.environ.get("MISSION_REPORT_ONLY") == "1"
        root.mkdir(parents=True, exist_ok=True)
        self.path = root / "records.json"
        stored = json.loads(self.path.read_text()) if self.path.is_file() else {}
        self.records = {name: Record(**value) for name, value in stored.items()}

    def command(self, name: str, args: list[str]) -> Record | None:
        """Run ``sam3spec ARGS`` (or reuse its finished record); returns its :class:`Record` (None:
        not run, report only)."""
        return self.run(name, [sys.executable, "-m", "sam3spec.cli", *args])

    def run(self, name: str, argv: list[str]) -> Record | None:
        if (name in self.records and self.records[name].ok) or self.report_only:
            return self.records.get(name)
        log = self.root / "logs" / f"{name}.log"
        log.parent.mkdir(exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": THREADS, "PYTHONUNBUFFERED": "1"}
        started, load = time.perf_counter(), os.getloadavg()[0]
        with log.open("w") as stream:
            stream.write("$ " + " ".join(argv) + "\n")
            stream.flush()
            peak = log.with_suffix(".maxrss")
            launcher = [sys.executable, "-c", MEASURE, str(peak), *argv]
            returncode = subprocess.run(launcher, stdout=stream, stderr=subprocess.STDOUT, env=env).returncode
        seconds = time.perf_counter() - started
        maxrss, cpu = peak.read_text().split() if peak.is_file() else ("nan", "nan")
        loads = [load, os.getloadavg()[0]]
        record = Record(name, argv, returncode, seconds, float(maxrss) / 1024, str(log), loads, float(cpu))
        self.records[name] = record
        self.path.write_text(
            json.dumps({key: asdict(value) for key, value in self.records.items()}, indent=1)
        )
        print(
            f"mission: {name} exit {record.returncode} in {seconds:.0f} s, peak RSS {record.peak_rss_mb:.0f} MB"
        )
        return record

    def require(self, *names: str) -> None:
        """Skip-free guard: a command this one needs did not finish (fails with its log's tail)."""
        for name in names:
            record = self.records.get(name)
            if record is None or not record.ok:
                tail = Path(record.log).read_text()[-2000:] if record else "(not run)"
                pytest.fail(f"mission: {name} did not finish; its log ends:\n{tail}")


@dataclass(frozen=True)
class Layouts:
    """The world copied into the layouts real data comes in (no ``world.json`` anywhere):
    ``sa1b`` (``sa_*.jpg`` + ``sa_*.json``), ``saco`` (the Silver file with its images),
    ``sav`` (``sav_train/sav_000/sav_*.mp4`` + ``_manual.json``), ``gold`` (the Gold triple as
    ``gold_<subset>_merged_{a,b,c}_release_test.json`` with its images), ``images`` (calibration:
    images only), ``vocabulary`` (the Silver file's phrases, one a line)."""

    sa1b: Path
    saco: Path
    sav: Path
    gold: Path
    images: Path
    vocabulary: Path


def write_layouts(root: Path) -> Layouts:
    world = root / "world"
    if not (world / "world.json").is_file():
        shutil.rmtree(world, ignore_errors=True)
        generate_world(world, IMAGES, VIDEOS, seed=0, config=WORLD, progress=False)
    paths = WorldPaths.of(world)
    plain = root / "data"
    if not (plain / "done").is_file():
        shutil.rmtree(plain, ignore_errors=True)
        shutil.copytree(paths.sa1b_train, plain / "sa1b")
        shutil.copytree(paths.sa1b_train, plain / "saco", ignore=shutil.ignore_patterns("sa_*.json"))
        shutil.copy(paths.saco_train, plain / "saco" / paths.saco_train.name)
        (plain / "sav_train" / "sav_000").mkdir(parents=True)
        for path in paths.sav_train.iterdir():
            if path.suffix == ".mp4" or path.name.endswith("_manual.json"):
                shutil.copy(path, plain / "sav_train" / "sav_000" / path.name)
        shutil.copytree(paths.sa1b_eval, plain / "gold", ignore=shutil.ignore_patterns("sa_*.json"))
        shutil.copytree(paths.sa1b_eval, plain / "images", ignore=shutil.ignore_patterns("sa_*.json"))
        for path in paths.saco_eval:
            shutil.copy(path, plain / "gold" / path.name)
        categories = json.loads(paths.saco_train.read_text())["categories"]
        phrases = sorted({category["name"] for category in categories})
        (plain / "vocabulary.txt").write_text("\n".join(phrases) + "\n")
        (plain / "done").write_text("")
    return Layouts(
        plain / "sa1b",
        plain / "saco",
        plain / "sav_train",
        plain / "gold",
        plain / "images",
        plain / "vocabulary.txt",
    )
