"""Taylor-mode operators against nested autograd and torch.func.

Times the Laplacian over all d inputs and the mixed fourth-order operator
∂⁴u/∂x0²∂x1² of a tanh MLP (d → W → W → W → 1), forward only and forward +
backward (mean square of the operator, backpropagated to the weights), for

* ``pdec``      — ``TaylorMLP.taylor`` (the fused runtime for the Laplacian,
                  the generic one for the fourth-order operator),
* ``generic``   — pdec's generic runtime for the Laplacian (plain torch ops),
* ``autograd``  — nested ``torch.autograd.grad`` (one backward per dimension),
* ``func``      — ``torch.func``: ``vmap(hessian)`` for the Laplacian, four
                  nested ``jvp`` for the fourth-order operator.

The methods run interleaved, round by round; a speed-up is the median over
rounds of ``t_autograd / t_method`` (or ``t_func / t_pdec``), so a burst of
load on the machine hits both sides of a ratio. The column ``others`` is the
share of all CPUs that other processes used meanwhile: on a shared machine,
rows with a busy neighbour are not comparable (a parallel region waits for a
descheduled thread, which punishes many small operations far more than few
large ones); ``--quiet-wait`` waits for a quiet spell before each row. Peak memory is measured in a
child process whose glibc returns every block above 64 KiB to the OS
(``MALLOC_MMAP_THRESHOLD_=65536``), as the growth of the resident-set
high-water mark (``VmHWM``, reset through ``/proc/self/clear_refs``) over
the resident set before one call on a fresh model: CPU tensors only, the
same for every method. Linux only.

    python benchmarks/operators.py                       # the full grid (long)
    python benchmarks/operators.py --d 50 --width 64 256 --dtype float32 --ops laplacian --modes fwd+bwd
    python benchmarks/operators.py --json results.json
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pdec.taylor import Laplacian, Partial, TaylorMLP, plan_streams  # noqa: E402

DTYPES = {"float32": torch.float32, "float64": torch.float64}
OPS = ("laplacian", "d4xxyy")
MODES = ("fwd", "fwd+bwd")
METHODS = {"laplacian": ("pdec", "generic", "autograd", "func"), "d4xxyy": ("pdec", "autograd", "func")}


def make(d: int, width: int, depth: int, dtype: torch.dtype, n: int, seed: int = 0):
    torch.manual_seed(seed)
    net = TaylorMLP(d, [width] * depth, 1, "tanh", dtype=dtype)
    X = torch.rand(n, d, dtype=dtype, generator=torch.Generator().manual_seed(seed + 1))
    return net, X


def operator_of(op: str, d: int):
    return Laplacian(tuple(range(d))) if op == "laplacian" else Partial((0, 0, 1, 1))


def runner(method: str, op: str, mode: str, net: TaylorMLP, X: torch.Tensor):
    """A closure doing one evaluation (``fwd``) or one training step's worth of work."""
    d = X.shape[1]
    backward = mode == "fwd+bwd"
    target = operator_of(op, d)

    def finish(value):
        if backward:
            value.square().mean().backward()
            net.zero_grad(set_to_none=True)

    if method in ("pdec", "generic"):
        plan = plan_streams([target], d)
        fused = False if method == "generic" else None

        def run():
            with torch.set_grad_enabled(backward):
                finish(net.taylor(X, plan, fused=fused)[target])

        return run

    if method == "autograd":
        chain = [0, 0, 1, 1] if op == "d4xxyy" else None

        def run():
            x = X.clone().requires_grad_(True)
            u = net(x)
            if chain is None:
                (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
                value = 0
                for i in range(d):
                    (h,) = torch.autograd.grad(g[:, i].sum(), x, retain_graph=True, create_graph=backward)
                    value = value + h[:, i]
            else:
                value = u[:, 0]
                for k, i in enumerate(chain):
                    last = k == len(chain) - 1
                    (h,) = torch.autograd.grad(value.sum(), x, create_graph=backward or not last)
                    value = h[:, i]
            finish(value)

        return run

    if method == "func":
        if op == "laplacian":
            hess = torch.func.vmap(torch.func.hessian(lambda x: net(x[None])[0, 0]))

            def value_fn():
                return hess(X).diagonal(dim1=1, dim2=2).sum(-1)

        else:
            ex = torch.zeros_like(X)
            ex[:, 0] = 1
            ey = torch.zeros_like(X)
            ey[:, 1] = 1

            def along(f, v):
                return lambda x: torch.func.jvp(f, (x,), (v,))[1]

            f4 = along(along(along(along(net, ex), ex), ey), ey)

            def value_fn():
                return f4(X)[:, 0]

        def run():
            with torch.set_grad_enabled(backward):
                finish(value_fn())

        return run

    raise ValueError(f"unknown method {method}")


def configs(args) -> list[dict]:
    out = []
    for op in args.ops:
        for mode in args.modes:
            for dtype in args.dtype:
                for width in args.width:
                    for d in args.d:
                        if op == "d4xxyy" and d < 2:
                            continue
                        methods = [m for m in METHODS[op] if m in args.methods]
                        out.append(dict(op=op, mode=mode, dtype=dtype, width=width, d=d, methods=methods))
    return out


class OtherLoad:
    """CPU time taken by *other* processes while we measure, as a fraction of
    all cores: busy time from /proc/stat minus this process's own CPU time.
    The machine may be shared; a row measured beside a busy neighbour says so."""

    def __init__(self) -> None:
        self.hz = os.sysconf("SC_CLK_TCK")
        self.cpus = os.cpu_count() or 1
        self.start = self._sample()

    def _sample(self) -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / self.hz  # all but idle and iowait
        own = sum(os.times()[:2])
        return time.perf_counter(), busy, own

    def fraction(self) -> float:
        t1, b1, o1 = self._sample()
        t0, b0, o0 = self.start
        return max(0.0, ((b1 - b0) - (o1 - o0)) / max(1e-9, (t1 - t0) * self.cpus))


def wait_for_quiet(threshold: float, timeout: float) -> float:
    """Sleep until other processes use less than ``threshold`` of the CPUs over
    a 5 s probe (or ``timeout`` seconds passed); return the last probe."""
    deadline = time.monotonic() + timeout
    while True:
        probe = OtherLoad()
        time.sleep(5)
        share = probe.fraction()
        if share < threshold or time.monotonic() > deadline:
            return share


def time_config(cfg: dict, args) -> dict:
    """Median time per method and median per-round ratios, methods interleaved."""
    net, X = make(cfg["d"], cfg["width"], args.depth, DTYPES[cfg["dtype"]], args.n)
    runs = {m: runner(m, cfg["op"], cfg["mode"], net, X) for m in cfg["methods"]}
    times: dict[str, list[float]] = {m: [] for m in runs}
    for _ in range(args.warmup):
        for run in runs.values():
            run()
    names = list(runs)
    if args.quiet_wait > 0:
        wait_for_quiet(args.quiet_threshold, args.quiet_wait)
    load = OtherLoad()
    for r in range(args.repeats):
        order = names[r % len(names) :] + names[: r % len(names)]  # rotate who goes first
        for m in order:
            gc.collect()
            t0 = time.perf_counter()
            runs[m]()
            times[m].append(time.perf_counter() - t0)
    result = {"time_ms": {m: 1e3 * statistics.median(t) for m, t in times.items()}, "speedup": {}}
    result["other_load"] = load.fraction()
    for base in ("autograd", "func"):
        if base in times and "pdec" in times:
            result["speedup"][f"{base}/pdec"] = statistics.median(b / p for b, p in zip(times[base], times["pdec"]))
    if "generic" in times and "autograd" in times:
        result["speedup"]["autograd/generic"] = statistics.median(b / p for b, p in zip(times["autograd"], times["generic"]))
    return result


# -- peak memory, measured in a child process ----------------------------------


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))


