"""Noun phrases of the concept world: granularities, positives, negatives and hard negatives.

A phrase names up to three attributes, ``[size] [colour] noun`` where the noun is a shape or the
generic "shape": "circle", "red circle", "large red circle", "red shape", "large circle". Its
instances are *all* objects whose attributes match (SA-Co annotates exhaustively), so "circle"
may have several instances and "red shape" mixes shapes.

* positive: at least one instance;
* hard negative: a present object's phrase with exactly one attribute changed, matching nothing
  ("blue circle" when only a red circle exists);
* negative: any other phrase matching nothing.

Held-out split rule: a phrase is *held out* when it names both a colour and a shape and that
``(colour, shape)`` pair is in ``WorldConfig.held_out_pairs``. Training phrases never are; every
eval image asks at least one held-out phrase about an object planted for it, so the eval split
contains compositions never seen in training text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from sam3spec.world.shapes import WorldObject

POSITIVE, HARD_NEGATIVE, NEGATIVE = "positive", "hard_negative", "negative"

# Attribute sets a phrase can name, coarse to fine; "colour" alone reads "red shape".
TEMPLATES: tuple[tuple[str, ...], ...] = (
    ("shape",),
    ("colour", "shape"),
    ("size", "colour", "shape"),
    ("colour",),
    ("size", "shape"),
)


@dataclass(frozen=True)
class Phrase:
    """A noun phrase as attributes; None means "any"."""

    shape: str | None = None
    colour: str | None = None
    size: str | None = None

    @property
    def text(self) -> str:
        return " ".join(word for word in (self.size, self.colour, self.shape or "shape") if word)

    def matches(self, obj: WorldObject) -> bool:
        return (
            (self.shape is None or self.shape == obj.shape)
            and (self.colour is None or self.colour == obj.colour)
            and (self.size is None or self.size == obj.size)
        )

    @property
    def pair(self) -> tuple[str, str] | None:
        """``(colour, shape)`` when the phrase names both, else None."""
        return (self.colour, self.shape) if self.colour and self.shape else None

    @classmethod
    def parse(cls, text: str, shapes: Sequence[str], colours: Sequence[str], sizes: Sequence[str]) -> Phrase:
        """Inverse of :attr:`text` for the given vocabularies."""
        *modifiers, noun = text.split()
        shape = None if noun == "shape" else noun
        if shape is not None and shape not in shapes:
            raise ValueError(f"unknown noun {noun!r} in {text!r}")
        colour = next((word for word in modifiers if word in colours), None)
        size = next((word for word in modifiers if word in sizes), None)
        if len(modifiers) != (colour is not None) + (size is not None):
            raise ValueError(f"unknown modifier in {text!r}")
        return cls(shape=shape, colour=colour, size=size)


@dataclass(frozen=True)
class PhraseQuery:
    """A phrase asked about one image and its exhaustive instance list (object indices)."""

    phrase: Phrase
    instances: tuple[int, ...]
    kind: str


def phrase_of(obj: WorldObject, template: Sequence[str]) -> Phrase:
    """The phrase naming ``template``'s attributes of ``obj``."""
    return Phrase(
        shape=obj.shape if "shape" in template else None,
        colour=obj.colour if "colour" in template else None,
        size=obj.size if "size" in template else None,
    )


def instances_of(phrase: Phrase, objects: Sequence[WorldObject]) -> tuple[int, ...]:
    """Indices of the objects a phrase names."""
    return tuple(index for index, obj in enumerate(objects) if phrase.matches(obj))


def is_held_out(phrase: Phrase, held_out_pairs: Sequence[tuple[str, str]]) -> bool:
    """The split rule: the phrase names a held-out ``(colour, shape)`` pair."""
    return phrase.pair is not None and phrase.pair in set(map(tuple, held_out_pairs))


def _vocabulary(attribute: str, shapes: Sequence[str], colours: Sequence[str], sizes: Sequence[str]):
    return {"shape": shapes, "colour": colours, "size": sizes}[attribute]


def sample_queries(
    objects: Sequence[WorldObject],
    rng: np.random.Generator,
    *,
    shapes: Sequence[str],
    colours: Sequence[str],
    sizes: Sequence[str],
    positives: int,
    hard_negatives: int,
    negatives: int,
    allowed: Callable[[Phrase], bool],
    first: Phrase | None = None,
) -> list[PhraseQuery]:
    """Choose the phrases asked about one image.

    Args:
        objects: the image's objects (index = annotation order).
        rng: the image's random stream.
        shapes: shape vocabulary.
        colours: colour vocabulary.
        sizes: size vocabulary.
        positives: at most this many positive phrases.
        hard_negatives: at most this many hard negatives.
        negatives: at most this many other negatives.
        allowed: filter implementing the split rule (train: no held-out pair).
        first: a phrase that must be asked first (the eval split's held-out phrase).

    Returns:
        Distinct queries: positives first, then hard negatives, then negatives.
    """
    chosen: dict[Phrase, PhraseQuery] = {}

    def add(phrase: Phrase, kind: str) -> None:
        if phrase not in chosen and phrase.text != "shape":
            chosen[phrase] = PhraseQuery(phrase, instances_of(phrase, objects), kind)

    if first is not None:
        add(first, POSITIVE if instances_of(first, objects) else NEGATIVE)
    candidates = [(o, t) for o in range(len(objects)) for t in range(len(TEMPLATES))]
    for position in rng.permutation(len(candidates)):
        if sum(q.kind == POSITIVE for q in chosen.values()) >= positives:
            break
        obj, template = candidates[position]
        phrase = phrase_of(objects[obj], TEMPLATES[template])
        if allowed(phrase):
            add(phrase, POSITIVE)
    target = len(chosen) + hard_negatives
    for position in rng.permutation(len(candidates)):
        if len(chosen) >= target:
            break
        obj, template = candidates[position]
        attributes = TEMPLATES[template]
        attribute = attributes[rng.integers(len(attributes))]
        current = getattr(objects[obj], attribute)
        options = [v for v in _vocabulary(attribute, shapes, colours, sizes) if v != current]
        changed = replace(
            phrase_of(objects[obj], attributes), **{attribute: options[rng.integers(len(options))]}
        )
        if allowed(changed) and not instances_of(changed, objects):
            add(changed, HARD_NEGATIVE)
    target = len(chosen) + negatives
    for _ in range(20 * max(1, negatives)):
        if len(chosen) >= target:
            break
        template = TEMPLATES[rng.integers(len(TEMPLATES))]
        values = {a: _vocabulary(a, shapes, colours, sizes) for a in template}
        phrase = Phrase(**{a: v[rng.integers(len(v))] for a, v in values.items()})
        if allowed(phrase) and not instances_of(phrase, objects):
            add(phrase, NEGATIVE)
    return list(chosen.values())


def all_phrases(config=None) -> list[str]:
    """Every phrase the concept world can ask (all templates over its vocabularies), in a fixed
    order: the vocabulary of the exported text table and of export calibration."""
    from sam3spec.world.config import WorldConfig

    config = config or WorldConfig()
    vocabulary = {"shape": config.shapes, "colour": config.colours, "size": config.sizes}
    phrases: list[str] = []

    def expand(template: Sequence[str], chosen: dict[str, str]) -> None:
        if not template:
            phrase = Phrase(**chosen).text
            if phrase != "shape":
                phrases.append(phrase)
            return
        attribute, *rest = template
        for word in vocabulary[attribute]:
            expand(rest, {**chosen, attribute: word})

    for template in TEMPLATES:
        expand(template, {})
    return list(dict.fromkeys(phrases))
