"""Shared fixtures: the example specs as parameters (STYLE #12)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml"))


def pytest_generate_tests(metafunc):
    if "spec_path" in metafunc.fixturenames:
        metafunc.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])


@pytest.fixture
def heat_path() -> Path:
    return ROOT / "specs" / "heat.yaml"
