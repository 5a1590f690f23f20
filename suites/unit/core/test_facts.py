"""The stored preset facts ``sam3spec info`` reads equal what the code computes (so they cannot
drift), and reading them needs no torch."""

from __future__ import annotations

import json
import subprocess
import sys

from sam3spec.config import PRESETS, SEED_PRESET
from sam3spec.facts import FACTS_FILE, RESOLUTIONS, compute_facts, config_key, stored_info


def test_stored_facts_equal_a_live_count():
    stored = json.loads(FACTS_FILE.read_text())
    assert stored == compute_facts(RESOLUTIONS), "run `python -m sam3spec.facts` to rewrite the stored facts"
    assert set(stored) == set(PRESETS)


def test_a_changed_configuration_is_counted_live(monkeypatch):
    from dataclasses import replace

    assert stored_info(SEED_PRESET, (504,)) is not None
    assert stored_info(SEED_PRESET, (640,)) is None  # a resolution that was not stored
    monkeypatch.setitem(PRESETS, SEED_PRESET, replace(PRESETS[SEED_PRESET], hidden=128))
    assert config_key(SEED_PRESET) != json.loads(FACTS_FILE.read_text())[SEED_PRESET]["config_key"]
    assert stored_info(SEED_PRESET, (504,)) is None


def test_info_of_a_registered_preset_imports_no_torch():
    code = (
        "import sys; from sam3spec.cli import main; "
        f"code = main(['info', '--preset', '{SEED_PRESET}', '--json']); "
        "print('torch' in sys.modules, code, file=sys.stderr)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stderr.strip().endswith("False 0")
    assert json.loads(result.stdout)["params"]["total"] == 100_970_544
