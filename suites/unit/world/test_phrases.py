"""The concept world's vocabulary: every phrase it can ask (the exported text table's default)."""

from __future__ import annotations

from sam3spec.world.phrases import all_phrases


def test_concept_world_vocabulary():
    phrases = all_phrases()
    assert len(phrases) == len(set(phrases))
    assert {"circle", "red circle", "large red circle", "red shape", "small star"} <= set(phrases)
    assert "shape" not in phrases
    # 7 shapes + 7 x 7 colour-shape + 2 x 7 x 7 size-colour-shape + 7 colours + 2 x 7 size-shape
    assert len(phrases) == 7 + 49 + 98 + 7 + 14
