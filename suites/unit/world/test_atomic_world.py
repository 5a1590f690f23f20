"""``generate_world`` writes a world whole or not at all: Ctrl-C mid-way leaves no world (or the
previous one), never a half-written tree without ``world.json``."""

from __future__ import annotations

import pytest

from sam3spec.world import WorldConfig, generate_world, writer

TINY = WorldConfig(image_size=48)


def _interrupt_after(monkeypatch, calls: int) -> None:
    original = writer.write_sa1b
    count = {"n": 0}

    def write(*args, **kwargs):
        count["n"] += 1
        if count["n"] > calls:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(writer, "write_sa1b", write)


def test_an_interrupted_first_run_leaves_nothing(tmp_path, monkeypatch):
    _interrupt_after(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        generate_world(tmp_path / "world", 8, 0, seed=0, config=TINY, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_an_interrupted_overwrite_leaves_the_previous_world(tmp_path, monkeypatch):
    world = tmp_path / "world"
    generate_world(world, 3, 0, seed=0, config=TINY, progress=False)
    (world / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(world).as_posix() for p in world.rglob("*"))
    _interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        generate_world(world, 6, 0, seed=1, config=TINY, progress=False, overwrite=True)
    assert sorted(p.relative_to(world).as_posix() for p in world.rglob("*")) == before
    assert [p.name for p in tmp_path.iterdir()] == ["world"]
