"""The shipped text-prompt vocabulary (LVIS + COCO category names) and vocabulary files."""

from __future__ import annotations

import pytest

from sam3spec.data.vocabulary import DEFAULT_VOCABULARY, default_vocabulary, read_vocabulary


def test_the_shipped_vocabulary_holds_lvis_and_coco_names_once_each() -> None:
    phrases = default_vocabulary()
    assert len(phrases) == 1214  # 1,198 LVIS names once qualifiers are dropped + 16 COCO-only names
    assert len(set(phrases)) == len(phrases)
    assert all(
        phrase == phrase.strip().lower() and "_" not in phrase and "(" not in phrase for phrase in phrases
    )
    assert phrases[:3] == ("aerosol can", "air conditioner", "airplane")  # LVIS category-id order
    assert {"bat", "bow", "trash can", "baby buggy", "band aid"} <= set(phrases)  # LVIS, cleaned
    assert {"fire hydrant", "sports ball", "hair drier", "tv", "dining table"} <= set(phrases)  # COCO
    assert DEFAULT_VOCABULARY.is_file()


def test_coco_names_are_all_in_the_shipped_vocabulary() -> None:
    from torchvision.models._meta import _COCO_CATEGORIES  # COCO's names as torchvision lists them

    coco = [name for name in _COCO_CATEGORIES if name not in ("__background__", "N/A")]
    assert len(coco) == 80
    assert set(coco) <= set(default_vocabulary())


def test_a_vocabulary_file_is_read_cleaned_and_checked(tmp_path) -> None:
    path = tmp_path / "phrases.txt"
    path.write_text("# my phrases\nRed  Car\n\nred car\n  dog \n", encoding="utf-8")
    assert read_vocabulary(path) == ("red car", "dog")
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_vocabulary(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n\n")
    with pytest.raises(ValueError, match="holds no phrase"):
        read_vocabulary(tmp_path / "empty.txt")
