"""Space groups of generated structures and the symmetry success rate.

The paper's figure of merit: the share of generated structures whose relaxed space group (symprec
0.1 A, angle 10 deg) is above P-1. Structures that failed to relax stay in the denominator as
failures, so methods with different failure rates are compared on the same footing. The rate
depends on the symmetry library (spglib and moyopy disagree on slightly distorted cells) and on the
tolerance, so both are recorded with every number.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import NormalDist
from typing import Literal

import spglib
from pymatgen.core import Structure

from chggen_plugins.errors import ChggenError

# spglib prints C-level warnings whenever a search fails; a failed search is a normal outcome here.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

Library = Literal["spglib", "moyopy"]
LIBRARIES: tuple[str, ...] = ("spglib", "moyopy")
SYMPREC = 0.1  # A
ANGLE_TOLERANCE = 10.0  # degrees


@dataclass(frozen=True)
class SpaceGroup:
    """Space group found by `library`; `symprec`/`angle_tolerance` are the values it actually used
    (moyopy may adjust the requested tolerance in its iterative search)."""

    number: int
    symbol: str
    library: str
    symprec: float
    angle_tolerance: float

    @property
    def is_symmetric(self) -> bool:
        return self.number > 2


@dataclass(frozen=True)
class SuccessRate:
    """Symmetric structures / all generated structures, with a Wilson interval."""

    successes: int
    total: int
    failed: int  # structures that never reached the symmetry check (e.g. relaxation failed)
    rate: float
    low: float
    high: float
    confidence: float
    library: str
    symprec: float
    angle_tolerance: float


def _cell(structure: Structure) -> tuple[list[list[float]], list[list[float]], list[int]]:
    if not structure.is_ordered:
        raise ChggenError(f"{structure.formula}: partial occupancies; symmetry needs an ordered structure")
    if len(structure) == 0:
        raise ChggenError("cannot find the space group of a structure with no atoms")
    numbers = [site.specie.Z for site in structure]
    return structure.lattice.matrix.tolist(), structure.frac_coords.tolist(), numbers


def _spglib(structure: Structure, symprec: float, angle: float) -> SpaceGroup:
    dataset = spglib.get_symmetry_dataset(_cell(structure), symprec=symprec, angle_tolerance=angle)
    if dataset is None:  # spglib found no consistent symmetry: nothing above P1 was established
        return SpaceGroup(1, "P1", "spglib", symprec, angle)
    return SpaceGroup(int(dataset.number), str(dataset.international), "spglib", symprec, angle)


def _moyopy(structure: Structure, symprec: float, angle: float) -> SpaceGroup:
    try:
        import moyopy
    except ImportError:
        raise ChggenError("library='moyopy' needs the moyopy package: pip install moyopy") from None
    basis, positions, numbers = _cell(structure)
    try:
        dataset = moyopy.MoyoDataset(
            moyopy.Cell(basis, positions, numbers), symprec=symprec, angle_tolerance=math.radians(angle)
        )
    except ValueError:  # moyopy's "symmetry search failed": nothing above P1 was established
        return SpaceGroup(1, "P1", "moyopy", symprec, angle)
    symbol = moyopy.SpaceGroupType(dataset.number).hm_short.replace(" ", "")
    used_angle = angle if dataset.angle_tolerance is None else math.degrees(dataset.angle_tolerance)
    return SpaceGroup(int(dataset.number), symbol, "moyopy", float(dataset.symprec), used_angle)


def space_group(
    structure: Structure,
    symprec: float = SYMPREC,
    angle_tolerance: float = ANGLE_TOLERANCE,
    library: Library = "spglib",
) -> SpaceGroup:
    """Space group (number, short Hermann-Mauguin symbol) of `structure` at the given tolerance."""
    if not symprec > 0:
        raise ChggenError(f"symprec {symprec} must be > 0")
    if library == "spglib":
        return _spglib(structure, symprec, angle_tolerance)
    if library == "moyopy":
        return _moyopy(structure, symprec, angle_tolerance)
    raise ChggenError(f"symmetry library {library!r} is not one of {', '.join(LIBRARIES)}")


def is_symmetric(
    structure: Structure,
    symprec: float = SYMPREC,
    angle_tolerance: float = ANGLE_TOLERANCE,
    library: Library = "spglib",
) -> bool:
    """True if the space group is above P-1 (number > 2): the paper's success criterion."""
    return space_group(structure, symprec, angle_tolerance, library).is_symmetric


def snap_to_symmetry(structure: Structure, symprec: float) -> Structure:
    """The symmetric structure spglib finds within `symprec` (A): idealised lattice and positions in
    the conventional standard cell (XtalPaint's refinement before relaxation). A structure that is
    P1 at that tolerance comes back unchanged. The group is kept in `properties["snapped_space_group"]`."""
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError

    try:
        analyzer = SpacegroupAnalyzer(structure, symprec=symprec)
        number = analyzer.get_space_group_number()
        snapped = analyzer.get_refined_structure() if number > 1 else structure.copy()
    except SymmetryUndeterminedError:
        number, snapped = 1, structure.copy()
    snapped.properties = {**structure.properties, "snapped_space_group": number}
    return snapped


def wilson_interval(successes: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (well behaved at 0/n and n/n, unlike Wald)."""
    if total <= 0 or not 0 <= successes <= total:
        raise ChggenError(f"success count {successes} of {total} is not a valid binomial count")
    if not 0 < confidence < 1:
        raise ChggenError(f"confidence {confidence} must be between 0 and 1")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / total
    denom = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denom
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denom
    low = 0.0 if successes == 0 else centre - half  # exact ends: rounding would leave ~1e-17
    high = 1.0 if successes == total else centre + half
    return low, high


def symmetry_success_rate(
    structures: Iterable[Structure | None],
    symprec: float = SYMPREC,
    angle_tolerance: float = ANGLE_TOLERANCE,
    library: Library = "spglib",
    confidence: float = 0.95,
) -> SuccessRate:
    """Share of all generated structures that are symmetric; `None` marks one that failed to relax."""
    items = list(structures)
    if not items:
        raise ChggenError("symmetry success rate of an empty list of structures")
    failed = sum(s is None for s in items)
    successes = sum(is_symmetric(s, symprec, angle_tolerance, library) for s in items if s is not None)
    low, high = wilson_interval(successes, len(items), confidence)
    return SuccessRate(
        successes=successes,
        total=len(items),
        failed=failed,
        rate=successes / len(items),
        low=low,
        high=high,
        confidence=confidence,
        library=library,
        symprec=symprec,
        angle_tolerance=angle_tolerance,
    )
