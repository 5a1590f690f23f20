"""Stored facts of the registered presets (parameters per component, GMACs), read without torch.

Counting the seed preset's parameters and multiply-accumulates needs torch, timm and open_clip
imported and two forwards traced (on the meta device, :func:`sam3spec.info.preset_info`): about
ten seconds on a 2-core CPU, most of it imports. ``sam3spec info`` instead reads
``preset_facts.json``, written by ``python -m sam3spec.facts`` from that same computation. Each
entry carries the hash of the preset's configuration it was computed from: a preset whose
configuration changed no longer matches and is counted live, and a unit test recomputes every
entry so the file cannot drift from the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from sam3spec.config import PRESETS, config_to_dict

FACTS_FILE = Path(__file__).with_name("preset_facts.json")
RESOLUTIONS = (504, 1008)


def config_key(preset: str) -> str:
    """Hash of a preset's configuration (what its facts were computed from)."""
    payload = json.dumps(config_to_dict(PRESETS[preset]), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def stored_info(preset: str, resolutions: tuple[int, ...]) -> dict[str, Any] | None:
    """:func:`sam3spec.info.model_info`'s result for ``preset`` from the stored file, or None when
    the preset, its current configuration or one of the resolutions is not in it."""
    if preset not in PRESETS or not FACTS_FILE.is_file():
        return None
    entry = json.loads(FACTS_FILE.read_text()).get(preset)
    if entry is None or entry.get("config_key") != config_key(preset):
        return None
    if any(str(resolution) not in entry["gmacs"] for resolution in resolutions):
        return None
    gmacs = {str(r): entry["gmacs"][str(r)] for r in resolutions}
    return {"preset": preset, "params": entry["params"], "gmacs": gmacs}


def compute_facts(resolutions: tuple[int, ...] = RESOLUTIONS) -> dict[str, Any]:
    """Every registered preset's facts, computed live (imports torch and builds on the meta device)."""
    from sam3spec.info import preset_info

    facts = {}
    for preset in sorted(PRESETS):
        info = preset_info(preset, resolutions)
        facts[preset] = {"config_key": config_key(preset), "params": info["params"], "gmacs": info["gmacs"]}
    return facts


def main() -> None:
    from sam3spec.atomic import atomic_write_json

    atomic_write_json(compute_facts(), FACTS_FILE, indent=2, sort_keys=False)
    print(f"wrote {FACTS_FILE}")


if __name__ == "__main__":
    main()
