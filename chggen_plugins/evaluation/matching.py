"""Telling structures apart, and XtalPaint's success rule against a known reference.

Why one place: `distinct` (how many different structures a method found) and match-or-lower (did a
sample find its reference, or something at least as good) must call two structures "the same" with
the same tolerances, or a table could count a structure as found and as new at once.
"""

from __future__ import annotations

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

# StructureMatcher tolerances: fractional length 0.2, site 0.3 (of the average free length per
# atom), angle 5 deg. pymatgen's defaults, written out so that a pymatgen release cannot move them.
LTOL, STOL, ANGLE_TOL = 0.2, 0.3, 5.0
MATCH_OR_LOWER_MARGIN = 0.001  # eV/atom: a sample this close above its reference's energy still counts


def structure_matcher() -> StructureMatcher:
    """The project's StructureMatcher (LTOL, STOL, ANGLE_TOL; cells reduced, volumes scaled)."""
    return StructureMatcher(ltol=LTOL, stol=STOL, angle_tol=ANGLE_TOL)


def match_or_lower(structure: Structure, e_per_atom: float, reference: Structure, reference_e_per_atom: float,
                   matcher: StructureMatcher | None = None) -> bool:
    """XtalPaint's success rule: the relaxed sample is its reference, or lies no higher in energy.

    Args:
        structure: the relaxed sample.
        e_per_atom: its energy (eV/atom), by the relaxer that relaxed `reference`: energies of two
            relaxers are not comparable.
        reference: the known structure the sample should find (for campaign inpainting: the relaxed
            structure its host was stripped from).
        reference_e_per_atom: the reference's energy (eV/atom), same relaxer.
        matcher: a StructureMatcher to reuse (default: `structure_matcher()`).

    Returns:
        True when `matcher` fits the two structures, or when `e_per_atom` is at most
        `reference_e_per_atom` + MATCH_OR_LOWER_MARGIN: a different structure at least as low is
        as good a find as the reference itself.
    """
    if e_per_atom <= reference_e_per_atom + MATCH_OR_LOWER_MARGIN:
        return True
    return bool((matcher or structure_matcher()).fit(structure, reference))  # numpy's bool otherwise
