"""Optimizers by name: the one registry of the optimizer protocol
(`protocol.Optimizer`), first order and Gauss–Newton alike.

- ``adam``, ``lbfgs``, ``adam+lbfgs``: ``first_order.py``;
- ``bfgs``, ``ssbroyden``: dense BFGS and the self-scaled Broyden family
  (Urbán, Stefanou & Pons 2025), ``quasi_newton.py``;
- ``engd``: energy natural gradient (Müller & Zeinhofer 2023), ``engd.py``;
- ``kfac``, ``kfac*``: KFAC for PINN losses (Dangel, Müller & Zeinhofer
  2024) with a line search or with Martens & Grosse's (2015) automatic step
  and momentum, ``kfac.py``;
- ``kfac2l``: two-level KFAC (Koroko et al. 2023), ``two_level.py``.

Its names are `pdec.contract.OPTIMIZER_NAMES` (a test checks).
"""

from __future__ import annotations

from pdec.contract import TrainingSettings
from pdec.runtime.engd import ENGD
from pdec.runtime.first_order import LBFGS, Adam, AdamThenLBFGS
from pdec.runtime.kfac import KFAC, KFACStar
from pdec.runtime.protocol import Optimizer
from pdec.runtime.quasi_newton import BFGS, SSBroyden
from pdec.runtime.two_level import TwoLevelKFAC

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls for cls in (Adam, LBFGS, AdamThenLBFGS, BFGS, SSBroyden, ENGD, KFAC, KFACStar, TwoLevelKFAC)
}


class OptimizerNotAvailable(ValueError):
    pass


def make_optimizer(problem, settings: TrainingSettings) -> Optimizer:
    """The optimizer ``settings.optimizer`` for ``problem``."""
    if settings.optimizer not in OPTIMIZERS:
        raise OptimizerNotAvailable(
            f"optimizer `{settings.optimizer}` is not available in this version of pdec; "
            f"use one of {', '.join(OPTIMIZERS)}"
        )
    return OPTIMIZERS[settings.optimizer](problem, settings)
