"""Host building: stripping, the tolerance ladder, exact guest counts when the cell changes."""

from fractions import Fraction

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError
from pymatgen.util.testing import STRUCTURES_DIR

from chggen_plugins.errors import ChggenError
from chggen_plugins.structures.host import (
    TOLERANCE_LADDER,
    HostSymmetryError,
    host_from_structure,
    select_guests,
    strip_guests,
    symmetrize_host,
)


def rattle(structure: Structure, distance: float, seed: int) -> Structure:
    """Move every atom by exactly `distance` A in a random direction."""
    v = np.random.default_rng(seed).normal(size=(len(structure), 3))
    v *= distance / np.linalg.norm(v, axis=1, keepdims=True)
    return Structure(structure.lattice, structure.species, structure.cart_coords + v, coords_are_cartesian=True)


def group_or_p1(structure: Structure, symprec: float, angle: float) -> int:
    try:
        return SpacegroupAnalyzer(structure, symprec=symprec, angle_tolerance=angle).get_space_group_number()
    except SymmetryUndeterminedError:
        return 1


def diamond_primitive() -> Structure:
    lat = Lattice([[0, 2.715, 2.715], [2.715, 0, 2.715], [2.715, 2.715, 0]])
    return Structure(lat, ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def test_rattled_lifepo4_strips_li_and_climbs_the_ladder():
    lfp = rattle(Structure.from_file(STRUCTURES_DIR / "LiFePO4.json"), 0.05, seed=0)
    framework, guests = strip_guests(lfp, "Li")
    assert guests == {"Li": 4}
    assert framework.composition.formula == "Fe4 P4 O16"
    kept = [site for site in lfp if site.specie.symbol != "Li"]
    assert np.allclose(framework.cart_coords, [s.coords for s in kept])

    host = host_from_structure(lfp, "Li")
    assert (host.spacegroup_number, host.spacegroup_symbol) == (62, "Pnma")
    rung = TOLERANCE_LADDER.index((host.symprec, host.angle_tolerance))
    assert rung > 0  # 0.05 A noise defeats symprec 0.1 here: the ladder had to climb
    assert all(group_or_p1(framework, *tol) <= 2 for tol in TOLERANCE_LADDER[:rung])
    # The host is the idealized cell: symmetric at a tight tolerance, same composition and size.
    assert group_or_p1(host.structure, 1e-4, 1.0) == 62
    assert host.structure.composition == framework.composition
    assert host.guests == {"Li": 4} and host.cell_scale == 1


def test_explicit_guests_on_a_user_cif_framework(tmp_path):
    fepo4 = Structure.from_file(STRUCTURES_DIR / "LiFePO4.json")
    fepo4.remove_species(["Li"])
    path = tmp_path / "FePO4.cif"
    fepo4.to(filename=str(path))
    host = symmetrize_host(Structure.from_file(path), {"Li": 4})
    assert host.spacegroup_number == 62
    assert (host.symprec, host.angle_tolerance) == TOLERANCE_LADDER[0]
    assert host.guests == {"Li": 4}


def test_primitive_input_gets_conventional_cell_and_four_times_the_guests():
    prim = diamond_primitive()
    prim.append("Li", [0.5, 0.5, 0.5])  # LiSi2 in the 2-Si primitive cell
    host = host_from_structure(prim, "Li")
    assert host.spacegroup_number == 227
    assert host.structure.composition["Si"] == 8
    assert host.cell_scale == Fraction(4)
    assert host.guests == {"Li": 4}  # Li:Si stays 1:2
    assert host.structure.volume == pytest.approx(4 * prim.volume, rel=1e-6)


def test_supercell_input_shrinks_guests_with_the_cell():
    conv = SpacegroupAnalyzer(diamond_primitive()).get_conventional_standard_structure()
    big = conv * (2, 2, 2)
    for x in ((0.5, 0.5, 0.5), (0.0, 0.0, 0.25)):
        for shift in np.ndindex(2, 2, 2):
            big.append("Li", (np.array(x) + shift) / 2)
    host = host_from_structure(rattle(big, 0.02, seed=1), "Li")
    assert host.spacegroup_number == 227
    assert host.structure.composition["Si"] == 8
    assert host.cell_scale == Fraction(1, 8)
    assert host.guests == {"Li": 2}  # 16 Li / 64 Si -> 2 Li / 8 Si

    with pytest.raises(ChggenError, match="Li16 becomes 0.5"):
        host_from_structure(big, "Li", cell="primitive")  # 2-Si primitive cell: 16/32 Li


def test_fractional_guest_count_is_refused():
    three = diamond_primitive() * (3, 1, 1)  # 6 Si; the conventional cell holds 8
    with pytest.raises(ChggenError, match=r"Li1 becomes 1.33333.*multiple of 3"):
        symmetrize_host(three, {"Li": 1})
    assert symmetrize_host(three, {"Li": 3}).guests == {"Li": 4}


def test_all_guest_structure_errors():
    li = Structure(Lattice.cubic(3.5), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    with pytest.raises(ChggenError, match="no framework atoms left"):
        strip_guests(li, "Li")


def test_random_p1_framework_fails_cleanly():
    rng = np.random.default_rng(0)
    lattice = Lattice.from_parameters(9.0, 10.0, 11.0, 77.0, 83.0, 101.0)
    framework = Structure(lattice, ["Si"] * 12, rng.random((12, 3)))
    with pytest.raises(HostSymmetryError, match=r"Si12: no space group above P-1 up to symprec 2.0"):
        symmetrize_host(framework, {"Li": 2})
    assert issubclass(HostSymmetryError, ChggenError)


@pytest.mark.parametrize(
    ("guests", "word"),
    [({"Li": 0}, "Li=0"), ({"Li": 1.5}, "Li=1.5"), ({"Xx": 1}, "'Xx'"), ({}, "no guests")],
)
def test_bad_guest_counts_name_the_value(guests, word):
    with pytest.raises(ChggenError, match=word):
        symmetrize_host(diamond_primitive(), guests)


def test_guest_species_absent_or_unknown():
    with pytest.raises(ChggenError, match="Na not found"):
        strip_guests(diamond_primitive(), "Na")
    with pytest.raises(ChggenError, match="'Lithium'"):
        strip_guests(diamond_primitive(), ["Lithium"])


def diamond_with_li():
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    si.append("Li", [0.5, 0.5, 0.5])
    si.append("Li", [0.25, 0.75, 0.75])
    return si


def test_select_guests_by_index_species_and_sphere():
    crystal = diamond_with_li()
    host, guests = select_guests(crystal, indices=[0, 8])
    assert guests == {"Si": 1, "Li": 1} and len(host) == 8
    assert host[0].frac_coords.tolist() == crystal[1].frac_coords.tolist()
    # a Si atom and its four neighbours at 2.35 A; the next shell is at 3.84 A
    host, guests = select_guests(crystal, species=["Si"], centre=0, radius=2.5)
    assert guests == {"Si": 5} and host.composition.formula == "Li2 Si3"
    near = crystal[0].frac_coords
    assert all(crystal.lattice.get_distance_and_image(near, s.frac_coords)[0] > 2.5 for s in host if s.specie.symbol == "Si")
    # every element within a sphere around a point: the Li at the body centre and nothing else
    host, guests = select_guests(crystal, centre=[0.5, 0.5, 0.5], radius=1.0)
    assert guests == {"Li": 1} and len(host) == 9


@pytest.mark.parametrize("kwargs,message", [
    ({"indices": [0], "species": ["Si"]}, "not both"),
    ({"indices": [0, 0]}, "each must appear once"),
    ({"indices": [10]}, "lie in 0..9"),
    ({"species": ["Si"], "centre": 0}, "both its centre and its radius"),
    ({"species": ["Li"], "centre": [0.0, 0.0, 0.0], "radius": 1.0}, "no guest candidate within 1 A"),
    ({"species": ["Na"]}, "Na not found"),
    ({"centre": 0, "radius": 100.0}, "no framework atoms left"),
    ({}, "give site indices, species, or a sphere"),
])
def test_select_guests_refuses_in_one_line(kwargs, message):
    with pytest.raises(ChggenError, match=message):
        select_guests(diamond_with_li(), **kwargs)
