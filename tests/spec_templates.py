"""Spec texts the front-end tests start from (STYLE #12: cases as data).

`HEAT` is the DESIGN.md example with small training settings. Every broken
spec of the corpus is `HEAT` with one edit (`edit`), so that the error it
must raise is the only thing wrong with it. Line numbers, for reading the
expected positions in the corpus:

     1  name: heat1d
     2  domain:
     3    x: [0, 1]
     4  time:
     5    t: [0, 1]
     6  unknowns: [u]
     7  constants:
     8    kappa: 0.5
     9  equations:
    10    - u_t = kappa * u_xx
    11  conditions:
    12    - on: x = 0 or x = 1
    13      impose: u = 0
    14    - on: t = 0
    15      impose: u = sin(pi*x)
    16  exact:
    17    u: exp(-kappa*pi^2*t) * sin(pi*x)
    18  model:
    19    hidden: [32, 32]
    20    activation: tanh
    21  training:
    22    optimizer: kfac
    23    steps: 2000
    24    lr: 0.001
    25    points: {interior: 2000, boundary: 500, initial: 500}
"""

from __future__ import annotations

HEAT = """\
name: heat1d
domain:
  x: [0, 1]
time:
  t: [0, 1]
unknowns: [u]
constants:
  kappa: 0.5
equations:
  - u_t = kappa * u_xx
conditions:
  - on: x = 0 or x = 1
    impose: u = 0
  - on: t = 0
    impose: u = sin(pi*x)
exact:
  u: exp(-kappa*pi^2*t) * sin(pi*x)
model:
  hidden: [32, 32]
  activation: tanh
training:
  optimizer: kfac
  steps: 2000
  lr: 0.001
  points: {interior: 2000, boundary: 500, initial: 500}
"""

EQUATION = "u_t = kappa * u_xx"
"""The equation of `HEAT` (line 10, starting at column 5)."""


def edit(old: str, new: str, base: str = HEAT) -> str:
    """``base`` with the one occurrence of ``old`` replaced by ``new``."""
    count = base.count(old)
    if count != 1:
        raise AssertionError(f"{old!r} occurs {count} times in the template, expected once")
    return base.replace(old, new)


def equation(text: str) -> str:
    """`HEAT` with its equation (line 10, column 5) replaced by ``text``."""
    return edit(EQUATION, text)


HEAT_NO_TIME = """\
name: steady
domain:
  x: [0, 1]
unknowns: [u]
constants:
  kappa: 0.5
equations:
  - u_t = kappa * u_xx
conditions:
  - on: x = 0 or x = 1
    impose: u = 0
"""
"""A steady problem whose equation still says `u_t` (line 8, column 5)."""

BURGERS = """\
name: burgers
domain:
  x: [-1, 1]
time:
  t: [0, 1]
unknowns: [u]
constants:
  nu: 0.01/pi
equations:
  - u_t + u*u_x = nu*u_xx
conditions:
  - on: x = -1 or x = 1
    impose: u = 0
  - on: t = 0
    impose: u = -sin(pi*x)
"""

POISSON2D = """\
name: poisson2d
domain:
  x: [0, 1]
  y: [0, 1]
unknowns: [u]
equations:
  - -laplacian(u) = 2*pi^2*sin(pi*x)*sin(pi*y)
conditions:
  - on: boundary
    impose: u = 0
exact:
  u: sin(pi*x)*sin(pi*y)
"""
