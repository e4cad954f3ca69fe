"""One training run of a `ProblemDef`: what `pdec solve` and standalone scripts both call."""

from __future__ import annotations

from pathlib import Path

import torch

from pdec.contract import OutputSettings, ProblemDef, TrainingSettings
from pdec.errors import PdecError
from pdec.runtime.distributed import World, current_world, init_world, launched
from pdec.runtime.evaluate import Evaluator
from pdec.runtime.problem import Problem
from pdec.runtime.rundir import FollowerRunDir, RunDir
from pdec.runtime.sampling import Sampler
from pdec.runtime.reporting import Reporter
from pdec.runtime.trainer import RunSettings, Trainer

TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(name: str, world: World | None = None) -> torch.device:
    """`auto` is CUDA when there is one, else the CPU; a rank of a distributed run on CUDA gets
    its own GPU (``LOCAL_RANK``, `distributed.init_world`)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise PdecError("device `cuda` was asked for, but torch sees no CUDA device; use `--device cpu` or `auto`")
    if world is not None and world.size > 1 and torch.device(name).type == "cuda":
        return world.device
    return torch.device(name)


def join_world(training: TrainingSettings) -> World:
    """The distributed world of this process (`distributed.init_world`): one process unless
    torchrun started it as a rank; the backend follows the device (NCCL on CUDA, else gloo)."""
    return init_world(resolve_device(training.device)) if launched() else current_world()


def fixed_settings(definition: ProblemDef, training: TrainingSettings) -> dict:
    """What a resumed run cannot change, keyed as in the flattened `resolved.json`: the
    network, and the dtype and sampler its checkpoint's states and points were made with."""
    return {
        "variables": list(definition.variables),
        "unknowns": list(definition.unknowns),
        "model.hidden": list(definition.hidden),
        "model.activation": definition.activation_name,
        "model.fourier": _fourier(definition),
        "training.dtype": training.dtype,
        "training.sampler": training.sampler,
    }


def _fourier(definition: ProblemDef) -> dict | None:
    return {"features": definition.fourier[0], "scale": definition.fourier[1]} if definition.fourier else None


def run(
    definition: ProblemDef,
    *,
    training: TrainingSettings | None = None,
    output: OutputSettings | None = None,
    out: str | Path | None = None,
    max_time: float | None = None,
    resume: bool = False,
    reporter: Reporter | None = None,
    source_hash: str = "",
    extra_summary: dict | None = None,
    extra_resolved: dict | None = None,
) -> tuple[dict, Problem]:
    """Train ``definition`` and write its run directory; return (summary, problem).

    ``training`` and ``output`` replace the definition's settings (standalone
    scripts pass their command-line options this way). The run directory is
    locked and checked before anything is written (`RunDir.for_training`)."""
    training = definition.training if training is None else training
    output = definition.output if output is None else output
    dtype = TORCH_DTYPES[training.dtype]
    world = join_world(training)
    device = resolve_device(training.device, world)
    seed = int(training.seed)
    torch.manual_seed(seed)
    problem = Problem(definition, dtype=dtype, device=device, seed=seed)
    sampler = Sampler(definition, training, dtype=dtype, device=device, seed=seed)
    evaluator = Evaluator(definition, output, dtype=dtype, device=device)
    path = out or output.dir or Path("runs") / definition.name
    with world.agreement():  # rank 0 checks and locks the run directory; the others only read it
        if world.is_root:
            run_dir = RunDir.for_training(path, resume=resume, source_hash=source_hash, fixed=fixed_settings(definition, training))
        else:
            run_dir, reporter = FollowerRunDir(path), None
    run_dir.write_json(
        "resolved.json",
        {
            "name": definition.name,
            "variables": list(definition.variables),
            "unknowns": list(definition.unknowns),
            "model": {
                "hidden": list(definition.hidden),
                "activation": definition.activation_name,
                "fourier": _fourier(definition),
            },
            "choice": definition.choice,
            "training": training.to_dict(),
            "output": output.to_dict(),
            "device": str(device),
            **(extra_resolved or {}),
        },
    )
    settings = RunSettings(
        steps=int(training.steps),
        max_time=max_time,
        resume=resume,
        checkpoint_every=int(output.checkpoint_every),
        log_every=int(training.log_every),
        source_hash=source_hash,
        extra_summary={
            "device": str(device), "dtype": training.dtype, "seed": seed, "world_size": world.size, **(extra_summary or {})
        },
    )
    trainer = Trainer(problem, sampler, evaluator, run_dir, settings, training, reporter)
    if definition.choice and reporter is not None:
        reporter.note(definition.choice)
    summary = trainer.run()
    return summary, problem
