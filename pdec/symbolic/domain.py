"""A spec's domain → the contract's domain, checked to have an interior and a boundary."""

from __future__ import annotations

from ..contract import BallDomain, BoxDomain, CSGDomain, Domain, HalfspaceDomain, PolygonDomain
from ..errors import SpecError
from ..geometry import GeometryError, geometry_of
from ..spec.schema import Ball, Box, Composite, Halfspace, Polygon

MIN_FRACTION = 1e-4
"""A composite or polygon whose measure is below this fraction of its bounding box's is refused
as degenerate (a Monte Carlo estimate would be noise, and sampling by rejection hopeless)."""


def domain_of(domain) -> Domain:
    """The contract's domain for a spec's domain (no checks: `checked_domain` for a spec)."""
    if isinstance(domain, Ball):
        return BallDomain(tuple(float(c) for c in domain.center), float(domain.radius))
    if isinstance(domain, Box):
        return BoxDomain(tuple(float(b[0]) for b in domain.bounds), tuple(float(b[1]) for b in domain.bounds))
    if isinstance(domain, Polygon):
        return PolygonDomain(tuple((float(x), float(y)) for x, y in domain.vertices))
    if isinstance(domain, Halfspace):
        return HalfspaceDomain(tuple(float(c) for c in domain.normal), float(domain.offset))
    if isinstance(domain, Composite):
        return CSGDomain(domain.shape, tuple(domain_of(o) for o in domain.operands))
    raise TypeError(f"not a spec domain: {domain!r}")


def checked_domain(domain) -> Domain:
    """`domain_of`, refusing composites that are unbounded, empty or degenerate, and polygons too
    thin to sample (located errors: at run time they were a slow rejection loop, then a failure)."""
    result = domain_of(domain)
    if not isinstance(result, CSGDomain | PolygonDomain):
        return result
    for operand in getattr(domain, "operands", ()):  # innermost first: an error names the composite that has it
        if isinstance(operand, Composite):
            checked_domain(operand)
    try:
        geometry = geometry_of(result)
        volume = geometry.volume() if isinstance(result, PolygonDomain) else geometry.volume_estimate[0]
        lo, hi = geometry.bounds
        box = 1.0
        for a, b in zip(lo, hi):
            box *= b - a
        if volume < MIN_FRACTION * box:
            raise GeometryError(
                ("the polygon is too thin to sample" if isinstance(result, PolygonDomain) else "the domain is empty or degenerate")
                + (": it has no interior" if volume == 0 else f": its measure is {volume:.3g}, below {MIN_FRACTION:g} of its bounding box")
            )
        if isinstance(result, CSGDomain) and geometry.boundary_estimate[0] == 0:
            raise GeometryError("the domain has no boundary")
    except GeometryError as exc:
        raise SpecError(str(exc), domain.loc) from None
    return result

