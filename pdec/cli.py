"""The `pdec` command line.

Spec errors print as ``FILE:LINE:COL: error: message`` with the source line
and a caret, and exit with status 2, never with a traceback (``--debug``
shows one).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

# Before torch loads: OpenMP worker threads that sleep instead of spinning while they
# wait. On a 2-core machine with one other busy process a Taylor-mode training step
# took 857 ms with spinning threads and 28 ms with sleeping ones (one thread: 15 ms).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from . import __version__
from .errors import PdecError, SpecError
from .api import compile_spec

EXIT_SPEC_ERROR = 2
EXIT_INTERNAL = 1


def _check(args: argparse.Namespace) -> int:
    status = 0
    for path in args.specs:
        try:
            compiled = compile_spec(path, allow_outside_data=args.allow_outside_data)
        except SpecError as exc:
            print(exc.format(), file=sys.stderr)
            status = EXIT_SPEC_ERROR
            continue
        for warning in compiled.problem.warnings:
            print(warning.format(), file=sys.stderr)
        spec = compiled.spec
        n_eq, n_cond = len(compiled.problem.equations), len(compiled.problem.conditions)
        n_exact = sum(1 for c in spec.conditions if c.hard)
        exact = f", {n_exact} of them exact" if n_exact else ""
        if not args.quiet:
            print(
                f"{path}: ok ({spec.name}: {n_eq} equation{'s' * (n_eq != 1)}, "
                f"{n_cond + n_exact} condition{'s' * (n_cond + n_exact != 1)}{exact})"
            )
    return status


def _show(args: argparse.Namespace) -> int:
    from .show import describe

    compiled = compile_spec(args.spec, allow_outside_data=args.allow_outside_data)
    for warning in compiled.problem.warnings:
        print(warning.format(), file=sys.stderr)
    print(describe(compiled.problem, compiled.graph))
    return 0


STATUS_EXIT = {"completed": 0, "time-limit": 0, "interrupted": 130, "diverged": 1}


def _solve(args: argparse.Namespace) -> int:
    import json

    from .runtime.distributed import current_world, launched

    if args.nproc is not None and args.nproc < 1:
        raise PdecError("--nproc must be at least 1")
    if args.nproc and args.nproc > 1 and not launched():
        from .api import spec_overrides
        from .launch import launch_ranks

        options = {k: getattr(args, k) for k in ("steps", "optimizer", "device", "dtype", "seed")}
        # a spec error once, here, not once per rank
        compile_spec(args.spec, spec_overrides(**options, settings=args.set), allow_outside_data=args.allow_outside_data)
        return launch_ranks(args.nproc, _without_nproc(args.argv))

    from .report.progress import RichReporter
    from .runtime.reporting import PrintReporter
    from .api import solve

    reporter = None
    root = not launched() or int(os.environ.get("RANK", "0")) == 0  # under torchrun rank 0 alone reports
    if root and not (args.quiet or args.json):
        # without a terminal a live bar shows only when it stops, cut to 80 columns: plain lines instead
        reporter = RichReporter(args.spec) if sys.stderr.isatty() else PrintReporter()
    result = solve(
        args.spec,
        steps=args.steps,
        max_time=args.max_time,
        optimizer=args.optimizer,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        out=args.out,
        resume=args.resume,
        settings=args.set,
        reporter=reporter,
        allow_outside_data=args.allow_outside_data,
    )
    if args.json and current_world().is_root:
        print(json.dumps(result.summary, indent=2))
    elif not args.quiet and current_world().is_root:
        print(f"run directory: {result.run_dir}", file=sys.stderr)
    return STATUS_EXIT[result.summary["status"]]


def _without_nproc(argv: list[str]) -> list[str]:
    """The command line for each rank: ``--nproc N`` (or ``--nproc=N``) removed."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--nproc":
            skip = True
        elif not arg.startswith("--nproc="):
            out.append(arg)
    return out


