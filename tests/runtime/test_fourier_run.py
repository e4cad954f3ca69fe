"""Random Fourier features (`model.fourier`) through the product: the spec key and its errors,
`resolved.json`, a run that resumes bit-identically, and `pdec.load`/`pdec export` rebuilding
the same embedding from the run directory."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import pdec
from resume_check import assert_resume_is_bit_identical
from pdec.cli import main

ROOT = Path(__file__).resolve().parents[2]
HEAT = ROOT / "specs" / "heat.yaml"
FOURIER = "model.fourier={features: 6, scale: 1.5}"


def _settings(small: list[str]) -> list[str]:
    return small + [FOURIER, "training.optimizer=adam", "output.plots=false", "output.grid=9"]


def test_a_run_records_the_embedding_and_pdec_load_rebuilds_it(tmp_path, small):
    out = tmp_path / "run"
    result = pdec.solve(HEAT, steps=4, out=out, settings=_settings(small))
    model = result.problem.model
    assert model.embedding is not None and model.layers[0].in_features == 12
    resolved = json.loads((out / "resolved.json").read_text())
    assert resolved["model"]["fourier"] == {"features": 6, "scale": 1.5}
    trained = pdec.load(out)
    assert torch.equal(trained.problem.model.embedding.weight, model.embedding.weight)
    solution = np.load(out / "solution.npz")
    np.testing.assert_array_equal(trained.predict(solution["X"])["u"].numpy(), solution["prediction"][:, 0])


def test_resume_is_bit_identical(tmp_path, small):
    assert_resume_is_bit_identical(HEAT, _settings(small), tmp_path)


def test_resume_refuses_a_different_embedding(tmp_path, small, capsys):
    out = tmp_path / "run"
    pdec.solve(HEAT, steps=2, out=out, settings=_settings(small))
    sets = [a for s in small + ["model.fourier={features: 7}", "output.plots=false"] for a in ("--set", s)]
    assert main(["solve", str(HEAT), "--out", str(out), "--resume", "--steps", "3", "-q", *sets]) == 2
    assert "model.fourier" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_export_contains_the_embedding(tmp_path, small, capsys):
    out = tmp_path / "run"
    pdec.solve(HEAT, steps=2, out=out, settings=_settings(small))
    assert main(["export", str(out), "-o", str(tmp_path / "m.pt")]) == 0
    X = np.random.default_rng(0).random((9, 2))
    exported = torch.jit.load(str(tmp_path / "m.pt"))
    np.testing.assert_allclose(exported(torch.as_tensor(X))[:, 0].numpy(), pdec.load(out).predict(X)["u"].numpy(), rtol=1e-13)


@pytest.mark.parametrize(
    "value, message",
    [
        ("{features: 0}", "`model.fourier.features` must be between 1 and 4096"),
        ("{scale: 2}", "`model.fourier` needs `features`"),
        ("{features: 4, scale: 0}", "`model.fourier.scale` must be positive"),
        ("{features: 4, width: 3}", "unknown key `width` in `model.fourier`"),
        ("[4, 2]", "`model.fourier` must be a mapping"),
    ],
)
def test_bad_fourier_settings_are_located_errors(tmp_path, capsys, value, message):
    spec = tmp_path / "heat.yaml"
    spec.write_text(HEAT.read_text().replace("\nmodel:\n", f"\nmodel:\n  fourier: {value}\n", 1))
    assert main(["check", str(spec)]) == 2
    err = capsys.readouterr().err
    assert message in err and f"{spec}:" in err


def test_fourier_null_is_none(small):
    problem = pdec.compile(HEAT, overrides=small + ["model.fourier=null"])
    assert problem.model.embedding is None
