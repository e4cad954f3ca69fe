"""NTK spectra of each loss term at initialization and at a run's checkpoints.

``K_kk = J_k J_kᵀ`` with ``J_k = ∂r_k/∂θ`` on a few hundred points per term
(Wang, Yu & Perdikaris, "When and why PINNs fail to train", 2020). A term whose eigenvalues sit
orders of magnitude below another's trains that much slower under gradient
descent: the picture behind the NTK loss weights. `pdec ntk` writes the
eigenvalues to ``ntk.npz`` and draws them in ``ntk.png``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch



def run_overrides(run_dir: Path) -> list[str]:
    """The network shape a run was trained with (its ``resolved.json``), as spec overrides."""
    resolved = run_dir / "resolved.json"
    if not resolved.exists():
        return []
    model = json.loads(resolved.read_text(encoding="utf-8")).get("model", {})
    return [f"model.hidden={list(model['hidden'])}"] if "hidden" in model else []


def ntk_spectra_report(problem, *, run: Path | None = None, points: int = 256, out: str | Path | None = None) -> tuple[Path, Path]:
    """Compute the spectra of ``problem`` (a compiled `Problem`) at initialization
    and at every checkpoint in ``run``; write ``ntk.npz`` and ``ntk.png`` into
    ``out`` (default: the run, else ``runs/<name>``) and return their paths."""
    from ..runtime.losses import term_residuals
    from ..runtime.ntk import ntk_spectra
    from ..runtime.rundir import checkpoint_step, list_checkpoints, load_checkpoint
    from ..runtime.sampling import Sampler

    run_dir = run
    definition = problem.definition
    sampler = Sampler(definition, definition.training, dtype=torch.float64, device="cpu", seed=definition.training.seed, points=points)
    batches = sampler.draw()
    states = [("init", None)]
    if run_dir is not None:
        states += [(f"step {checkpoint_step(p)}", p) for p in list_checkpoints(run_dir)]
    arrays: dict[str, np.ndarray] = {}
    labels, steps = [], []
    for label, path in states:
        if path is not None:
            problem.model.load_state_dict(load_checkpoint(path)["model"])
        spectra = ntk_spectra(problem, lambda: term_residuals(problem, batches), points)
        index = len(labels)
        labels.append(label)
        steps.append(0 if path is None else checkpoint_step(path))
        for term, eig in spectra.items():
            arrays[f"eig_{index}_{term}"] = eig.detach().cpu().numpy()
    out_dir = Path(out) if out is not None else (run_dir or Path("runs") / problem.name)
    out_dir.mkdir(parents=True, exist_ok=True)
    terms = [t.name for t in definition.terms]
    npz = out_dir / "ntk.npz"
    np.savez_compressed(npz, labels=np.array(labels), steps=np.array(steps), terms=np.array(terms), **arrays)
    png = plot_ntk(npz, out_dir / "ntk.png")
    return npz, png


def plot_ntk(npz: str | Path, png: str | Path) -> Path:
    """Eigenvalues in descending order, log scale: one colour per term, darker for
    later checkpoints; values below 1e-14 of a curve's largest (round-off) are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = np.load(npz)
    labels, terms = list(data["labels"]), list(data["terms"])
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for j, term in enumerate(terms):
        for i, label in enumerate(labels):
            key = f"eig_{i}_{term}"
            if key not in data:
                continue
            eig = data[key]
            eig = eig[eig > 1e-14 * eig.max()] if eig.size and eig.max() > 0 else eig[:0]  # round-off below
            shade = 0.35 + 0.65 * (i + 1) / len(labels)
            ax.semilogy(
                np.arange(1, len(eig) + 1), eig, color=colours[j % len(colours)], alpha=shade,
                ls="-" if i == len(labels) - 1 else "--", label=f"{term}, {label}",
            )
    ax.set_xlabel("index")
    ax.set_ylabel("eigenvalue of K_kk")
    ax.set_title("NTK spectrum per loss term")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)
