"""Shared fixtures: the example specs as parameters, and overrides that make a spec train fast.

The test tree mirrors the package: tests/spec, tests/lang, tests/plan, tests/codegen,
tests/taylor, tests/runtime, tests/report; pipeline-wide tests at the top.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SPECS = sorted((ROOT / "specs").glob("*.yaml")) + sorted((ROOT / "benchmarks" / "specs").glob("*.yaml"))
"""The example specs, and the benchmarks' own (every shipped spec is compiled by the tests)."""


def pytest_generate_tests(metafunc):
    if "spec_path" in metafunc.fixturenames:
        metafunc.parametrize("spec_path", SPECS, ids=[p.stem for p in SPECS])


@pytest.fixture
def heat_path() -> Path:
    return ROOT / "specs" / "heat.yaml"


SMALL = ["model.hidden=[8, 8]", "training.points={interior: 64, boundary: 16, initial: 16}", "training.log_every=5"]


@pytest.fixture
def small() -> list[str]:
    """Overrides that make any spec train in well under a second per step."""
    return list(SMALL)
