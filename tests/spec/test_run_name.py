"""The run's `name` names files, not math: built-in names are fine, odd characters are not."""

from __future__ import annotations

import pytest

from pdec.errors import SpecError
from pdec.spec.load import load_spec_text

BODY = "domain: {x: [0, 1]}\nunknowns: [u]\nequations:\n  - u_xx = 0\n"


@pytest.mark.parametrize("name", ["d", "sin", "pi", "heat-1d.v2"])
def test_a_run_may_have_a_built_in_name(name):
    assert load_spec_text(f"name: {name}\n" + BODY, "s.yaml").name == name


def test_an_invalid_run_name_is_located():
    with pytest.raises(SpecError) as caught:
        load_spec_text("name: a/b\n" + BODY, "s.yaml")
    assert caught.value.message.startswith("invalid run name `a/b`: use letters, digits")
    assert (caught.value.loc.line, caught.value.loc.col) == (1, 7)
