"""``sam3spec eval model --saco-gold DIR --sav DIR``: SA-Co/Gold and SA-V folders as released.

The folders are a concept world's held-out split rewritten in the released layouts: two Gold
subsets with SAM 3's file names (``gold_crowded_*`` with its images in a MetaCLIP-style folder,
``gold_sa1b_*`` in an SA-1B one), images padded to 64 x 80 (not square, as real images are) and
annotator c missing one instance (the oracle has a choice); SA-V's val layout without the world's
manifest.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pycocotools import mask as mask_utils

from sam3spec.cli import main
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.world import WorldConfig, WorldPaths, generate_world

WIDTH = 80  # world images are 64 x 64; padded on the right to 64 x 80


def _rle(mask: np.ndarray) -> dict:
    encoded = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    encoded["counts"] = encoded["counts"].decode("ascii")
    return encoded


def write_gold(world: Path, root: Path) -> dict[str, Path]:
    """The world's eval split as SA-Co/Gold is released (see the module docstring)."""
    data = json.loads(WorldPaths.of(world).saco_eval[0].read_text())
    files = sorted({entry["file_name"] for entry in data["images"]})
    folders = {"gold": root / "annotations", "metaclip": root / "metaclip", "sa1b": root / "sa1b"}
    for folder in folders.values():
        folder.mkdir(parents=True)
    for subset, names in (("crowded", files[:2]), ("sa1b", files[2:])):
        images = folders["sa1b" if subset == "sa1b" else "metaclip"]
        for name in names:
            image = np.asarray(Image.open(WorldPaths.of(world).sa1b_eval / name).convert("RGB"))
            padded = np.zeros((image.shape[0], WIDTH, 3), np.uint8)
            padded[:, : image.shape[1]] = image
            Image.fromarray(padded).save(images / name, quality=95)
        entries = [dict(entry, width=WIDTH) for entry in data["images"] if entry["file_name"] in names]
        ids = {entry["id"] for entry in entries}
        annotations = []
        for annotation in data["annotations"]:
            if annotation["image_id"] in ids:
                mask = mask_utils.decode(annotation["segmentation"])
                padded = np.zeros((mask.shape[0], WIDTH), np.uint8)
                padded[:, : mask.shape[1]] = mask
                x, y, w, h = mask_utils.toBbox(_rle(padded)).tolist()
                annotations.append(
                    dict(
                        annotation,
                        segmentation=_rle(padded),
                        bbox=[x / WIDTH, y / 64, w / WIDTH, h / 64],
                        area=float(padded.sum()) / (64 * WIDTH),
                    )
                )
        for annotator in "abc":
            kept = annotations[1:] if annotator == "c" else annotations
            gold = {"images": entries, "annotations": kept, "categories": data["categories"]}
            path = folders["gold"] / f"gold_{subset}_merged_{annotator}_release_test.json"
            path.write_text(json.dumps(gold))
    return folders


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(
        root, num_images=20, num_videos=2, seed=0, config=WorldConfig(image_size=64), progress=False
    )
    return root


