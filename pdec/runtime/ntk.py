"""Per-point parameter gradients of the residuals: NTK traces and NTK blocks.

For a loss term with residuals ``r_k [M]``, the neural tangent kernel block
is ``K_kk = J_k J_kᵀ`` with ``J_k = ∂r_k/∂θ`` (Wang, Yu & Perdikaris 2020);
its trace ``Tr K_kk = Σ_m ‖∂r_{k,m}/∂θ‖²`` drives the NTK loss weights.
Rows of ``J_k`` come from ONE backward pass of ``Σ_m r_{k,m}`` over the
selected entries, using the recorded view of each linear layer in a Taylor
pass (``pdec.taylor.record``, as for KFAC): with input streams
``a [S, N, in]`` and output-stream gradients ``g [S, N, out]``, a residual
entry that depends only on point ``n`` has ``∂r_n/∂W = Σ_s g[s,n] a[s,n]ᵀ``
(and ``∂r_n/∂b = g[0,n]``). No per-point loops, no full kernel.

Exact for equations, boundary and initial conditions (one entry per point)
and for periodic terms (their two passes are summed row by row); for a data
term observing several unknowns, entries of different unknowns at the same
point are merged into one row. Learnable PDE coefficients
(``problem.parameters``) are not part of ``θ`` here: the kernel is the
network's.
"""

from __future__ import annotations

import torch

from pdec.taylor import Recording, record_passes


def _entries_per_point(problem, name: str) -> int:
    """How many residual entries share one point (periodic: one per derivative and unknown)."""
    term = problem.definition.term(name)
    if term.kind == "periodic":
        return len(problem.definition.point_sets[term.point_set].operators) * len(problem.unknowns)
    return 1


def select_entries(n_entries: int, per_point: int, n_points: int) -> torch.Tensor:
    """``n_points`` evenly spaced residual entries among the first point's block (no RNG)."""
    rows = max(n_entries // max(per_point, 1), 1)
    m = min(n_points, rows)
    return torch.unique(torch.linspace(0, rows - 1, m).round().long())


def term_groups(problem) -> list[list[str]]:
    """The terms, grouped so that one residual evaluation per group lets each
    term be differentiated once without backpropagating any graph twice (the
    equations share the interior pass, and the fused runtime allows one
    backward per pass)."""
    names = [t.name for t in problem.definition.terms]
    equations = [t.name for t in problem.definition.terms_of("equation")]
    others = [n for n in names if n not in equations]
    groups = [[e] for e in equations] or [[]]
    groups[0] = groups[0] + others
    return groups


def ntk_jacobians(problem, residual_fn, n_points: int) -> dict[str, torch.Tensor]:
    """``{term: J_k [M_k, P]}``: rows ``∂r_{k,m}/∂θ`` on up to ``n_points`` entries per term.

    ``θ`` is the network's weights and biases, flattened layer by layer
    (``W`` row-major then ``b``), the order of ``model.parameters()``.
    """
    model = problem.model
    weights = [p for layer in model.linear_layers() for p in (layer.weight, layer.bias)]
    out: dict[str, torch.Tensor] = {}
    for group in term_groups(problem):
        with record_passes(model) as passes, torch.enable_grad():
            residuals = residual_fn()
        for name in (n for n in group if n in residuals):
            r = residuals[name]
            idx = select_entries(r.numel(), _entries_per_point(problem, name), n_points)
            if not r.requires_grad:  # a residual that does not depend on the network
                out[name] = r.new_zeros(len(idx), sum(w.numel() for w in weights))
                continue
            passes.clear_grads()  # the previous term's backward reached other passes
            torch.autograd.grad(r[idx].sum(), weights, retain_graph=True, allow_unused=True)
            out[name] = _rows(passes, idx)
    return out


def _rows(passes: Recording, idx: torch.Tensor) -> torch.Tensor:
    """Rows ``idx`` of the per-point gradient, summed over the passes that got a
    gradient in the last backward."""
    got = passes.with_grads()
    if not got:
        raise RuntimeError("no gradient reached a linear layer; is the residual independent of the network?")
    blocks = []
    for li in range(passes.n_layers):
        total = None
        for p in got:
            a, g = passes[p][li].a, passes[p][li].g
            rows = idx[idx < a.shape[1]]
            a_r, g_r = a[:, rows], g[:, rows]
            gW = torch.einsum("smo,smi->moi", g_r, a_r).reshape(len(rows), -1)
            block = torch.cat([gW, g_r[0]], dim=1)  # the bias acts on the value stream only
            if len(rows) < len(idx):
                block = torch.cat([block, block.new_zeros(len(idx) - len(rows), block.shape[1])])
            total = block if total is None else total + block
        blocks.append(total)
    return torch.cat(blocks, dim=1)


def ntk_traces(problem, residual_fn, n_points: int) -> dict[str, tuple[float, int]]:
    """``{term: (Tr K_kk, M_k)}`` on up to ``n_points`` entries per term."""
    return {
        name: (float(J.square().sum()), J.shape[0]) for name, J in ntk_jacobians(problem, residual_fn, n_points).items()
    }


def ntk_spectra(problem, residual_fn, n_points: int) -> dict[str, torch.Tensor]:
    """``{term: eigenvalues of K_kk = J_k J_kᵀ}``, descending."""
    out = {}
    for name, J in ntk_jacobians(problem, residual_fn, n_points).items():
        K = J @ J.T
        out[name] = torch.linalg.eigvalsh(K).flip(0).clamp_min(0)
    return out
