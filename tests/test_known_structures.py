"""The three published cathodes are the crystals the papers describe: space group, formula, cell,
and the shortest bonds (a wrong origin choice or a misplaced site moves these by tenths of an A)."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_plugins.structures.known import KNOWN

# formula: (space group number, atoms in the cell used, conventional a, b, c in A,
#           shortest distance per element pair in A: the bonds each paper reports)
EXPECTED = {
    "LiCoO2": (166, 12, (2.8156, 2.8156, 14.0542), {("Co", "O"): 1.921, ("Li", "O"): 2.093, ("O", "O"): 2.614}),
    "LiFePO4": (62, 28, (10.332, 6.010, 4.692), {("O", "P"): 1.523, ("Fe", "O"): 2.064, ("Li", "O"): 2.087}),
    "LiMn2O4": (227, 14, (8.2483, 8.2483, 8.2483), {("Mn", "O"): 1.958, ("Li", "O"): 1.973}),
}


def shortest(structure: Structure, first: str, second: str) -> float:
    """Shortest periodic distance between an atom of `first` and one of `second` (A)."""
    a = [site.frac_coords for site in structure if site.specie.symbol == first]
    b = [site.frac_coords for site in structure if site.specie.symbol == second]
    distances = structure.lattice.get_all_distances(a, b)
    return float(distances[distances > 1e-6].min())


@pytest.mark.parametrize("formula", sorted(EXPECTED))
def test_known_structure_is_the_published_crystal(formula: str) -> None:
    number, atoms, abc, bonds = EXPECTED[formula]
    structure = KNOWN[formula].structure()
    assert structure.composition.reduced_formula == formula
    assert len(structure) == atoms
    analyzer = SpacegroupAnalyzer(structure, symprec=0.01)
    assert analyzer.get_space_group_number() == number
    conventional = analyzer.get_conventional_standard_structure()
    assert np.allclose(sorted(conventional.lattice.abc), sorted(abc), atol=1e-3)
    for (first, second), length in bonds.items():
        assert shortest(structure, first, second) == pytest.approx(length, abs=2e-3), (first, second)


def test_known_structures_are_fresh_copies() -> None:
    """The benchmark strips Li from what it gets: that must not change the next caller's crystal."""
    first = KNOWN["LiCoO2"].structure()
    first.remove_species(["Li"])
    assert KNOWN["LiCoO2"].structure().composition.reduced_formula == "LiCoO2"
