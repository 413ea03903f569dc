"""Dataset readers on small files, and the builder on a tiny budget with the real CHGNet."""

import gzip
import itertools
import json
import shutil
from pathlib import Path

import ase.db
import ase.io
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Composition, Lattice, Structure

from chggen_plugins.datasets import build_dataset, read_dataset
from chggen_plugins.datasets.build import MAX_EXPANSION, Task, expansion, pyxtal_tolerances, random_start, system_tasks
from chggen_plugins.datasets.readers import read_complete_frames
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer, RelaxResult
from chggen_plugins.structures.io import closest_pair
from chggen_plugins.structures.prototypes import decorate, decorations
from chggen_plugins.structures.systems import (
    CATHODE_SYSTEMS,
    DEFAULT_SYSTEMS,
    charge_fits,
    expand_systems,
    parse_system,
)


def rocksalt() -> Structure:
    return Structure(Lattice.cubic(4.2), ["Li", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def si2() -> Structure:
    return Structure(Lattice.cubic(3.9), ["Si", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def crystal_atoms(energy: float | None) -> Atoms:
    atoms = Atoms("LiS", scaled_positions=[[0, 0, 0], [0.5, 0.5, 0.5]], cell=[4.2] * 3, pbc=True)
    if energy is not None:
        atoms.calc = SinglePointCalculator(atoms, energy=energy)
    return atoms


# --- readers -----------------------------------------------------------------------------------

def test_csv_with_cif_column(tmp_path: Path) -> None:
    path = tmp_path / "train.csv"
    path.write_text('"",material_id,formation_energy_per_atom,energy_per_atom,cif\n'
                    f'0,mp-1,-0.5,-4.0,"{rocksalt().to(fmt="cif")}"\n'
                    f'1,mp-2,-0.1,,"{si2().to(fmt="cif")}"\n')
    records = read_dataset(path)
    assert [r.structure.composition.reduced_formula for r in records] == ["LiS", "Si"]
    assert records[0].energy == pytest.approx(-8.0) and records[1].energy is None
    assert records[0].info["material_id"] == "mp-1" and records[0].info["formation_energy_per_atom"] == "-0.5"


def test_csv_errors_name_the_file_and_row(tmp_path: Path) -> None:
    no_cif = tmp_path / "a.csv"
    no_cif.write_text("material_id,structure\nmp-1,x\n")
    with pytest.raises(ChggenError, match=r"a\.csv: no 'cif' column"):
        read_dataset(no_cif)
    bad = tmp_path / "b.csv"
    bad.write_text(f'material_id,cif\nmp-1,"{rocksalt().to(fmt="cif")}"\nmp-9,not a cif\n')
    with pytest.raises(ChggenError, match=r"b\.csv row 2 \(mp-9\): cannot parse the CIF"):
        read_dataset(bad)


def test_extxyz_and_ase_db_carry_energies(tmp_path: Path) -> None:
    xyz = tmp_path / "set.extxyz"
    ase.io.write(xyz, [crystal_atoms(-7.5), crystal_atoms(None)], format="extxyz")
    records = read_dataset(xyz)
    assert [r.energy for r in records] == [pytest.approx(-7.5), None]
    assert records[0].structure.composition == Composition("LiS")

    db_path = tmp_path / "set.db"
    with ase.db.connect(db_path) as db:
        db.write(crystal_atoms(-7.0), tag="a")
        db.write(crystal_atoms(None))
    records = read_dataset(db_path)
    assert [r.energy for r in records] == [pytest.approx(-7.0), None]
    assert records[0].info == {"tag": "a"}


def test_folder_reads_a_compressed_copy_only_when_the_plain_one_is_absent(tmp_path: Path) -> None:
    ase.io.write(tmp_path / "a.extxyz", [crystal_atoms(-7.5)], format="extxyz")
    (tmp_path / "a.extxyz.gz").write_bytes(gzip.compress((tmp_path / "a.extxyz").read_bytes()))
    assert len(read_dataset(tmp_path)) == 1  # the builder keeps both; count each structure once
    (tmp_path / "a.extxyz").unlink()
    assert len(read_dataset(tmp_path)) == 1  # a fresh clone has only the committed .gz


def test_cif_folder_and_path_errors(tmp_path: Path) -> None:
    folder = tmp_path / "cifs"
    folder.mkdir()
    rocksalt().to(filename=str(folder / "b.cif"))
    si2().to(filename=str(folder / "a.cif"))
    assert [r.structure.composition.reduced_formula for r in read_dataset(folder)] == ["Si", "LiS"]
    with pytest.raises(ChggenError, match="no such file"):
        read_dataset(tmp_path / "missing.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ChggenError, match=r"no \*\.cif or \*\.extxyz files"):
        read_dataset(tmp_path / "empty")
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ChggenError, match="unknown dataset format"):
        read_dataset(tmp_path / "x.json")
    molecule = tmp_path / "mol.extxyz"
    ase.io.write(molecule, Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.74]]), format="extxyz")
    with pytest.raises(ChggenError, match="not a periodic 3D crystal"):
        read_dataset(molecule)


def test_partial_extxyz_tail_is_left_for_later(tmp_path: Path) -> None:
    path = tmp_path / "grow.extxyz"
    ase.io.write(path, crystal_atoms(-1.0), format="extxyz")
    whole = path.stat().st_size
    with open(path, "a") as handle:
        handle.write("2\nLattice=\"4 0 0 0 4 0 0 0 4\" Properties=species:S:1:pos:R:3\nLi 0 0 0\n")
    frames, offset = read_complete_frames(path, 0)
    assert len(frames) == 1 and offset == whole
    assert read_complete_frames(path, offset) == ([], offset)


# --- systems and prototypes ----------------------------------------------------------------------

def test_systems_and_charge_rule() -> None:
    li_si = parse_system("Li-Si", 24)
    assert li_si.elements == ("Li", "Si") and "Li13Si4" in li_si.formulas and "Li21Si5" not in li_si.formulas
    assert parse_system("P-Zn-S", 24).formulas == parse_system("Zn-P-S", 24).formulas
    assert parse_system("Mg-O", 24).formulas == ("MgO",)
    assert charge_fits(Composition("Li3PS4")) and not charge_fits(Composition("LiS"))
    with pytest.raises(ChggenError, match="'Xx' is not an element"):
        parse_system("Li-Xx", 24)
    with pytest.raises(ChggenError, match="outside Li-Si"):
        parse_system("Li-Si:LiGe", 24)


def test_prototypes_map_cation_sites_to_cations() -> None:
    found = decorations(parse_system("Li-S:Li2S", 24), 24)
    antifluorite = next(d for d in found if d.label == "AB2_cF12_225_a_c")  # CaF2
    assert dict(antifluorite.mapping) == {"Ca": "S", "F": "Li"}  # only this way round is charge-balanced
    structure = decorate(antifluorite)
    assert structure.composition.reduced_formula == "Li2S" and len(structure) == 3
    assert 1.5 < min(structure.distance_matrix[0][1:]) < 3.0


# Known phases each cathode preset must sample (reduced formulas as `formula` writes them).
KNOWN_CATHODE_PHASES = {
    "Li-Co-O": ["LiCoO2", "CoO2", "Co3O4", "CoO", "Li2O"],
    "Li-Ni-O": ["LiNiO2", "NiO2", "NiO", "Li2O"],
    "Li-Mn-O": ["LiMn2O4", "MnO2", "Li2MnO3", "LiMnO2"],
    "Li-Fe-O": ["LiFeO2", "Fe2O3", "Fe3O4"],
    "Li-Fe-P-O": ["LiFePO4", "FePO4", "Li3PO4", "Fe2O3"],
    "Li-V-O": ["LiV2O5", "V2O5", "LiVO2"],
    "Li-Ti-O": ["Li4Ti5O12", "Li2TiO3", "TiO2", "LiTi2O4"],
    "Na-Co-O": ["NaCoO2", "Na2Co3O6", "CoO2"],
    "Na-Mn-O": ["NaMnO2", "MnO2"],
    "Na-Fe-O": ["NaFeO2", "Fe2O3"],
    "Mg-Mn-O": ["MgMn2O4", "MgO", "MnO2"],
    "Mg-V-O": ["MgV2O5", "V2O5", "MgO"],
}


def test_cathode_presets_parse_and_hold_the_known_phases() -> None:
    assert list(DEFAULT_SYSTEMS) == ["Li-Si", "Zn-P-S", "Li-P-S", "Li-Ti-S"]  # the CLI default stays
    assert list(CATHODE_SYSTEMS) == list(KNOWN_CATHODE_PHASES)
    for name, listed in CATHODE_SYSTEMS.items():
        system = parse_system(name, 24)
        assert system.name == name and system.formulas == listed  # every formula kept, none renamed
        assert set(KNOWN_CATHODE_PHASES[name]) <= set(system.formulas), name
    assert parse_system("O-Co-Li", 24).formulas == CATHODE_SYSTEMS["Li-Co-O"]  # any element order
    assert "Li4Ti5O12" not in parse_system("Li-Ti-O", 20).formulas  # 21 atoms per formula unit


class _RefusingRelaxer:
    """Stands in for CHGNet: every start fails at once, so a build only walks its task lists."""

    fmax, min_distance = 0.1, 1.0

    def relax(self, structure: Structure) -> RelaxResult:
        return RelaxResult(None, None, None, None, None, 0, False, "relaxation failed: stub")


def test_cathodes_group_expands_to_every_cathode_system(tmp_path: Path) -> None:
    assert expand_systems(["cathodes"]) == list(CATHODE_SYSTEMS)
    assert expand_systems(["Li-Si", "Li-Co-O", "Cathodes"]) == ["Li-Si", *CATHODE_SYSTEMS]
    assert expand_systems(["Li-Co-O:LiCoO2"]) == ["Li-Co-O:LiCoO2"]
    from chggen_plugins.cli import build_parser

    assert build_parser().parse_args(["dataset", "build", "out"]).systems == list(DEFAULT_SYSTEMS)
    summary = build_dataset(tmp_path, systems=["cathodes"], target=1, patience=1, prototypes=False,
                            progress=False, relaxer=_RefusingRelaxer())
    assert list(summary.counts) == list(CATHODE_SYSTEMS) and set(summary.counts.values()) == {0}
    assert [a["system"] for a in attempts(tmp_path)] == list(CATHODE_SYSTEMS)  # one turn each


def test_cathode_prototypes_include_layered_spinel_and_rock_salt() -> None:
    found = decorations(parse_system("Li-Co-O", 24), 24)
    by_label = {(d.label, d.formula): d for d in found}
    layered = by_label["ABC2_hR4_166_a_b_c", "LiCoO2"]  # NaCrS2 = alpha-NaFeO2 type, R-3m
    assert dict(layered.mapping) == {"Na": "Li", "Cr": "Co", "S": "O"}
    assert ("A2BC4_cF56_227_d_a_e", "LiCo2O4") in by_label  # MgAl2O4 spinel, Mg -> Li
    assert ("AB_cF8_225_a_b", "CoO") in by_label  # rock salt
    assert ("AB2_cF12_225_a_c", "Li2O") in by_label  # antifluorite
    assert ("AB2_hP3_164_a_d", "CoO2") in by_label  # CdI2 = O1 CoO2
    structure = decorate(layered)
    assert structure.composition.reduced_formula == "LiCoO2" and len(structure) == 4
    cobalt = next(i for i, site in enumerate(structure) if site.specie.symbol == "Co")
    assert 1.6 < min(structure.get_distance(cobalt, j) for j in range(4) if j != cobalt) < 2.6


def test_expansion_flags_cells_that_fell_apart() -> None:
    dense = Structure(Lattice.cubic(3.0), ["Li", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])  # CsCl-type
    assert expansion(dense) < 1.0
    dense.scale_lattice(dense.volume * 4)
    assert expansion(dense) > MAX_EXPANSION


def test_random_start_is_deterministic() -> None:
    task = Task("t", "Li-Si", "Li2Si", 123, None)
    first, second = random_start(task, 9), random_start(task, 9)
    assert first == second and len(first) <= 9 and first.composition.reduced_formula == "Li2Si"


def test_random_oxide_starts_keep_pairs_a_relaxable_distance_apart() -> None:
    """PyXtal alone allows O-O at 0.7 A: these three Li-Co-O starts had a pair at 0.80-0.88 A and
    were set aside unrelaxed. Pairs PyXtal already keeps 1 A apart (every sulfide pair) are as before."""
    assert pyxtal_tolerances(["O"]).get_tol("O", "O") == 1.0
    default = pyxtal_tolerances([])
    for a, b in itertools.combinations_with_replacement(["Li", "Ti", "P", "S"], 2):
        assert pyxtal_tolerances(["Li", "Ti", "P", "S"]).get_tol(a, b) == default.get_tol(a, b) >= 1.0
    wanted = {"Li2CoO2/seed0/round0", "CoO2/seed0/round1", "Li2O/seed0/round1"}
    tasks = [t for t in itertools.islice(system_tasks(parse_system("Li-Co-O", 24), 0, 24, False), 16)
             if t.id.split("/", 2)[2] in wanted]
    assert len(tasks) == 3
    for task in tasks:
        assert closest_pair(random_start(task, 24), 1.0) is None, task.id


# --- builder -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def relaxer() -> Relaxer:
    return Relaxer(max_steps=60)


def frames(path: Path) -> list[Atoms]:
    return ase.io.read(path, index=":", format="extxyz")


def attempts(folder: Path) -> list[dict]:
    files = sorted(folder.glob("attempts.w*.jsonl"))
    return [json.loads(line) for p in files for line in p.read_text().splitlines()]


def test_build_writes_dedups_and_resumes(tmp_path: Path, relaxer: Relaxer) -> None:
    first = tmp_path / "first"
    options = dict(systems=["Li-Si:LiSi"], seed=1, max_atoms=4, progress=False, relaxer=relaxer)
    summary = build_dataset(first, target=2, **options)
    kept = frames(first / "structures.w0.extxyz")
    assert summary.counts == {"Li-Si": 2} and len(kept) == 2
    for atoms in kept:
        assert atoms.get_potential_energy() / len(atoms) == pytest.approx(atoms.info["energy_per_atom"])
        assert atoms.info["system"] == "Li-Si" and atoms.info["source"].startswith(("aflow:", "pyxtal"))
        assert atoms.info["steps"] <= 60 and 1 <= atoms.info["sg_number"] <= 230
    log = attempts(first)
    assert sum(a["outcome"] == "kept" for a in log) == 2

    # Resume: same target does nothing; a half-written frame from a crash is cut off first.
    with open(first / "structures.w0.extxyz", "a") as handle:
        handle.write("2\nLattice=\"4 0 0 0 4 0 0 0 4\"")
    assert build_dataset(first, target=2, **options).outcomes == {}
    assert len(frames(first / "structures.w0.extxyz")) == 2 and attempts(first) == log
    # A larger target only tries new tasks and never writes a structure twice.
    build_dataset(first, target=3, **options)
    tasks = [a["task"] for a in attempts(first)]
    assert tasks[:len(log)] == [a["task"] for a in log] and len(set(tasks)) == len(tasks)
    names = [a.info["task"] for a in frames(first / "structures.w0.extxyz")]
    assert len(names) == 3 and len(set(names)) == 3

    # Another worker's identical structures are duplicates, not new rows.
    second = tmp_path / "second"
    second.mkdir()
    shutil.copy(first / "structures.w0.extxyz", second / "structures.w1.extxyz")
    summary = build_dataset(second, target=4, **options)
    assert summary.outcomes["duplicate"] == 3 and summary.outcomes["kept"] == 1
    assert len(frames(second / "structures.w0.extxyz")) == 1 and summary.counts == {"Li-Si": 4}

    # A checkout holding only the gzipped files (as committed) resumes from them.
    third = tmp_path / "third"
    third.mkdir()
    for name in ("structures.w0.extxyz", "attempts.w0.jsonl"):
        (third / f"{name}.gz").write_bytes(gzip.compress((first / name).read_bytes()))
    assert build_dataset(third, target=3, **options).outcomes == {}
    assert len(frames(third / "structures.w0.extxyz")) == 3


def test_resumed_build_takes_turns_between_systems(tmp_path: Path, relaxer: Relaxer) -> None:
    """Tasks already attempted (here Li-Si's first 30) are skipped without costing Li-Si its turn:
    the next attempts alternate Li-Si, Li-P-S as in a fresh build."""
    li_si = parse_system("Li-Si:LiSi", 4)
    record = [{"task": task.id, "system": "Li-Si", "outcome": "failed"}
              for task in itertools.islice(system_tasks(li_si, 1, 4, False), 30)]
    (tmp_path / "attempts.w0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in record))
    build_dataset(tmp_path, systems=["Li-Si:LiSi", "Li-P-S:Li2S"], target=1, seed=1, max_atoms=4,
                  prototypes=False, patience=3, progress=False, relaxer=relaxer)
    new = attempts(tmp_path)[30:]
    assert [a["system"] for a in new[:2]] == ["Li-Si", "Li-P-S"]
    assert new[0]["task"] == "Li-Si/pyxtal/LiSi/seed1/round30"


def test_build_rejects_bad_worker(tmp_path: Path, relaxer: Relaxer) -> None:
    with pytest.raises(ChggenError, match="worker 2 is not in 0..1"):
        build_dataset(tmp_path, worker=2, workers=2, relaxer=relaxer)


def test_energy_window_keeps_the_low_end_of_each_formula() -> None:
    """Per reduced formula (Si8 and Si16 share one), eV/atom above the lowest; window inclusive."""
    from chggen_plugins.datasets import energy_above_lowest, within_energy_window
    from chggen_plugins.datasets.readers import Record

    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    li_si = Structure(Lattice.cubic(4.0), ["Li", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    records = [Record(si, -5.40 * 8, "a"), Record(si * (2, 1, 1), -5.30 * 16, "b"),
               Record(si, -5.35 * 8, "c"), Record(li_si, -3.0 * 2, "d"), Record(li_si, -2.5 * 2, "e")]
    assert energy_above_lowest(records) == pytest.approx([0.0, 0.1, 0.05, 0.0, 0.5])
    assert [r.source for r in within_energy_window(records, 0.06)] == ["a", "c", "d"]
    assert [r.source for r in within_energy_window(records, 0.0)] == ["a", "d"]
    with pytest.raises(ChggenError, match="^b: no energy"):
        energy_above_lowest([records[0], Record(si, None, "b")])
    with pytest.raises(ChggenError, match="energy window -0.1"):
        within_energy_window(records, -0.1)
