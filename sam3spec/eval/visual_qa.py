"""``sam3spec eval visual-qa``: an HTML page of teacher vs student masks on your own images.

One row per (image, prompt): original | teacher | student, each model's top-k masks coloured
(:func:`sam3spec.visualize.draw_overlay`) with their scores, and the presence score in the
caption. Images of any aspect ratio: they are padded bottom/right to a square before inference
(what the student's letterbox does anyway) and the masks are cropped back, so both models see the
same pixels. Files: ``OUT/index.html`` and ``OUT/images/*.png`` (relative links: the folder can be
moved or zipped).
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from sam3spec.data.image_io import load_image
from sam3spec.eval.predictions import PhrasePrediction, predict_phrases
from sam3spec.visualize import draw_overlay

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


@dataclass
class QARow:
    """One (image, prompt) row: PNG paths relative to the output folder and captions."""

    image: str
    prompt: str
    original: str
    panels: dict[str, tuple[str, str]]  # model name -> (png, caption)


def find_images(image: Path | None, image_dir: Path | None) -> list[Path]:
    """The images to show: one file, or the image files of a folder (sorted)."""
    if image is not None:
        if not image.is_file():
            raise FileNotFoundError(f"--image {image} not found")
        return [image]
    if image_dir is None or not image_dir.is_dir():
        raise FileNotFoundError(f"--image-dir {image_dir} is not a folder")
    found = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not found:
        raise FileNotFoundError(f"--image-dir {image_dir} holds no {'/'.join(IMAGE_SUFFIXES)} files")
    return found


def pad_square(image: np.ndarray) -> np.ndarray:
    """``[H, W, 3]`` -> ``[S, S, 3]``, S = max(H, W), zeros bottom/right."""
    height, width = image.shape[:2]
    side = max(height, width)
    out = np.zeros((side, side, 3), dtype=image.dtype)
    out[:height, :width] = image
    return out


def top_k(prediction: PhrasePrediction, k: int, height: int, width: int):
    """The ``k`` best-scoring masks cropped to ``[H, W]``: ``(masks, boxes_xyxy, scores)``."""
    order = np.argsort(-prediction.scores, kind="stable")[:k]
    masks = prediction.masks[order][:, :height, :width]
    xywh = prediction.boxes_xywh[order]
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    boxes = boxes.clip(0, [width - 1, height - 1, width - 1, height - 1])
    return masks, boxes, prediction.scores[order]


def render(
    models: dict[str, object],
    images: list[Path],
    prompts: list[str],
    k: int,
    out: Path,
    warn: Callable[[str], None] | None = None,
) -> Path:
    """Run each model on each image with every prompt; write the PNGs and ``index.html``.

    An image that cannot be read is skipped (``warn`` is told, the page lists it): one bad file
    in a folder of photos should not cost the page. With no readable image at all it raises.

    Args:
        models: name -> teacher-protocol model (e.g. ``{"teacher": ..., "student": ...}``).
        images: image files.
        prompts: noun phrases.
        k: masks shown per panel.
        out: output folder (created).
        warn: told one line per skipped image.

    Raises:
        ValueError: ``k`` < 1, or no image could be read.
    """
    if k < 1:
        raise ValueError(f"--top-k must be >= 1, not {k}")
    (out / "images").mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for index, path in enumerate(images):
        try:
            image = load_image(path)
        except ValueError as error:  # ImageReadError names the file and the fault
            skipped.append(f"{path.name}: {error}")
            if warn is not None:
                warn(f"skipped {path}: {error}")
            continue
        height, width = image.shape[:2]
        square = pad_square(image)
        original = f"images/{index:03d}_original.png"
        Image.fromarray(image).save(out / original)
        predictions = {name: predict_phrases(model, square, prompts) for name, model in models.items()}
        for p, prompt in enumerate(prompts):
            panels = {}
            for name, per_prompt in predictions.items():
                masks, boxes, scores = top_k(per_prompt[p], k, height, width)
                png = f"images/{index:03d}_p{p}_{name}.png"
                draw_overlay(image, masks, boxes, scores).save(out / png)
                listed = ", ".join(f"{s:.2f}" for s in scores)
                panels[name] = (png, f"presence {per_prompt[p].presence:.2f}; top-{k} scores {listed}")
            rows.append(QARow(path.name, prompt, original, panels))
    if not rows:
        raise ValueError(f"no readable image among the {len(images)} given ({'; '.join(skipped)})")
    return write_html(rows, list(models), out / "index.html", skipped)


def write_html(rows: list[QARow], names: list[str], path: Path, skipped: Sequence[str] = ()) -> Path:
    """A static page; ``window.qaImagesLoaded`` becomes true when every image has loaded
    (the headless-browser test reads it)."""
    head = "".join(f"<th>{html.escape(n)}</th>" for n in ["image / prompt", "original", *names])
    body = []
    for row in rows:
        cells = [
            f"<td><b>{html.escape(row.image)}</b><br>&ldquo;{html.escape(row.prompt)}&rdquo;</td>",
            f'<td><img src="{row.original}" alt="original"></td>',
        ]
        for name in names:
            png, caption = row.panels[name]
            cells.append(
                f'<td><img src="{png}" alt="{html.escape(name)}"><br><small>{html.escape(caption)}</small></td>'
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    notes = "".join(f"<p>skipped (unreadable): {html.escape(line)}</p>\n" for line in skipped)
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>sam3spec visual QA</title>
<style>body{{font-family:sans-serif}} td{{vertical-align:top;padding:4px;max-width:260px}} img{{width:256px}}</style>
</head><body><h1>sam3spec visual QA</h1>
{notes}<table><tr>{head}</tr>
{chr(10).join(body)}
</table>
<script>
window.addEventListener("load", () => {{
  const images = Array.from(document.images);
  window.qaImagesLoaded = images.every(i => i.complete && i.naturalWidth > 0);
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-loaded", images.filter(i => i.complete && i.naturalWidth > 0).length);
}});
</script>
</body></html>
"""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(page, encoding="utf-8")
    temporary.replace(path)
    return path
