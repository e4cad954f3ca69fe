from __future__ import annotations

import pytest

SMALL = ["model.hidden=[8, 8]", "training.points={interior: 64, boundary: 16, initial: 16}", "training.log_every=5"]


@pytest.fixture
def small() -> list[str]:
    """Overrides that make any spec train in well under a second per step."""
    return list(SMALL)