def memory_child(payload: str) -> None:
    """Runs in the child: one line of JSON per (config, method) with the peak in MiB."""
    spec = json.loads(payload)
    torch.set_num_threads(spec["threads"])
    for cfg in spec["configs"]:
        for m in cfg["methods"]:
            # A first call on a throwaway model pays one-time costs (library
            # buffers, thread stacks) that would otherwise land on one method.
            net, X = make(cfg["d"], cfg["width"], spec["depth"], DTYPES[cfg["dtype"]], spec["n"])
            runner(m, cfg["op"], cfg["mode"], net, X)()
            net, X = make(cfg["d"], cfg["width"], spec["depth"], DTYPES[cfg["dtype"]], spec["n"])
            run = runner(m, cfg["op"], cfg["mode"], net, X)
            gc.collect()
            Path("/proc/self/clear_refs").write_text("5")
            before = _status_kib("VmRSS")
            run()
            peak = _status_kib("VmHWM")
            print(json.dumps({"key": _key(cfg), "method": m, "peak_mib": (peak - before) / 1024}), flush=True)
            del run, net, X
            gc.collect()


def _key(cfg: dict) -> str:
    return f"{cfg['op']}|{cfg['mode']}|{cfg['dtype']}|{cfg['width']}|{cfg['d']}"


