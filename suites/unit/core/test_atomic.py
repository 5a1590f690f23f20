"""Atomic folders: a tree appears whole or not at all; an interrupted write leaves the previous tree."""

from __future__ import annotations

import pytest

from sam3spec.atomic import atomic_directory, atomic_write_folder


def _siblings(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_new_tree_appears_only_at_the_end(tmp_path):
    target = tmp_path / "out" / "tree"
    with atomic_directory(target) as staging:
        (staging / "a.txt").write_text("a")
        assert not target.exists() and staging.parent == target.parent
    assert (target / "a.txt").read_text() == "a"
    assert _siblings(target.parent) == ["tree"]
    assert target.stat().st_mode & 0o777 != 0o700  # not mkdtemp's private mode


@pytest.mark.parametrize("error", [KeyboardInterrupt, ValueError])
def test_an_interrupted_write_leaves_the_previous_tree(tmp_path, error):
    target = tmp_path / "tree"
    atomic_write_folder(target, lambda folder: (folder / "old.txt").write_text("old"))
    with pytest.raises(error), atomic_directory(target) as staging:
        (staging / "new.txt").write_text("half")
        raise error
    assert _siblings(target) == ["old.txt"] and _siblings(tmp_path) == ["tree"]


def test_kept_entries_move_into_the_new_tree(tmp_path):
    target = tmp_path / "tree"
    target.mkdir()
    (target / "generated").write_text("old")
    (target / "notes.txt").write_text("mine")
    with atomic_directory(target, keep=lambda name: name != "generated") as staging:
        (staging / "generated").write_text("new")
    assert (target / "generated").read_text() == "new" and (target / "notes.txt").read_text() == "mine"
    assert _siblings(tmp_path) == ["tree"]


def test_the_working_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for target in (".", tmp_path, tmp_path.parent):
        with pytest.raises(ValueError, match="working folder"), atomic_directory(target):
            pass