@pytest.fixture(scope="module")
def released(world: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("released")
    folders = write_gold(world, root)
    folders["sav"] = write_sav(WorldPaths.of(world).sav_val, root / "sav_val")
    return folders


def write_sav(val: Path, root: Path, objects: int = 2, frames: int = 5) -> Path:
    """SA-V's val layout from a world's (no world.json), cut to ``objects`` objects and ``frames``
    annotated frames per video (the predictor steps once per object and frame)."""
    for video in sorted((val / "Annotations_6fps").iterdir()):
        kept = []
        for object_dir in sorted(video.iterdir())[:objects]:
            for png in sorted(object_dir.glob("*.png"))[:frames]:
                target = root / "Annotations_6fps" / video.name / object_dir.name / png.name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(png, target)
                kept.append(png.stem)
        for stem in sorted(set(kept)):
            target = root / "JPEGImages_24fps" / video.name / f"{stem}.jpg"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(val / "JPEGImages_24fps" / video.name / f"{stem}.jpg", target)
    return root


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam3spec.checkpoint import save_pretrained
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    return save_pretrained(build_student("efficientsam3-tiny"), tmp_path_factory.mktemp("student") / "tiny")


class GoldOracle:
    """A teacher-protocol model (stretch geometry) answering with annotator a's masks, damaged:
    every third pair misses an instance, every fourth gets a shifted false one."""

    def __init__(self, folders: dict[str, Path]) -> None:
        self.answers: dict[tuple[bytes, str], list[np.ndarray]] = {}
        for path in sorted(folders["gold"].glob("gold_*_merged_a_*.json")):
            data = json.loads(path.read_text())
            images = folders["sa1b" if "_sa1b_" in path.name else "metaclip"]
            for entry in data["images"]:
                image = np.asarray(Image.open(images / entry["file_name"]).convert("RGB"))
                masks = [
                    mask_utils.decode(a["segmentation"]).astype(bool)
                    for a in data["annotations"]
                    if a["image_id"] == entry["id"]
                ]
                if masks and entry["id"] % 3 == 0:
                    masks = masks[1:]
                if entry["id"] % 4 == 1:
                    masks.append(np.roll(masks[0], 9, axis=1) if masks else np.eye(64, WIDTH, dtype=bool))
                self.answers[image.tobytes(), entry["text_input"]] = masks
        self.current = b""

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        self.current = images[0].permute(1, 2, 0).numpy().tobytes()
        return images.float()

    def encode_image(self, pixels: torch.Tensor):
        class Embeddings:
            def select(self, index):
                return len(index)

        return Embeddings()

    def predict(self, count: int, text: list[str]) -> Sam3Outputs:
        queries = 5
        logits = torch.full((len(text), queries, 64, WIDTH), -10.0)
        query_logits = torch.full((len(text), queries), -10.0)
        boxes = torch.zeros(len(text), queries, 4)
        for row, phrase in enumerate(text):
            for q, mask in enumerate(self.answers[self.current, phrase][:queries]):
                logits[row, q][torch.from_numpy(mask)] = 10.0
                query_logits[row, q] = 10.0
                x, y, w, h = mask_utils.toBbox(_rle(mask)).tolist()
                boxes[row, q] = torch.tensor([x / WIDTH, y / 64, (x + w) / WIDTH, (y + h) / 64])
        presence = (query_logits.max(1, keepdim=True).values > 0).float() * 20 - 10
        return Sam3Outputs(query_logits, boxes, logits, presence, logits[:, :1])


def _eval_model(released: dict[str, Path], model: str, out: Path, *extra: str) -> int:
    return main(
        [
            "eval",
            "model",
            "--model",
            model,
            "--saco-gold",
            str(released["gold"]),
            "--images",
            str(released["metaclip"]),
            "--images",
            f"sa1b={released['sa1b']}",
            "--out",
            str(out),
            "--json",
            str(out / "result.json"),
            "--quiet",
            *extra,
        ]
    )


def test_gold_folder_table_and_predictions_scored_by_eval_saco(
    released, student_dir, tmp_path, monkeypatch, capsys
) -> None:
    import sam3spec.eval.model_eval as model_eval

    monkeypatch.setattr(
        model_eval, "load_model", lambda spec, device="cpu": (GoldOracle(released), "teacher")
    )
    assert _eval_model(released, str(student_dir), tmp_path, "--min-score", "0") == 0
    table = capsys.readouterr().out
    lines = {line.split()[0]: line.split() for line in table.splitlines() if line.strip()}
    assert {"crowded", "sa1b_nps", "mean"} <= set(lines)  # SAM 3's eval names, and their mean
    metrics = json.loads((tmp_path / "result.json").read_text())
    rows = metrics["saco_gold"]["subsets"]
    assert 5.0 < rows["crowded"]["cgF1"] < 99.0 and 5.0 < rows["sa1b_nps"]["cgF1"] < 99.0
    for key in ("cgF1", "IL_MCC", "pmF1"):
        assert metrics[key] == pytest.approx((rows["crowded"][key] + rows["sa1b_nps"][key]) / 2)
    assert float(lines["mean"][2]) == pytest.approx(metrics["cgF1"], abs=0.006)
    for name, subset in (("crowded", "crowded"), ("sa1b_nps", "sa1b")):
        pred = tmp_path / f"gold_{name}" / "dumps" / f"gold_{name}" / "coco_predictions_segm.json"
        results = json.loads(pred.read_text())
        assert {r["segmentation"]["size"][1] for r in results} == {WIDTH}
        assert all(0 <= v <= 1 for r in results for v in r["bbox"])  # normalised, as SAM 3 dumps
        gts = [str(released["gold"] / f"gold_{subset}_merged_{a}_release_test.json") for a in "abc"]
        score = tmp_path / f"{name}.json"
        presence = tmp_path / f"gold_{name}" / "presence.json"
        command = ["eval", "saco", "--gt", *gts, "--pred", str(pred), "--presence", str(presence)]
        assert main([*command, "--json", str(score)]) == 0
        scored = json.loads(score.read_text())
        for key in ("cgF1", "IL_MCC", "pmF1", "mIoU", "presence_f1"):
            assert scored[key] == pytest.approx(rows[name][key]), (name, key)
        assert scored["bbox"]["cgF1"] == pytest.approx(rows[name]["bbox"]["cgF1"])
        assert scored["bbox"]["cgF1"] > 5.0  # the box variant compares normalised with normalised


def test_gold_folder_with_a_student(released, student_dir, tmp_path) -> None:
    assert _eval_model(released, str(student_dir), tmp_path, "--min-score", "0") == 0
    metrics = json.loads((tmp_path / "result.json").read_text())
    assert metrics["kind"] == "student" and set(metrics["saco_gold"]["subsets"]) == {"crowded", "sa1b_nps"}
    gt = json.loads((released["gold"] / "gold_sa1b_merged_a_release_test.json").read_text())
    pred = tmp_path / "gold_sa1b_nps" / "dumps" / "gold_sa1b_nps" / "coco_predictions_segm.json"
    assert {r["image_id"] for r in json.loads(pred.read_text())} == {e["id"] for e in gt["images"]}


def test_hub_layout_teacher(released, tiny_teacher_dir, tmp_path) -> None:
    hub = tiny_teacher_dir / "detector"  # a plain save_pretrained folder (model_type sam3)
    assert _eval_model(released, str(hub), tmp_path, "--limit", "1") == 0
    assert json.loads((tmp_path / "result.json").read_text())["kind"] == "teacher"


def test_gold_folder_errors(released, student_dir, tmp_path, capsys) -> None:
    assert main(["eval", "model", "--model", str(student_dir), "--saco-gold", str(tmp_path)]) == 2
    assert "gold_<subset>_merged_{a,b,c}" in capsys.readouterr().err
    args = ["eval", "model", "--model", str(student_dir), "--saco-gold", str(released["gold"])]
    assert main([*args, "--images", f"nope={tmp_path}"]) == 2
    assert "no Gold subset 'nope'" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "o"), "--quiet"]) == 2  # images are not in the Gold folder
    assert "see --images" in capsys.readouterr().err
    assert main(["eval", "model", "--model", str(student_dir)]) == 2
    assert "--saco-gold" in capsys.readouterr().err