def measure_memory(cfgs: list[dict], args) -> dict[str, dict[str, float]]:
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    payload = json.dumps({"configs": cfgs, "depth": args.depth, "n": args.n, "threads": args.threads})
    proc = subprocess.run(
        [sys.executable, __file__, "--memory-child", payload], env=env, capture_output=True, text=True, check=True
    )
    out: dict[str, dict[str, float]] = {}
    for line in proc.stdout.splitlines():
        row = json.loads(line)
        out.setdefault(row["key"], {})[row["method"]] = row["peak_mib"]
    return out


# -- report --------------------------------------------------------------------


def table(rows: list[dict]) -> str:
    head = (
        "| operator | mode | dtype | width | d | pdec ms | autograd ms | func ms | generic ms "
        "| autograd/pdec | func/pdec | autograd/generic | pdec MiB | autograd MiB | func MiB | generic MiB | others |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]

    def fmt(x, spec=".1f"):
        return "–" if x is None else format(x, spec)

    for r in rows:
        t, s, mem = r["time_ms"], r["speedup"], r.get("peak_mib", {})
        lines.append(
            f"| {r['op']} | {r['mode']} | {r['dtype']} | {r['width']} | {r['d']} "
            f"| {fmt(t.get('pdec'))} | {fmt(t.get('autograd'))} | {fmt(t.get('func'))} | {fmt(t.get('generic'))} "
            f"| {fmt(s.get('autograd/pdec'), '.2f')} | {fmt(s.get('func/pdec'), '.2f')} | {fmt(s.get('autograd/generic'), '.2f')} "
            f"| {fmt(mem.get('pdec'), '.0f')} | {fmt(mem.get('autograd'), '.0f')} | {fmt(mem.get('func'), '.0f')} | {fmt(mem.get('generic'), '.0f')} "
            f"| {fmt(100 * r['other_load'], '.0f')}% |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--d", type=int, nargs="+", default=[2, 5, 10, 50, 100])
    p.add_argument("--width", type=int, nargs="+", default=[64, 256])
    p.add_argument("--dtype", nargs="+", choices=sorted(DTYPES), default=["float32", "float64"])
    p.add_argument("--ops", nargs="+", choices=OPS, default=list(OPS))
    p.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    p.add_argument("--methods", nargs="+", default=["pdec", "generic", "autograd", "func"])
    p.add_argument("--depth", type=int, default=3, help="hidden layers")
    p.add_argument("--n", type=int, default=1024, help="points")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--quiet-wait", type=float, default=0, metavar="SECONDS",
                   help="before each configuration, wait up to this long for other processes to go quiet")
    p.add_argument("--quiet-threshold", type=float, default=0.1,
                   help="share of all CPUs other processes may use and still count as quiet")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--memory-child", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child)
        return 0
    torch.set_num_threads(args.threads)
    cfgs = configs(args)
    load = os.getloadavg()[0]
    print(f"# torch {torch.__version__}, {args.threads} threads, N={args.n}, {args.depth} hidden tanh layers, "
          f"{args.repeats} interleaved rounds; load average {load:.2f} at start", flush=True)
    memory = {} if args.no_memory else measure_memory(cfgs, args)
    rows = []
    for cfg in cfgs:
        row = {k: cfg[k] for k in ("op", "mode", "dtype", "width", "d")}
        row.update(time_config(cfg, args))
        row["peak_mib"] = memory.get(_key(cfg), {})
        rows.append(row)
        print(table([row]).splitlines()[-1], flush=True)
    print(f"# load average {os.getloadavg()[0]:.2f} at end")
    print()
    print(table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
