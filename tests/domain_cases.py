"""Spec texts of composite domains shared by the geometry tests (conditions appended by each test)."""

L_SHAPE = """
domain:
  shape: difference
  of:
    - {shape: box, x: [-1, 1], y: [-1, 1]}
    - {shape: box, x: [0, 1], y: [0, 1]}
unknowns: [u]
equations:
  - -laplacian(u) = 1
conditions:
"""
