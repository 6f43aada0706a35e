"""Every catalogued experiment registers exactly its name, with buildable presets."""

import dataclasses

import pytest

from sciprob.catalog import CATALOG
from sciprob.experiments import REGISTRY, get_experiment


@pytest.mark.parametrize("name", sorted(CATALOG))
def test_catalog_entry_registers(name):
    spec = get_experiment(name)
    assert spec.name == name and name in REGISTRY
    assert "quick" in spec.presets and "paper" in spec.presets
    for preset in spec.presets:
        cfg = spec.build_config(preset)
        assert dataclasses.is_dataclass(cfg)
    assert spec.paper and spec.summary


def test_registered_names_are_catalogued():
    for name in sorted(CATALOG):
        get_experiment(name)
    stray = sorted(n for n in REGISTRY if n not in CATALOG and not n.startswith("test-"))
    assert not stray, f"experiments registered but missing from sciprob/catalog.py: {stray}"
