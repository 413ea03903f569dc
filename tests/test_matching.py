"""Match-or-lower (XtalPaint's success rule) on real ZnS polymorphs, alone and in a campaign summary."""

import pytest
from pymatgen.core import Lattice, Structure

from chggen_plugins.evaluation.matching import MATCH_OR_LOWER_MARGIN, match_or_lower, structure_matcher
from chggen_plugins.runs.config import SymmetryConfig
from chggen_plugins.runs.report import format_table, reference_of, summary_rows
from chggen_plugins.runs.store import StoredResult

REFERENCE_E = -4.0  # eV/atom


def zincblende() -> Structure:
    return Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["Zn", "S"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def rock_salt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.06), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def found_again() -> Structure:
    """Zincblende as a sample would find it: a 2x1x1 supercell, 3% larger, rattled by 0.02 A."""
    structure = zincblende() * (2, 1, 1)
    structure.scale_lattice(structure.volume * 1.03 ** 3)
    structure.perturb(0.02, seed=0)
    return structure


# (sample, its energy above the reference's in eV/atom, counts?): each case fails one wrong rule
CASES = [
    (found_again, 0.05, True),    # the reference, higher in energy: a rule on energy alone misses it
    (rock_salt, -0.01, True),     # another structure, lower: a rule on matching alone misses it
    (rock_salt, 0.0009, True),    # within the 1 meV/atom margin: a strict "lower" misses it
    (rock_salt, 0.002, False),    # just past the margin: a looser margin counts it
    (rock_salt, 0.05, False),     # another structure, higher: never counts
]


def test_the_polymorphs_are_told_apart_and_the_rattled_supercell_is_not():
    matcher = structure_matcher()
    assert matcher.fit(found_again(), zincblende()) and not matcher.fit(rock_salt(), zincblende())
    assert MATCH_OR_LOWER_MARGIN == 0.001


@pytest.mark.parametrize("make,above,counts", CASES, ids=["match-higher", "other-lower", "other-within-margin",
                                                          "other-past-margin", "other-higher"])
def test_a_sample_counts_when_it_matches_or_lies_no_higher(make, above, counts):
    assert match_or_lower(make(), REFERENCE_E + above, zincblende(), REFERENCE_E) is counts


def _row(uid: str, structure: Structure | None, method: str, status: str, energy: float | None = None,
         parent: str | None = None) -> StoredResult:
    fields = {"composition": "ZnS", "method": method, "status": status, "n_atoms": 8, "steps": 10,
              "e_per_atom": energy, "ed": None if energy is None else energy - REFERENCE_E, "parent": parent}
    return StoredResult(uid, structure, structure, {k: v for k, v in fields.items() if v is not None})


def test_the_summary_counts_inpainted_samples_against_the_structure_their_host_came_from():
    """Reference: the relaxed unconditional row the host row's parent names. Every inpainted sample
    with a reference is in the denominator (an error fails); unconditional rows have no reference,
    and neither do samples of a host file (its parent is a path, not a stored row)."""
    source = _row("ZnS/uncond/0", zincblende(), "unconditional", "relaxed", REFERENCE_E)
    other = _row("ZnS/uncond/1", rock_salt(), "unconditional", "relaxed", REFERENCE_E + 0.2)
    host = _row("ZnS/uncond/0/host", None, "host", "host", parent=source.uid)
    file_host = _row("ZnS/host/file:s.cif", None, "host", "host", parent="/data/s.cif")
    samples = [_row(f"{host.uid}/inpainting/{k}", make(), "inpainting", "relaxed", REFERENCE_E + above, host.uid)
               for k, (make, above, _) in enumerate(CASES)]
    samples.append(_row(f"{host.uid}/inpainting/9", None, "inpainting", "error", parent=host.uid))
    from_file = _row(f"{file_host.uid}/inpainting/0", rock_salt(), "inpainting", "relaxed", REFERENCE_E, file_host.uid)
    rows = [source, other, host, file_host, *samples, from_file]
    by_uid = {row.uid: row for row in rows}
    assert reference_of(samples[0], by_uid) is source
    assert reference_of(source, by_uid) is None and reference_of(from_file, by_uid) is None

    summary = {row["method"]: row for row in summary_rows(rows, SymmetryConfig(0.1, 10.0, ("spglib",)), 0.1)}
    inpainting = summary["inpainting"]
    assert (inpainting["match_or_lower"], inpainting["with_reference"]) == (3, 6)
    assert inpainting["match_or_lower_rate"] == 0.5 and inpainting["generated"] == 7
    assert summary["unconditional"]["with_reference"] is None
    assert " 3/6 " in format_table(list(summary.values()), ("spglib",))
