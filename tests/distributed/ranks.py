"""Run several `pdec.solve` jobs as the ranks of ONE torchrun launch (a launch costs seconds).

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/distributed/ranks.py JOBS.json

``JOBS.json``: a list of ``{"out": DIR, "steps": N, "optimizer": NAME, "settings": [...], "resume": bool}``
on the spec ``specs/heat.yaml``; each job ends by checking that every rank holds the same
parameters, to the bit. Not a test module: tests/distributed/test_distributed.py launches it.
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import pdec  # noqa: E402

from pdec.runtime.distributed import current_world  # noqa: E402

for job in json.loads(Path(sys.argv[1]).read_text()):
    result = pdec.solve(
        ROOT / "specs" / "heat.yaml",
        steps=job["steps"],
        optimizer=job["optimizer"],
        out=job["out"],
        resume=job.get("resume", False),
        settings=job["settings"],
    )
    # every rank took the same steps: the parameters agree to the bit
    for p in result.problem.model.parameters():
        every = current_world().gather(p.detach().reshape(-1))
        if not bool((every == every[0]).all()):
            raise SystemExit(f"{job['out']}: the ranks' parameters differ")
