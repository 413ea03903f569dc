"""Reading hosts from files and checking them: the reader follows the extension, a CIF without a
structure says pymatgen's reason, overlapping atoms are refused and a lone atom is warned about."""

import warnings
from pathlib import Path

import numpy as np
import pytest
from ase.io import write
from periodic import same_frac_coords
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError, ChggenWarning, first_line
from chggen_plugins.structures.io import atomic_radius, read_structure, to_structure

EXAMPLES = Path(__file__).parent.parent / "examples"
SI_CIF = (EXAMPLES / "si_host.cif").read_text()
LAST_SITE = "  Si  Si7  1  0.75000000  0.75000000  0.25000000  1"


def same_structure(a: Structure, b: Structure) -> bool:
    # A file round trip is not bit for bit: extxyz holds Cartesian positions to 8 decimals (~1e-9 in
    # fractions), and a POSCAR's 0.0 can read back as -5e-18. So: equal modulo 1, to 1e-8.
    return (a.species == b.species and np.allclose(a.lattice.matrix, b.lattice.matrix)
            and same_frac_coords(a.frac_coords, b.frac_coords, atol=1e-8))


@pytest.mark.parametrize("name", ["host.extxyz", "host.xyz", "POSCAR_host.extxyz", "POSCAR"])
def test_the_extension_picks_the_reader(tmp_path, host, name):
    """extxyz is what `chggen inpaint` writes, so it must read it back; a name containing POSCAR is
    a POSCAR only when no extension says otherwise."""
    path = tmp_path / name
    if name == "POSCAR":
        host.to(filename=str(path), fmt="poscar")
    else:
        write(path, AseAtomsAdaptor.get_atoms(host), format="extxyz")
    assert same_structure(read_structure(path), host)


def test_a_non_periodic_xyz_is_refused(tmp_path, host):
    atoms = AseAtomsAdaptor.get_atoms(host)
    atoms.pbc = False
    write(tmp_path / "molecule.xyz", atoms, format="xyz")
    with pytest.raises(ChggenError, match=r"molecule.xyz \(read by ASE as extxyz\): not a periodic 3D crystal"):
        read_structure(tmp_path / "molecule.xyz")


@pytest.mark.parametrize("edit,reason", [
    (("_cell_angle_gamma   90.00000000", "_cell_angle_gamma   180.0"), "Singular matrix"),  # zero volume
    ((LAST_SITE, LAST_SITE + "\n" + LAST_SITE.replace("Si7", "Si8")), "Occupancy 2.0 exceeded"),  # duplicate
])
def test_a_cif_without_a_structure_says_why(tmp_path, edit, reason):
    (tmp_path / "bad.cif").write_text(SI_CIF.replace(*edit))
    with pytest.raises(ChggenError, match=f"bad.cif: cannot read a crystal structure .*{reason}"):
        read_structure(tmp_path / "bad.cif")


def test_a_cif_with_two_blocks_warns_and_uses_the_first(tmp_path):
    second = SI_CIF.replace("data_Si", "data_Si_again").replace(LAST_SITE, "")
    (tmp_path / "two.cif").write_text(SI_CIF + "\n" + second)
    with pytest.warns(ChggenWarning, match="two.cif: 2 data blocks hold a structure; using the first"):
        structure = read_structure(tmp_path / "two.cif")
    assert len(structure) == 8


def test_overlapping_host_atoms_are_refused_with_the_pair(tmp_path, host):
    crowded = host.copy()
    crowded.append("Li", crowded.lattice.get_fractional_coords(crowded[2].coords + [0.3, 0, 0]))
    message = r"sites 2 \(Si\) and 4 \(Li\) are 0.30 A apart"
    with pytest.raises(ChggenError, match=message):
        to_structure(crowded)
    with pytest.raises(ChggenError, match=message):
        to_structure(AseAtomsAdaptor.get_atoms(crowded))
    crowded.to(filename=str(tmp_path / "crowded.cif"))  # the CIF writer groups sites by element
    with pytest.raises(ChggenError, match=r"crowded.cif: sites 0 \(Li\) and 3 \(Si\) are 0.30 A apart"):
        read_structure(tmp_path / "crowded.cif")


def test_a_lone_atom_is_warned_about_and_a_dense_host_is_not(host):
    lonely = Structure(Lattice.cubic(40.0), ["Si"], [[0, 0, 0]])
    with pytest.warns(ChggenWarning, match=r"host: site 0 \(Si\) has no other atom within 7.0 A"):
        to_structure(lonely)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        to_structure(host)


def test_the_cli_prints_a_warning_as_one_line(tmp_path, capsys):
    Structure(Lattice.cubic(40.0), ["Si"], [[0, 0, 0]]).to(filename=str(tmp_path / "lonely.cif"))
    code = main(["inpaint", str(tmp_path / "lonely.cif"), "--guest", "Li:1", "--model", "no-such-model",
                 "--out", str(tmp_path / "out.extxyz")])
    assert code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith("chggen: warning: ") and "lonely.cif: site 0 (Si) has no other atom" in lines[0]
    assert lines[1].startswith("chggen: error: unknown model 'no-such-model'")


def test_a_library_error_contributes_its_first_line_or_its_name():
    # what every "cannot read X (...)" message quotes: never a traceback's worth, never an IndexError
    # on an exception raised without a message
    assert first_line(ValueError("  bad token at line 3\n  context\n")) == "bad token at line 3"
    assert first_line(EOFError()) == "EOFError"


def test_atomic_radius_falls_back_without_a_library_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")     # pymatgen's "No data available" would fail here
        assert atomic_radius(Element("Cf")) == 1.5
        assert atomic_radius(Element("Li")) == 1.45
