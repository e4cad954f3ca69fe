"""`pdec solve --nproc N`: start N local ranks of the same command through torchrun's launcher.

Why torchrun's launcher (`torch.distributed.launcher.api.elastic_launch`) and not our own
processes: it is what `torchrun --standalone --nproc-per-node N -m pdec solve …` runs (the
c10d rendezvous on a free local port, ``RANK``/``WORLD_SIZE``/``MASTER_ADDR`` for each
rank, and when a rank dies it stops the others), so both ways behave the same.
Each rank gets one thread (``OMP_NUM_THREADS=1``) unless the environment says otherwise:
N ranks on N cores, not N × cores threads fighting for them.
"""

from __future__ import annotations

import os
import sys
import uuid


def launch_ranks(nproc: int, argv: list[str]) -> int:
    """Run ``python -m pdec ARGV`` as ``nproc`` ranks; the exit status is rank 0's (else the first
    failure's, 1 for a rank killed by a signal)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the ranks say what went wrong
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"pdec-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        monitor_interval=0.1,
    )
    try:
        elastic_launch(config, sys.executable)("-m", "pdec", *argv)
    except ChildFailedError as exc:
        failures = exc.failures
        for rank, failure in sorted(failures.items()):
            if failure.exitcode < 0:  # killed: it could not say so itself
                print(f"error: rank {rank} was killed by signal {-failure.exitcode}", file=sys.stderr)
        first = failures.get(min(failures)) if 0 not in failures else failures[0]
        code = first.exitcode
        return code if code > 0 else 1
    except SignalException:  # Ctrl-C or a scheduler's SIGTERM: the ranks stopped with a checkpoint
        return 130
    return 0
