"""Host frameworks for inpainting: strip the guests, symmetrize what is left.

CHGGen's second stage fixes a symmetric framework (the host) and generates only the guests. The
framework comes from a relaxed generated structure (or a user file) minus the guest species; relaxed
frameworks are only nearly symmetric, so spglib is tried at rising tolerance until it finds a group
above P-1, and the symmetrized cell becomes the host.

The host is spglib's *refined* cell: the conventional standard cell with idealized lattice and
positions. It is the cell whose axes carry the symmetry (what a chemist and the paper's figures show),
and it is never smaller than the primitive cell, so short axes that would leave atoms without
neighbours inside a score model's cutoff are avoided. `cell="primitive"` gives the standardized
primitive cell instead (fewer atoms, cheaper sampling). Either way the cell may differ in size from
the input, and the guest counts are scaled with the framework so the composition stays exact.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from pymatgen.core import Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError

from chggen_plugins.errors import ChggenError
from chggen_plugins.structures.wyckoff import HOST_SYMPREC

# spglib prints C-level warnings on every failed search; high ladder rungs fail often by design.
os.environ.setdefault("SPGLIB_WARNING", "OFF")

# (symprec in A, angle_tolerance in degrees), tried in order (paper, Methods).
TOLERANCE_LADDER: tuple[tuple[float, float], ...] = (
    (0.1, 10.0),
    (0.2, 15.0),
    (0.5, 15.0),
    (0.8, 15.0),
    (1.0, 20.0),
    (1.5, 30.0),
    (2.0, 30.0),
)


class HostSymmetryError(ChggenError):
    """The framework stays P1/P-1 at every tolerance: skip this host, keep the campaign going."""


@dataclass(frozen=True)
class Host:
    """A symmetrized framework and the guests to generate into it (counts for `structure`'s cell)."""

    structure: Structure
    guests: dict[str, int]
    symprec: float
    angle_tolerance: float
    spacegroup_symbol: str
    spacegroup_number: int
    cell_scale: Fraction  # host atoms / input framework atoms


def _element_symbol(name: str) -> str:
    try:
        return Element(name).symbol
    except ValueError:
        raise ChggenError(f"guest species {name!r} is not an element symbol") from None


def strip_guests(structure: Structure, species: str | Iterable[str] = "Li") -> tuple[Structure, dict[str, int]]:
    """Remove every site of the guest species; return the framework and how many of each were removed."""
    names = [species] if isinstance(species, str) else list(species)
    if not names:
        raise ChggenError("no guest species given")
    return select_guests(structure, species=names)


def select_guests(structure: Structure, indices: Iterable[int] | None = None,
                  species: Iterable[str] | None = None, centre: Iterable[float] | int | None = None,
                  radius: float | None = None) -> tuple[Structure, dict[str, int]]:
    """The atoms of `structure` to regenerate, taken out as guests: (the host left, guest counts).

    Args:
        structure: an ordered structure.
        indices: site indices (0-based) to regenerate; not combined with the other selectors.
        species: element symbols: every atom of these (within the sphere, when one is given).
        centre: the sphere's centre, as fractional coordinates or a site index.
        radius: the sphere's radius in A (periodic distances): a defect's or a surface's neighbourhood.
    Returns:
        The host (the structure without the selected sites) and {symbol: count} of the removed atoms.
    """
    if not structure.is_ordered:
        raise ChggenError(f"{structure.formula}: partial occupancies; a host needs an ordered structure")
    if indices is not None:
        if species is not None or centre is not None or radius is not None:
            raise ChggenError("guests: choose them by site indices or by species and sphere, not both")
        chosen = list(indices)
        bad = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int) or not 0 <= i < len(structure)]
        if bad or len(set(chosen)) != len(chosen) or not chosen:
            raise ChggenError(f"guest site indices {chosen}: each must appear once and lie in 0..{len(structure) - 1}")
    else:
        symbols = None if species is None else [_element_symbol(name) for name in species]
        missing = [s for s in symbols or [] if not any(site.specie.symbol == s for site in structure)]
        if missing:
            raise ChggenError(f"guest species {', '.join(missing)} not found in {structure.formula}")
        chosen = [i for i, site in enumerate(structure) if symbols is None or site.specie.symbol in symbols]
        if (centre is None) != (radius is None):
            raise ChggenError("guests within a sphere need both its centre and its radius")
        if centre is not None:
            chosen = _within_sphere(structure, chosen, centre, radius)
        elif symbols is None:
            raise ChggenError("guests: give site indices, species, or a sphere")
    counts: dict[str, int] = {}
    for i in chosen:
        counts[structure[i].specie.symbol] = counts.get(structure[i].specie.symbol, 0) + 1
    keep = [i for i in range(len(structure)) if i not in set(chosen)]
    if not keep:
        raise ChggenError(f"{structure.formula}: no framework atoms left after taking out {counts}")
    return Structure.from_sites([structure[i] for i in keep]), counts


