"""PNG plots of a run directory: solution/exact/error, losses per term, error against time.

Reads only the files a run writes (`solution.npz`, `metrics.jsonl`), so it
works on any run directory, including those of standalone scripts.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _metrics(run_dir: Path) -> list[dict]:
    path = run_dir / "metrics.jsonl"
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _number(value) -> float:
    """A metric as a float: null (a non-finite value in `metrics.jsonl`) or absent is NaN, a gap in the curve."""
    return np.nan if value is None else float(value)


def plot_run(run_dir: str | Path) -> list[Path]:
    """Write every plot that the run's data supports; return their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    written = []
    records = _metrics(run_dir)
    if records:
        fig, ax = plt.subplots(figsize=(6, 4))
        steps = [r["step"] for r in records]
        for term in records[-1]["losses"]:
            ax.semilogy(steps, [max(_number(r["losses"].get(term)), 1e-300) for r in records], label=term)
        ax.semilogy(steps, [_number(r["loss"]) for r in records], "k--", label="total")
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.legend()
        ax.set_title("loss per term")
        written.append(_save(fig, run_dir / "loss.png"))
        if any("rel_l2" in r for r in records):
            fig, ax = plt.subplots(figsize=(6, 4))
            for u in records[-1].get("rel_l2", {}):
                pts = [(r["time_s"], _number(r["rel_l2"][u])) for r in records if u in r.get("rel_l2", {})]
                if pts:
                    ax.loglog(*zip(*pts), marker="o", ms=3, label=u)
            ax.set_xlabel("wall time [s]")
            ax.set_ylabel("relative L2 error")
            ax.legend()
            ax.set_title("error against time")
            written.append(_save(fig, run_dir / "error.png"))
        weighted = [r for r in records if "weights" in r]
        if weighted and len(weighted[-1]["weights"]) > 1 and any(r["weights"] != weighted[0]["weights"] for r in weighted):
            # only when the weights changed (an adaptive weighting): fixed weights make flat lines
            fig, ax = plt.subplots(figsize=(6, 4))
            for term in weighted[-1]["weights"]:
                ax.semilogy([r["step"] for r in weighted], [r["weights"][term] for r in weighted], label=term)
            ax.set_xlabel("step")
            ax.set_ylabel("weight")
            ax.legend()
            written.append(_save(fig, run_dir / "weights.png"))
    solution = run_dir / "solution.npz"
    if solution.exists():
        written += _plot_solution(plt, solution, run_dir)
    return written


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def _triangulation(x: np.ndarray, y: np.ndarray, data: dict):
    """The Delaunay triangles of the points, less those whose centre lies outside the domain
    (a hole, the removed quadrant of an L) when the run saved its outline."""
    from matplotlib.tri import Triangulation

    mesh = Triangulation(x, y)
    if "outline_signed" in data:
        gx, gy, signed = data["outline_x"], data["outline_y"], data["outline_signed"]
        cx, cy = x[mesh.triangles].mean(axis=1), y[mesh.triangles].mean(axis=1)
        i = np.clip(np.rint((cx - gx[0]) / (gx[-1] - gx[0]) * (len(gx) - 1)).astype(int), 0, len(gx) - 1)
        j = np.clip(np.rint((cy - gy[0]) / (gy[-1] - gy[0]) * (len(gy) - 1)).astype(int), 0, len(gy) - 1)
        mesh.set_mask(signed[i, j] > 0)
    return mesh


def _plot_solution(plt, path: Path, run_dir: Path) -> list[Path]:
    with np.load(path) as npz:
        data = {k: npz[k] for k in npz.files}
    X, prediction = data["X"], data["prediction"]
    variables, unknowns = list(data["variables"]), list(data["unknowns"])
    written = []
    for j, u in enumerate(unknowns):
        exact = data.get(f"exact_{u}")
        panels = [("prediction", prediction[:, j])]
        if exact is not None:
            panels += [("exact", exact), ("|error|", np.abs(prediction[:, j] - exact))]
        if X.shape[1] == 1:
            fig, ax = plt.subplots(figsize=(6, 4))
            order = np.argsort(X[:, 0])
            ax.plot(X[order, 0], prediction[order, j], label="prediction")
            if exact is not None:
                ax.plot(X[order, 0], exact[order], "--", label="exact")
            ax.set_xlabel(variables[0])
            ax.set_ylabel(u)
            ax.legend()
        else:
            # 2 inputs: the plane itself; more: the slice through the middle of the others.
            fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
            keep = np.ones(len(X), dtype=bool)
            for k in range(2, X.shape[1]):
                values = np.unique(X[:, k])
                if len(values) > 50:
                    keep = None
                    break
                keep &= X[:, k] == values[len(values) // 2]
            if keep is None:  # scattered points: nothing sensible to draw
                plt.close(fig)
                continue
            # prediction and exact on one colour scale, so that their colours compare
            shared = np.concatenate([v[keep] for t, v in panels if t != "|error|"])
            shared = shared[np.isfinite(shared)]
            for ax, (title, values) in zip(axes[0], panels):
                levels = 50
                if title != "|error|" and shared.size and shared.max() > shared.min():
                    levels = np.linspace(shared.min(), shared.max(), 51)
                finite = keep & np.isfinite(values)  # an exact such as sin(x)/x is NaN on part of the boundary: left blank
                if finite.sum() >= 3:
                    mesh = _triangulation(X[finite, 0], X[finite, 1], data)
                    sc = ax.tricontourf(mesh, values[finite], levels=levels, cmap="viridis", extend="both")
                    fig.colorbar(sc, ax=ax)
                if "outline_signed" in data:
                    ax.contour(data["outline_x"], data["outline_y"], data["outline_signed"].T, levels=[0], colors="k", linewidths=0.8)
                ax.set_xlabel(variables[0])
                ax.set_ylabel(variables[1])
                ax.set_title(f"{u}: {title}")
        written.append(_save(fig, run_dir / f"solution_{u}.png"))
    return written
