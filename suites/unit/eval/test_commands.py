"""``sam3spec eval saco|vos|model``: a tiny random student end to end, an oracle model through the
same prediction path, and agreement with the minimal metrics the gates used before."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam3spec.cli import main
from sam3spec.eval.metrics import evaluate_pair, summarize
from sam3spec.eval.model_eval import kind_breakdown, predict_split
from sam3spec.eval.saco_files import evaluate_saco, load_ground_truth
from sam3spec.models.outputs import Sam3Outputs
from sam3spec.world import WorldConfig, WorldPaths, generate_world
from sam3spec.world.manifest import pair_kinds

HEADLINE = ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1", "J", "F", "J&F")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("world")
    generate_world(
        root, num_images=20, num_videos=2, seed=0, config=WorldConfig(image_size=64), progress=False
    )
    return root


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from sam3spec.checkpoint import save_pretrained
    from sam3spec.models.build import build_student

    torch.manual_seed(0)
    return save_pretrained(build_student("efficientsam3-tiny"), tmp_path_factory.mktemp("student") / "tiny")


def test_eval_model_with_a_tiny_student(world: Path, student_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "metrics.json"
    code = main(
        [
            "eval",
            "model",
            "--model",
            str(student_dir),
            "--data",
            str(world),
            "--json",
            str(out),
            "--quiet",
            "--min-score",
            "0",
        ]
    )
    assert code == 0
    metrics = json.loads(out.read_text())
    assert set(HEADLINE) <= set(metrics) and metrics["kind"] == "student"
    assert 0.0 <= metrics["J&F"] <= 100.0 and any((tmp_path / "vos").rglob("*.png"))  # the val video's masks
    results = json.loads((tmp_path / "predictions_segm.json").read_text())
    gt = json.loads(WorldPaths.of(world).saco_eval[0].read_text())
    assert {r["image_id"] for r in results} == {p["id"] for p in gt["images"]}  # min-score 0: every pair
    first = results[0]
    assert set(first) >= {"image_id", "segmentation", "bbox", "score"} and isinstance(
        first["segmentation"]["counts"], str
    )
    # The CLI's numbers are those of scoring its own files again.
    again = evaluate_saco(list(WorldPaths.of(world).saco_eval), tmp_path / "predictions_segm.json").summary()
    assert metrics["cgF1"] == pytest.approx(again["cgF1"]) and metrics["IL_MCC"] == pytest.approx(
        again["IL_MCC"]
    )


class OracleModel:
    """Teacher-protocol stand-in that answers with the ground truth (optionally damaged), so the
    prediction -> RLE -> scoring path can be checked against known answers."""

    def __init__(self, world: Path, damage: bool) -> None:
        self.answers: dict[tuple[str, str], list[np.ndarray]] = {}
        paths = WorldPaths.of(world)
        data = json.loads(paths.saco_eval[0].read_text())
        from pycocotools import mask as mask_utils

        by_pair = {}
        for ann in data["annotations"]:
            by_pair.setdefault(ann["image_id"], []).append(
                mask_utils.decode(ann["segmentation"]).astype(bool)
            )
        rng = np.random.default_rng(0)
        for pair in data["images"]:
            image = np.asarray(Image.open(paths.sa1b_eval / pair["file_name"]).convert("RGB"))
            masks = list(by_pair.get(pair["id"], []))
            if damage:
                if masks and rng.random() < 0.3:
                    masks = masks[1:]  # a missed instance
                if rng.random() < 0.3:
                    masks.append(
                        np.roll(masks[0], 3, axis=1) if masks else np.eye(*image.shape[:2], dtype=bool)
                    )
            self.answers[self._key(image), pair["text_input"]] = masks
        self.current = ""

    @staticmethod
    def _key(image: np.ndarray) -> str:
        return hashlib.sha1(np.ascontiguousarray(image).tobytes()).hexdigest()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        self.current = self._key(images[0].permute(1, 2, 0).numpy())
        return images.float()

    def encode_image(self, pixels: torch.Tensor):
        class Embeddings:
            def select(self, index):
                return len(index)

        return Embeddings()

    def predict(self, count: int, text: list[str]) -> Sam3Outputs:
        queries = 4
        size = 64
        logits = torch.full((len(text), queries, size, size), -10.0)
        query_logits = torch.full((len(text), queries), -10.0)
        for row, phrase in enumerate(text):
            for q, mask in enumerate(self.answers[self.current, phrase][:queries]):
                logits[row, q][torch.from_numpy(mask)] = 10.0
                query_logits[row, q] = 10.0
        boxes = torch.zeros(len(text), queries, 4)
        presence = (query_logits.max(1, keepdim=True).values > 0).float() * 20 - 10
        return Sam3Outputs(query_logits, boxes, logits, presence, logits[:, :1])


@pytest.mark.parametrize("damage", [False, True])
def test_prediction_path_with_an_oracle_model(world: Path, tmp_path: Path, damage: bool) -> None:
    paths = WorldPaths.of(world)
    pred, presence_path = predict_split(
        OracleModel(world, damage), paths.saco_eval[0], paths.sa1b_eval, tmp_path
    )
    presence = {int(k): v for k, v in json.loads(presence_path.read_text()).items()}
    new = evaluate_saco(list(paths.saco_eval), pred, presence=presence).summary()
    if not damage:
        assert new["cgF1"] == pytest.approx(100.0, abs=0.05) and new["mIoU"] == pytest.approx(1.0)
        assert new["presence_f1"] == pytest.approx(1.0)
        truths = [load_ground_truth(p) for p in paths.saco_eval]
        breakdown = kind_breakdown(truths, pred, presence, pair_kinds(world))["positive+hard_negative"]
        manifest = json.loads(paths.manifest.read_text())["images"]
        kinds = [q["kind"] for i in manifest if i["split"] == "eval" for q in i.get("queries", [])]
        expected = sum(k in ("positive", "hard_negative") for k in kinds)
        assert breakdown["IL_MCC"] == pytest.approx(1.0, abs=1e-5) and breakdown["num_pairs"] == expected > 0
        return
    assert 5.0 < new["cgF1"] < 99.0
    # The minimal metrics (sam3spec.eval.metrics, used by the teacher and distillation gates) agree up to SAM 3's 1e-4 smoothing.
    from pycocotools import mask as mask_utils

    gt = json.loads(paths.saco_eval[0].read_text())
    results = json.loads(pred.read_text())
    old = []
    for pair in gt["images"]:
        target = [
            mask_utils.decode(a["segmentation"]).astype(bool)
            for a in gt["annotations"]
            if a["image_id"] == pair["id"]
        ]
        mine = [r for r in results if r["image_id"] == pair["id"]]
        masks = np.array([mask_utils.decode(r["segmentation"]).astype(bool) for r in mine]).reshape(
            -1, 64, 64
        )
        old.append(
            evaluate_pair(
                masks,
                np.array([r["score"] for r in mine]),
                np.array(target).reshape(-1, 64, 64),
                presence[pair["id"]],
            )
        )
    reference = summarize(old)
    for key in ("cgF1", "pmF1", "IL_MCC", "mIoU", "presence_f1"):
        assert new[key] == pytest.approx(reference[key], abs=2e-2 if key == "cgF1" else 2e-4), key


def test_eval_saco_and_vos_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pycocotools import mask as mask_utils

    mask = np.zeros((8, 8), np.uint8)
    mask[2:6, 2:6] = 1
    encoded = mask_utils.encode(np.asfortranarray(mask))
    encoded["counts"] = encoded["counts"].decode()
    gt = {
        "images": [
            {"id": 1, "height": 8, "width": 8, "is_instance_exhaustive": 1},
            {"id": 2, "height": 8, "width": 8, "is_instance_exhaustive": 1},
        ],
        "annotations": [
            {"id": 1, "image_id": 1, "segmentation": encoded, "bbox": [0.25, 0.25, 0.5, 0.5], "iscrowd": 0}
        ],
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(
        json.dumps([{"image_id": 1, "segmentation": encoded, "bbox": [2, 2, 4, 4], "score": 0.9}])
    )
    assert (
        main(
            [
                "eval",
                "saco",
                "--gt",
                str(tmp_path / "gt.json"),
                "--pred",
                str(tmp_path / "pred.json"),
                "--json",
                str(tmp_path / "out.json"),
            ]
        )
        == 0
    )
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["cgF1"] == pytest.approx(100.0, abs=0.05) and out["bbox"]["cgF1"] == pytest.approx(
        100.0, abs=0.05
    )
    assert (
        main(["eval", "saco", "--gt", str(tmp_path / "nope.json"), "--pred", str(tmp_path / "pred.json")])
        == 2
    )
    assert "nope.json" in capsys.readouterr().err

    for root in ("gt", "pred"):
        for t in range(3):
            frame = tmp_path / root / "video" / "000" / f"{t:05d}.png"
            frame.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(mask * 255).save(frame)
    assert (
        main(
            [
                "eval",
                "vos",
                "--gt-root",
                str(tmp_path / "gt"),
                "--pred-root",
                str(tmp_path / "pred"),
                "--json",
                str(tmp_path / "vos.json"),
            ]
        )
        == 0
    )
    vos = json.loads((tmp_path / "vos.json").read_text())
    assert vos["J"] == 100.0 and vos["F"] == 100.0 and vos["J&F"] == 100.0