def _within_sphere(structure: Structure, candidates: list[int], centre: Iterable[float] | int,
                   radius: float) -> list[int]:
    """The candidate sites within `radius` A (periodic) of `centre` (fractional or a site index)."""
    if not radius > 0:
        raise ChggenError(f"sphere radius {radius!r} must be > 0 A")
    if isinstance(centre, int) and not isinstance(centre, bool):
        if not 0 <= centre < len(structure):
            raise ChggenError(f"sphere centre site {centre} is outside 0..{len(structure) - 1}")
        point = structure[centre].frac_coords
    else:
        point = list(centre)
        if len(point) != 3:
            raise ChggenError(f"sphere centre {point} must be 3 fractional coordinates or a site index")
    if not candidates:
        return []
    distances = structure.lattice.get_all_distances([point], structure.frac_coords[candidates])[0]
    inside = [i for i, d in zip(candidates, distances) if d <= radius]
    if not inside:
        raise ChggenError(f"no guest candidate within {radius:g} A of the sphere centre {centre}")
    return inside


def _scaled_guests(guests: Mapping[str, int], scale: Fraction, formula: str) -> dict[str, int]:
    scaled = {}
    for symbol, count in guests.items():
        value = count * scale
        if value.denominator != 1:
            raise ChggenError(
                f"guest count {symbol}{count} becomes {float(value):g} in the symmetrized cell of {formula} "
                f"({scale} x the input framework); give a guest count that is a multiple of {scale.denominator}"
            )
        scaled[symbol] = int(value)
    return scaled


def symmetrize_host(
    framework: Structure,
    guests: Mapping[str, int],
    ladder: Iterable[tuple[float, float]] = TOLERANCE_LADDER,
    cell: Literal["conventional", "primitive"] = "conventional",
) -> Host:
    """Symmetrize `framework` at the first tolerance giving a group above P-1; scale `guests` to its cell.

    `guests` counts belong to the input framework's cell (e.g. FePO4 framework of LiFePO4: {"Li": 4}).
    Raises `HostSymmetryError` if every rung gives P1 or P-1 (or spglib fails at every rung).
    """
    if cell not in ("conventional", "primitive"):
        raise ChggenError(f"cell {cell!r} must be 'conventional' or 'primitive'")
    if len(framework) == 0:
        raise ChggenError("the host framework has no atoms")
    if not framework.is_ordered:
        raise ChggenError(f"{framework.formula}: partial occupancies; a host needs an ordered structure")
    checked = {}
    for symbol, count in guests.items():
        if isinstance(count, bool) or int(count) != count or count <= 0:
            raise ChggenError(f"guest count {symbol}={count} must be a positive integer")
        checked[_element_symbol(symbol)] = int(count)
    if not checked:
        raise ChggenError("no guests given for the host")

    tried = list(ladder)
    for symprec, angle in tried:
        try:
            sga = SpacegroupAnalyzer(framework, symprec=symprec, angle_tolerance=angle)
        except SymmetryUndeterminedError:
            continue
        number = sga.get_space_group_number()
        if number <= 2:
            continue
        host = sga.get_refined_structure() if cell == "conventional" else sga.get_primitive_standard_structure()
        scale = Fraction(len(host), len(framework))
        return Host(
            structure=host,
            guests=_scaled_guests(checked, scale, framework.formula),
            symprec=symprec,
            angle_tolerance=angle,
            spacegroup_symbol=sga.get_space_group_symbol(),
            spacegroup_number=number,
            cell_scale=scale,
        )
    top = f"symprec {tried[-1][0]}, angle {tried[-1][1]}" if tried else "an empty ladder"
    raise HostSymmetryError(f"{framework.formula}: no space group above P-1 up to {top}; host skipped")


def symmetric_host(structure: Structure, guests: Mapping[str, int], symprec: float = HOST_SYMPREC) -> Host:
    """A host for symmetric inpainting: `structure` itself when spglib finds a group above P-1 at
    `symprec` (A), else symmetrized on the tolerance ladder (cell and guest counts may change)."""
    try:
        sga = SpacegroupAnalyzer(structure, symprec=symprec)
        number = sga.get_space_group_number()
    except SymmetryUndeterminedError:
        number = 1
    if number <= 2:
        return symmetrize_host(structure, guests)
    return Host(structure, dict(guests), symprec, -1.0, sga.get_space_group_symbol(), number, Fraction(1))


def host_from_structure(
    structure: Structure,
    guest_species: str | Iterable[str] = "Li",
    ladder: Iterable[tuple[float, float]] = TOLERANCE_LADDER,
    cell: Literal["conventional", "primitive"] = "conventional",
) -> Host:
    """Host from a full (e.g. relaxed generated) structure: strip `guest_species`, then symmetrize."""
    framework, guests = strip_guests(structure, guest_species)
    return symmetrize_host(framework, guests, ladder, cell)
