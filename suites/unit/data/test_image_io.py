"""The one image loader: EXIF orientation, 16-bit, palette / grayscale / alpha, large images,
clear errors; and every reader of user or dataset images goes through it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sam3spec.data.faults import DataFault
from sam3spec.data.files import read_image
from sam3spec.data.image_io import MAX_SIDE, ImageReadError, load_image
from sam3spec.export.pipeline import letterboxed_images
from sam3spec.predictor import image_to_tensor

PACKAGE = Path(__file__).resolve().parents[3] / "sam3spec"


def gradient16(path: Path) -> np.ndarray:
    """A 16-bit grayscale PNG (0 ... 65535 left to right); returns the values."""
    values = np.tile(np.linspace(0, 65535, 32).round().astype(np.uint16), (8, 1))
    Image.fromarray(values).save(path)  # mode I;16
    assert Image.open(path).mode in ("I;16", "I")
    return values


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    values = gradient16(tmp_path / "deep.png")
    expected = np.rint(values / 257).astype(np.uint8)
    for image in (read_image(tmp_path / "deep.png"), load_image(tmp_path / "deep.png")):
        assert image.shape == (8, 32, 3) and image.dtype == np.uint8
        np.testing.assert_array_equal(image[..., 0], expected)  # not all 255
        assert image[0, 0].tolist() == [0, 0, 0] and image[0, -1].tolist() == [255, 255, 255]


def test_sixteen_bit_pil_image_through_the_api() -> None:
    image = Image.fromarray(np.full((4, 6), 32896, np.uint16))  # mid-grey in 16 bits
    assert image_to_tensor(image).mul(255).round().unique().tolist() == [128.0]


def oriented(tmp_path: Path, suffix: str) -> tuple[Path, np.ndarray]:
    """A 20 x 40 (H x W) image stored with EXIF orientation 6 (the viewer turns it 90 deg clockwise)."""
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :10] = (255, 0, 0)  # red on the stored left edge
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / f"turned{suffix}"
    Image.fromarray(pixels).save(path, exif=exif, **({"quality": 95} if suffix == ".jpg" else {}))
    return path, pixels


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_exif_orientation_is_applied_for_user_images_only(tmp_path: Path, suffix: str) -> None:
    path, pixels = oriented(tmp_path, suffix)
    shown = load_image(path)
    assert shown.shape == (40, 20, 3)  # turned upright: the stored left edge is now the top
    assert shown[:8, :, 0].min() > 200 and shown[-8:, :, 0].max() < 60
    assert read_image(path).shape == (20, 40, 3)  # datasets: the stored grid the masks are in


def test_palette_grayscale_and_alpha_become_rgb(tmp_path: Path) -> None:
    palette = Image.new("P", (4, 2))
    palette.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    palette.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    palette.save(tmp_path / "palette.png")
    assert load_image(tmp_path / "palette.png")[0, :2].tolist() == [[10, 20, 30], [200, 100, 50]]

    Image.fromarray(np.full((3, 3), 77, np.uint8)).save(tmp_path / "gray.png")
    assert load_image(tmp_path / "gray.png").reshape(-1, 3).tolist() == [[77, 77, 77]] * 9

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (0, 0, 255, 255)  # opaque blue; the rest transparent (stored colour: black)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    image = load_image(tmp_path / "rgba.png")
    assert image[0, 0].tolist() == [0, 0, 255] and image[1, 1].tolist() == [255, 255, 255]

    la = Image.fromarray(np.array([[[40, 255], [40, 0]]], np.uint8), "LA")
    la.save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png")[0].tolist() == [[40, 40, 40], [255, 255, 255]]

    transparent = Image.new("P", (2, 1))
    transparent.putpalette([5, 6, 7, 0, 0, 0] + [0] * 762)
    transparent.putdata([0, 1])
    transparent.save(tmp_path / "transparent.png", transparency=1)
    assert load_image(tmp_path / "transparent.png")[0].tolist() == [[5, 6, 7], [255, 255, 255]]


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_large_images_are_downscaled_before_the_model(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"large{suffix}"
    Image.new("RGB", (1000, 400), (0, 128, 255)).save(path)
    assert load_image(path, max_side=250).shape == (100, 250, 3)
    assert load_image(path).shape == (400, 1000, 3)  # under MAX_SIDE: unchanged
    assert read_image(path).shape == (400, 1000, 3)
    assert MAX_SIDE >= 1008  # never below what the largest model input (1008 px) can use


def test_export_calibration_images_use_the_loader(tmp_path: Path) -> None:
    gradient16(tmp_path / "deep.png")
    (tensor,) = letterboxed_images([tmp_path / "deep.png"], 32)
    assert tensor.shape == (3, 32, 32) and tensor.std() > 0.1  # a gradient, not a white page


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        (b"", "the file is empty"),
        (b"this is not an image\n", "not an image; expected an image file"),
        ("half-jpeg", "JPEG is truncated"),
        ("bad-png", "corrupt image"),
        ("directory", "is a directory"),
    ],
)
def test_unreadable_files_give_one_line_errors_naming_the_file(tmp_path: Path, content, expected) -> None:
    path = tmp_path / "photo.png"
    if content == "half-jpeg":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(path, format="JPEG")
        path.write_bytes(path.read_bytes()[:300])
    elif content == "bad-png":
        Image.new("RGB", (64, 64), (1, 2, 3)).save(path)
        data = bytearray(path.read_bytes())
        data[60:80] = b"\x00" * 20  # damage the compressed pixel data
        path.write_bytes(bytes(data))
    elif content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_bytes(content)
    with pytest.raises(ImageReadError) as caught:
        load_image(path)
    message = str(caught.value)
    assert message.startswith(f"cannot read image {path}: ") and expected in message and "\n" not in message
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, DataFault)
    with pytest.raises(DataFault):
        read_image(path)  # the data loaders' contract: a DataFault to count and skip


def test_every_image_reader_goes_through_the_loader() -> None:
    # Decoding a photo anywhere else would bring back white 16-bit images and sideways photos.
    # Left out: masks (read as masks), and the concept world's in-memory JPEG round trip.
    allowed = {"data/image_io.py", "world/teacher/data.py"}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        text = path.read_text()
        if relative not in allowed and re.search(r"""\.convert\(\s*["']RGB["']\s*\)""", text):
            offenders.append(relative)
    assert not offenders, f"decode images with sam3spec.data.image_io.load_image: {offenders}"
