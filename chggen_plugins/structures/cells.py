"""Random Bravais cells at a fixed volume per atom.

CHGGen starts a campaign from unconditional generation in cells of every lattice system and several
axis ratios, all at the same density (N * V0), so the score model never has to guess the volume.
The cell volume is exact for every system: edge lengths are scaled by the cube root of
V / (b/a * c/a * f(angles)), with f the usual triclinic volume factor (sqrt(3)/2 for hexagonal).

Meaning of `ratio` (the paper's "axis ratio"): it is c/a for every system with a free c axis
(tetragonal, hexagonal, orthorhombic, monoclinic, triclinic). Systems without a free axis ratio
(cubic, rhombohedral: a = b = c) accept and ignore it. Orthorhombic, monoclinic and triclinic cells
also draw b/a uniformly from [min, max] of `AXIS_RATIOS`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import product
from typing import Any

import numpy as np
from pymatgen.core import Lattice, Structure

from chggen_plugins.errors import ChggenError

LATTICE_SYSTEMS: tuple[str, ...] = (
    "cubic",
    "tetragonal",
    "orthorhombic",
    "monoclinic",
    "triclinic",
    "hexagonal",
    "rhombohedral",
)
AXIS_RATIOS: tuple[float, ...] = (0.5, 0.75, 1.0, 1.25, 1.5)
DEFAULT_V0 = 24.0  # A^3 per atom

# Angle ranges in degrees. Monoclinic beta > 90 by convention; triclinic angles within 70-110 always
# give a valid cell (volume factor >= 0.57); rhombohedral alpha < 120 is required for a real cell,
# and 50-110 spans acute and obtuse rhombohedra without approaching the flat limit.
MONOCLINIC_BETA = (95.0, 125.0)
TRICLINIC_ANGLE = (70.0, 110.0)
RHOMBOHEDRAL_ALPHA = (50.0, 110.0)
B_OVER_A = (min(AXIS_RATIOS), max(AXIS_RATIOS))


def _shape(system: str, ratio: float, rng: np.random.Generator) -> tuple[float, float, tuple[float, float, float]]:
    """b/a, c/a and (alpha, beta, gamma) in degrees for one draw of `system`."""
    if system == "cubic":
        return 1.0, 1.0, (90.0, 90.0, 90.0)
    if system == "tetragonal":
        return 1.0, ratio, (90.0, 90.0, 90.0)
    if system == "hexagonal":
        return 1.0, ratio, (90.0, 90.0, 120.0)
    if system == "rhombohedral":
        alpha = float(rng.uniform(*RHOMBOHEDRAL_ALPHA))
        return 1.0, 1.0, (alpha, alpha, alpha)
    b_over_a = float(rng.uniform(*B_OVER_A))
    if system == "orthorhombic":
        return b_over_a, ratio, (90.0, 90.0, 90.0)
    if system == "monoclinic":
        return b_over_a, ratio, (90.0, float(rng.uniform(*MONOCLINIC_BETA)), 90.0)
    angles = rng.uniform(*TRICLINIC_ANGLE, size=3)
    return b_over_a, ratio, (float(angles[0]), float(angles[1]), float(angles[2]))


def volume_factor(alpha: float, beta: float, gamma: float) -> float:
    """V / (a b c) for cell angles in degrees: sqrt(1 - cos^2 a - cos^2 b - cos^2 g + 2 cos a cos b cos g)."""
    ca, cb, cg = np.cos(np.radians([alpha, beta, gamma]))
    return float(np.sqrt(1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg))


def random_lattice(
    system: str,
    ratio: float,
    n_atoms: int,
    v0: float = DEFAULT_V0,
    rng: np.random.Generator | int | None = None,
) -> Lattice:
    """A random cell of `system` with axis ratio `ratio` and volume exactly n_atoms * v0.

    `rng` is a numpy Generator (shared across calls for a reproducible sequence) or a seed.
    """
    if system not in LATTICE_SYSTEMS:
        raise ChggenError(f"lattice system {system!r} is not one of {', '.join(LATTICE_SYSTEMS)}")
    if not ratio > 0:
        raise ChggenError(f"axis ratio {ratio} must be > 0")
    if int(n_atoms) != n_atoms or n_atoms <= 0:
        raise ChggenError(f"n_atoms {n_atoms} must be a positive integer")
    if not v0 > 0:
        raise ChggenError(f"V0 {v0} A^3/atom must be > 0")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    b_over_a, c_over_a, angles = _shape(system, float(ratio), gen)
    volume = n_atoms * v0
    a = (volume / (b_over_a * c_over_a * volume_factor(*angles))) ** (1.0 / 3.0)
    return Lattice.from_parameters(a, b_over_a * a, c_over_a * a, *angles)


def lattice_grid(
    n_atoms: int,
    v0: float = DEFAULT_V0,
    seed: int | None = None,
    systems: tuple[str, ...] = LATTICE_SYSTEMS,
    ratios: tuple[float, ...] = AXIS_RATIOS,
) -> Iterator[tuple[str, float, Lattice]]:
    """Every (system, ratio, cell) of the campaign's starting grid, drawn from one seeded Generator."""
    rng = np.random.default_rng(seed)
    for system, ratio in product(systems, ratios):
        yield system, ratio, random_lattice(system, ratio, n_atoms, v0, rng)


def v0_from_structure(structure: Structure) -> float:
    """Volume per atom of a relaxed structure: the V0 for the next round of random cells."""
    if len(structure) == 0:
        raise ChggenError("cannot take V0 from a structure with no atoms")
    return float(structure.volume / len(structure))


def parse_supercell(spec: str | Sequence[int]) -> tuple[int, int, int]:
    """'2x1x1' or (2, 1, 1) -> (2, 1, 1): three positive integers."""
    def positive(part: Any) -> int:
        if isinstance(part, str) and part.strip().isdigit():
            return int(part)
        return part if isinstance(part, int) and not isinstance(part, bool) else 0

    numbers = [positive(part) for part in (spec.lower().split("x") if isinstance(spec, str) else spec)]
    if len(numbers) != 3 or min(numbers) < 1:
        raise ChggenError(f"supercell {spec!r}: write three positive integers, e.g. 2x1x1")
    return numbers[0], numbers[1], numbers[2]