def test_sav_folder_j_and_f(released, student_dir, tmp_path, capsys) -> None:
    assert (
        main(
            [
                "eval",
                "model",
                "--model",
                str(student_dir),
                "--sav",
                str(released["sav"]),
                "--out",
                str(tmp_path),
                "--json",
                str(tmp_path / "result.json"),
            ]
        )
        == 0
    )
    metrics = json.loads((tmp_path / "result.json").read_text())
    annotations = released["sav"] / "Annotations_6fps"
    expected = sorted(p.relative_to(annotations) for p in annotations.rglob("*.png"))
    assert sorted(p.relative_to(tmp_path / "sav") for p in (tmp_path / "sav").rglob("*.png")) == expected
    again = tmp_path / "vos.json"
    assert (
        main(
            [
                "eval",
                "vos",
                "--gt-root",
                str(annotations),
                "--pred-root",
                str(tmp_path / "sav"),
                "--json",
                str(again),
            ]
        )
        == 0
    )
    assert metrics["J&F"] == pytest.approx(json.loads(again.read_text())["J&F"])
    assert metrics["sav"]["num_objects"] > 0 and "first mask" in metrics["sav_note"]
    assert "J&F" in capsys.readouterr().out


def test_compare_and_quant_on_a_gold_folder(
    released, student_dir, tiny_teacher_dir, tmp_path, capsys
) -> None:
    gold = ["--saco-gold", str(released["gold"]), "--images", str(released["metaclip"])]
    gold += ["--images", f"sa1b_nps={released['sa1b']}", "--limit", "1"]  # SAM 3's eval name works too
    teacher = str(tiny_teacher_dir / "detector")
    compare = ["eval", "compare", "--student", str(student_dir), "--teacher", teacher, *gold]
    assert main([*compare, "--out", str(tmp_path / "c"), "--json", str(tmp_path / "c.json")]) == 0
    printed = capsys.readouterr().out
    assert "| cgF1 |" in printed
    assert "Diagnosis, Gold subset sa1b_nps" in printed and "| pmF1@0.50 |" in printed
    compared = json.loads((tmp_path / "c.json").read_text())
    assert set(compared) == {"teacher", "student", "diagnosis"}
    hard = compared["diagnosis"]["Gold subset crowded"]["student"]["hard_negative"]
    assert "not measured" in hard["note"]  # SA-Co files do not mark hard negatives
    assert (tmp_path / "c" / "teacher" / "gold_sa1b_nps" / "presence.json").is_file()
    quant = ["eval", "quant", "--model", str(student_dir), *gold, "--recipes", "8da8w"]
    assert main([*quant, "--json", str(tmp_path / "q.json")]) == 0
    assert [row["name"] for row in json.loads((tmp_path / "q.json").read_text())] == ["float", "8da8w"]
