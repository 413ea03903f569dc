"""Random cells: exact volume, the constraints of each lattice system, reproducible draws."""

import math

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_plugins.errors import ChggenError
from chggen_plugins.structures.cells import (
    AXIS_RATIOS,
    LATTICE_SYSTEMS,
    MONOCLINIC_BETA,
    RHOMBOHEDRAL_ALPHA,
    TRICLINIC_ANGLE,
    lattice_grid,
    random_lattice,
    v0_from_structure,
)

ALL = [(s, r) for s in LATTICE_SYSTEMS for r in AXIS_RATIOS]


def closed_form_volume(system: str, lat: Lattice) -> float:
    """Textbook volume of each system from its own parameters (not the general determinant)."""
    a, b, c = lat.abc
    al, be, _ = np.radians(lat.angles)
    if system in ("cubic", "tetragonal", "orthorhombic"):
        return a * b * c
    if system == "hexagonal":
        return math.sqrt(3) / 2 * a * a * c
    if system == "monoclinic":
        return a * b * c * math.sin(be)
    if system == "rhombohedral":
        ca = math.cos(al)
        return a**3 * math.sqrt(1 - 3 * ca**2 + 2 * ca**3)
    return abs(np.linalg.det(lat.matrix))


@pytest.mark.parametrize(("system", "ratio"), ALL)
def test_volume_is_exactly_n_times_v0(system, ratio):
    lat = random_lattice(system, ratio, n_atoms=13, v0=17.5, rng=7)
    assert lat.volume == pytest.approx(13 * 17.5, rel=1e-9)
    assert closed_form_volume(system, lat) == pytest.approx(13 * 17.5, rel=1e-9)


@pytest.mark.parametrize(("system", "ratio"), ALL)
def test_parameters_obey_the_system(system, ratio):
    lat = random_lattice(system, ratio, n_atoms=8, rng=3)
    a, b, c = lat.abc
    al, be, ga = lat.angles
    approx = lambda x: pytest.approx(x, rel=1e-9)  # noqa: E731
    if system == "cubic":
        assert (b, c, al, be, ga) == (approx(a), approx(a), approx(90), approx(90), approx(90))
    elif system in ("tetragonal", "hexagonal"):
        assert b == approx(a) and c / a == approx(ratio)
        assert (al, be, ga) == (approx(90), approx(90), approx(120 if system == "hexagonal" else 90))
    elif system == "rhombohedral":
        assert b == approx(a) and c == approx(a)
        assert be == approx(al) and ga == approx(al)
        assert RHOMBOHEDRAL_ALPHA[0] <= al <= RHOMBOHEDRAL_ALPHA[1]
    else:
        assert c / a == approx(ratio)
        assert min(AXIS_RATIOS) <= b / a <= max(AXIS_RATIOS)
        if system == "orthorhombic":
            assert (al, be, ga) == (approx(90), approx(90), approx(90))
        elif system == "monoclinic":
            assert al == approx(90) and ga == approx(90)
            assert MONOCLINIC_BETA[0] <= be <= MONOCLINIC_BETA[1]
        else:
            assert all(TRICLINIC_ANGLE[0] <= x <= TRICLINIC_ANGLE[1] for x in (al, be, ga))


# Holohedry of a one-atom cell: the lattice's own point symmetry, found by spglib independently.
HOLOHEDRY = {
    "cubic": {221},
    "tetragonal": {123},
    "orthorhombic": {47},
    "monoclinic": {10, 12},
    "triclinic": {2},
    "hexagonal": {191},
    "rhombohedral": {166},
}


@pytest.mark.parametrize("system", LATTICE_SYSTEMS)
def test_spglib_sees_the_requested_lattice_system(system):
    lat = random_lattice(system, 1.5, n_atoms=1, rng=11)
    sga = SpacegroupAnalyzer(Structure(lat, ["Si"], [[0, 0, 0]]), symprec=1e-5, angle_tolerance=0.01)
    assert sga.get_space_group_number() in HOLOHEDRY[system]


def test_seed_reproducible_and_seeds_differ():
    for system in ("monoclinic", "triclinic", "rhombohedral", "orthorhombic"):
        one = random_lattice(system, 0.75, 20, rng=5).matrix
        assert np.array_equal(one, random_lattice(system, 0.75, 20, rng=5).matrix)
        assert not np.allclose(one, random_lattice(system, 0.75, 20, rng=6).matrix)
    first = [lat.matrix for _, _, lat in lattice_grid(10, seed=1)]
    second = [lat.matrix for _, _, lat in lattice_grid(10, seed=1)]
    assert len(first) == len(LATTICE_SYSTEMS) * len(AXIS_RATIOS)
    assert all(np.array_equal(x, y) for x, y in zip(first, second))


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"v0": 0.0}, "V0"),
        ({"v0": -3.0}, "V0"),
        ({"n_atoms": 0}, "n_atoms"),
        ({"n_atoms": -2}, "n_atoms"),
        ({"n_atoms": 2.5}, "n_atoms"),
        ({"ratio": 0.0}, "ratio"),
        ({"system": "cubik"}, "cubik"),
    ],
)
def test_bad_inputs_name_the_field(kwargs, word):
    args = {"system": "cubic", "ratio": 1.0, "n_atoms": 4, "v0": 24.0} | kwargs
    with pytest.raises(ChggenError, match=word):
        random_lattice(**args)


def test_v0_from_relaxed_structure():
    si = Structure(Lattice.cubic(5.43), ["Si"] * 8, np.random.default_rng(0).random((8, 3)))
    assert v0_from_structure(si) == pytest.approx(5.43**3 / 8, rel=1e-12)
    lat = random_lattice("hexagonal", 1.25, 8, v0=v0_from_structure(si), rng=0)
    assert lat.volume == pytest.approx(5.43**3, rel=1e-9)