def _codegen(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .codegen.standalone import standalone_script
    from .runtime.rundir import write_atomic

    from .api import spec_overrides

    options = {k: getattr(args, k) for k in ("steps", "optimizer", "device", "dtype", "seed")}
    overrides = spec_overrides(**options, settings=args.set)
    script = standalone_script(compile_spec(args.spec, overrides, allow_outside_data=args.allow_outside_data).source)
    out = Path(args.output)
    write_atomic(out, script.encode())
    print(f"wrote {out} ({len(script.splitlines())} lines): python {out} --help", file=sys.stderr)
    return 0


def _ntk(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .api import compile
    from .report.ntk import ntk_spectra_report, run_overrides  # imports torch: only `ntk` pays for it

    run_dir = Path(args.run_dir) if args.run_dir else None
    overrides = (run_overrides(run_dir) if run_dir else []) + list(args.set)
    compiled = compile_spec(args.spec, overrides, allow_outside_data=args.allow_outside_data)
    problem = compile(compiled, seed=compiled.spec.training.seed)
    npz, png = ntk_spectra_report(problem, run=run_dir, points=args.points, out=args.out)
    print(f"wrote {npz} and {png}", file=sys.stderr)
    return 0


def _predict(args: argparse.Namespace) -> int:
    import io
    from pathlib import Path

    import numpy as np

    from .points import read_points, write_csv
    from .runtime.rundir import write_atomic
    from .trained import derivative_names, load

    run = load(args.run_path, checkpoint=_checkpoint_arg(args.checkpoint), device=args.device)
    X = read_points(args.points, run.variables)
    values = run.predict(X)
    columns = [*run.variables, *run.unknowns]
    table = [X, *(values[u].double().cpu().numpy()[:, None] for u in run.unknowns)]
    if args.derivatives:
        derivatives = run.derivatives(X)
        names = derivative_names(run)
        columns += names
        table += [derivatives[n].double().cpu().numpy()[:, None] for n in names]
    table = np.hstack(table)
    if args.output is None:
        write_csv(sys.stdout, columns, table)
        return 0
    text = io.StringIO()
    write_csv(text, columns, table)
    out = Path(args.output)
    try:
        write_atomic(out, text.getvalue().encode())
    except OSError as exc:
        raise PdecError(f"cannot write {out}: {exc.strerror or exc}") from None
    print(f"wrote {out} ({len(X)} points, step {run.step})", file=sys.stderr)
    return 0


def _export(args: argparse.Namespace) -> int:
    from .trained import load

    run = load(args.run_path, checkpoint=_checkpoint_arg(args.checkpoint))
    out = run.export(args.output)
    print(
        f"wrote {out} (step {run.step}): torch.jit.load({str(out)!r})(X) maps [N, {len(run.variables)}] points "
        f"({', '.join(run.variables)}) to [N, {len(run.unknowns)}] ({', '.join(run.unknowns)})",
        file=sys.stderr,
    )
    return 0


def _checkpoint_arg(text: str) -> str | int:
    return int(text) if text.isdigit() else text


def _training_options(parser: argparse.ArgumentParser) -> None:
    """The options `solve` and `codegen` share: shorthands for `--set training.KEY=VALUE`."""
    parser.add_argument("--steps", type=int, help="optimizer steps (training.steps)")
    parser.add_argument("--optimizer", help="training.optimizer: auto, adam, lbfgs, adam+lbfgs, bfgs, ssbroyden, engd, kfac, …")
    parser.add_argument("--device", help="auto, cpu or cuda")
    parser.add_argument("--dtype", help="float32 or float64")
    parser.add_argument("--seed", type=int)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pdec", description="Compile PDE specs into physics-informed neural networks.")
    parser.add_argument("--version", action="version", version=f"pdec {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="check that specs compile (exit 2 on errors)")
    check.add_argument("specs", nargs="+", metavar="SPEC")
    check.add_argument("-q", "--quiet", action="store_true", help="print only errors and warnings")
    _allow_outside(check)
    check.set_defaults(run=_check)

    show = sub.add_parser("show", help="print the compiled problem and its Taylor streams")
    show.add_argument("spec", metavar="SPEC")
    _allow_outside(show)
    show.set_defaults(run=_show)

    solve = sub.add_parser("solve", help="train the PINN of a spec and write its run directory")
    solve.add_argument("spec", metavar="SPEC")
    _training_options(solve)
    solve.add_argument("--max-time", type=float, metavar="SECONDS", help="stop cleanly after this wall-clock time")
    solve.add_argument("--out", metavar="DIR", help="run directory (default runs/<name>)")
    solve.add_argument("--resume", action="store_true", help="continue from the newest checkpoint in the run directory")
    solve.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec setting")
    solve.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    solve.add_argument("--json", action="store_true", help="print summary.json to stdout")
    solve.add_argument(
        "--nproc", type=int, metavar="N",
        help="train data-parallel on N local processes (torchrun's launcher, one thread each; docs/distributed.md)",
    )  # fmt: skip
    _allow_outside(solve)
    solve.set_defaults(run=_solve)

    codegen = sub.add_parser("codegen", help="write a standalone training script (torch and numpy only)")
    codegen.add_argument("spec", metavar="SPEC")
    codegen.add_argument("-o", "--output", required=True, metavar="FILE.py")
    _training_options(codegen)
    codegen.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec setting")
    _allow_outside(codegen)
    codegen.set_defaults(run=_codegen)

    ntk = sub.add_parser("ntk", help="NTK eigenvalue spectra of each loss term, at initialization and at checkpoints")
    ntk.add_argument("spec", metavar="SPEC")
    ntk.add_argument("--run", dest="run_dir", metavar="DIR", help="a run directory: also the spectra at its checkpoints")
    ntk.add_argument("--points", type=int, default=256, metavar="N", help="points per term (default 256)")
    ntk.add_argument("--out", metavar="DIR", help="where ntk.npz and ntk.png go (default: the run, else runs/<name>)")
    ntk.add_argument("--set", action="append", default=[], metavar="KEY.PATH=VALUE", help="override a spec setting")
    _allow_outside(ntk)
    ntk.set_defaults(run=_ntk)

    predict = sub.add_parser("predict", help="evaluate a trained run at new points (CSV out)")
    predict.add_argument("run_path", metavar="RUN", help="a run directory written by `pdec solve`")
    predict.add_argument(
        "--points", required=True, metavar="FILE",
        help="a CSV with a header naming the variables (x,t), or an .npz with one array per variable or `X` [N, variables]",
    )  # fmt: skip
    predict.add_argument("-o", "--output", metavar="OUT.csv", help="write the CSV here (default: stdout)")
    predict.add_argument("--derivatives", action="store_true", help="also every derivative the spec uses (d(u,x), laplacian(u), …)")
    predict.add_argument("--checkpoint", default="latest", metavar="WHICH", help="latest (default), best, or a step number")
    predict.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    predict.set_defaults(run=_predict)

    export = sub.add_parser("export", help="write a trained network as TorchScript (loads with torch.jit.load alone)")
    export.add_argument("run_path", metavar="RUN", help="a run directory written by `pdec solve`")
    export.add_argument("-o", "--output", required=True, metavar="MODEL.pt")
    export.add_argument("--checkpoint", default="latest", metavar="WHICH", help="latest (default), best, or a step number")
    export.set_defaults(run=_export)
    return parser


def _allow_outside(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--allow-outside-data", action="store_true",
        help="let the spec read data/reference files outside its own directory (only for specs you trust)",
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    try:
        return args.run(args)
    except SpecError as exc:
        if args.debug:
            traceback.print_exc()
        print(exc.format(), file=sys.stderr)
        return EXIT_SPEC_ERROR
    except PdecError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        if getattr(exc, "exit_code", None) == EXIT_INTERNAL:  # a lost rank: leave before torchrun's SIGTERM lands
            sys.stderr.flush()  # in the interpreter's shutdown, which would turn exit 1 into "killed by SIGTERM"
            os._exit(EXIT_INTERNAL)
        return EXIT_SPEC_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception:  # a bug in pdec, not in the spec
        if args.debug:
            raise
        print("internal error (a bug in pdec; rerun with --debug for the traceback):", file=sys.stderr)
        print("  " + traceback.format_exc().strip().splitlines()[-1], file=sys.stderr)
        return EXIT_INTERNAL
