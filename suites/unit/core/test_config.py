"""Presets, overrides and config (de)serialisation."""

import pytest

from sam3spec.config import PRESETS, SEED_PRESET, config_from_dict, config_to_dict, get_preset, override


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip(name):
    config = get_preset(name)
    assert config_from_dict(config_to_dict(config)) == config


def test_unknown_preset_names_known_ones():
    with pytest.raises(KeyError, match="unknown preset 'nope'; known presets: .*efficientsam3-tiny"):
        get_preset("nope")


def test_override_and_unknown_fields():
    config = override(get_preset(SEED_PRESET), {"detr.num_queries": 50, "image_size": 1008})
    assert config.detr.num_queries == 50 and config.image_size == 1008
    with pytest.raises(KeyError, match="unknown field 'colour'"):
        override(config, {"detr.colour": 1})
    with pytest.raises(KeyError, match="unknown field"):
        config_from_dict({"nope": 1})
