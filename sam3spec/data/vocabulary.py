"""Text-prompt vocabularies: phrases asked on images that carry no phrases of their own (SA-1B).

SA-1B's masks have no names, so a text prompt on an SA-1B image is a phrase drawn from a
vocabulary (:class:`~sam3spec.data.prompts.PromptSampler`); its targets are unknown and come from
the teacher, which decides whether the concept is there: a phrase naming nothing in the image is a
negative. The package ships LVIS's 1,203 and COCO's 80 category names as the default
(``lvis_coco_vocabulary.txt``, 1,214 phrases after merging; its header says how it was made).

A vocabulary file is plain UTF-8 text, one phrase per line; blank lines and lines starting with
``#`` are skipped, phrases are lowercased, stripped, and kept once (first occurrence).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

DEFAULT_VOCABULARY = Path(__file__).with_name("lvis_coco_vocabulary.txt")


def read_vocabulary(path: str | Path) -> tuple[str, ...]:
    """The phrases of a vocabulary file, in file order.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not UTF-8 text or holds no phrase.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"vocabulary file {path}: no such file (one phrase per line)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise ValueError(f"vocabulary file {path} is not UTF-8 text: {error}") from error
    phrases = dict.fromkeys(
        " ".join(line.split()).lower() for line in lines if line.strip() and not line.lstrip().startswith("#")
    )
    if not phrases:
        raise ValueError(f"vocabulary file {path} holds no phrase (one phrase per line)")
    return tuple(phrases)


@lru_cache(maxsize=1)
def default_vocabulary() -> tuple[str, ...]:
    """The shipped vocabulary (LVIS + COCO category names)."""
    return read_vocabulary(DEFAULT_VOCABULARY)
