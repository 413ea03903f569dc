"""Intercalation sweeps: the hull and voltage arithmetic against hand-computed values, the sweep with
the analytic model and short CHGNet relaxations (store, outputs, resume after a kill, refusals), the
CLI end to end, and the MatterGen / DiffCSP paths with small random models."""

from pathlib import Path

import ase.db
import numpy as np
import pytest
from periodic import same_frac_coords
from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_plugins import intercalate
from chggen_plugins.applications.intercalation import prepare_host
from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.evaluation.voltage import guest_charge, pseudo_binary
from chggen_plugins.models.analytic import AnalyticSiteModel
from chggen_plugins.runs.schema import read_table
from chggen_plugins.sampling.noise import CartesianVE
from chggen_plugins.structures.cells import parse_supercell
from chggen_plugins.structures.room import guest_room

FARADAY_MAH = 96485.33212 / 3.6  # mAh per mol of electrons


# --- the arithmetic on fixed energies -------------------------------------------------------------

def si8_li_states() -> tuple[ComputedEntry, ComputedEntry, list[ComputedEntry]]:
    """Si8 host at -43.2 eV, Li at -1.9 eV/atom; each state is host + n Li + a chosen cell
    formation energy, so Ef per Si is that / 8. x = n / 8."""
    host, mu = -43.2, -1.9
    formation = {"a1": (1, -0.30), "b2": (2, -0.40), "a2": (2, -0.70), "a3": (3, -0.75), "a4": (4, -1.20),
                 "a6": (6, -1.00)}
    states = [ComputedEntry(Composition({"Li": n, "Si": 8}), host + n * mu + ef, entry_id=name)
              for name, (n, ef) in formation.items()]
    return ComputedEntry("Si8", host, entry_id="host"), ComputedEntry("Li2", 2 * mu, entry_id="Li"), states


def test_hull_stable_contents_and_voltages_match_hand_values():
    host, li, states = si8_li_states()
    result = pseudo_binary(host, li, states)
    by_x = {p.x: p for p in result.points}
    # Ef per Si: x 0.125 -0.0375 | 0.25 -0.0875 (lowest of two) | 0.375 -0.09375 | 0.5 -0.15 | 0.75 -0.125
    assert sorted(by_x) == [0.0, 0.125, 0.25, 0.375, 0.5, 0.75]
    expected = {0.0: 0.0, 0.125: -0.0375, 0.25: -0.0875, 0.375: -0.09375, 0.5: -0.15, 0.75: -0.125}
    for x, ef in expected.items():
        assert by_x[x].formation_energy == pytest.approx(ef, abs=1e-12)
    assert by_x[0.25].entry.entry_id == "a2" and by_x[0.25].candidates == 2
    # Lower hull: 0 -> 0.25 (slope -0.35) -> 0.5 (slope -0.25); 0.125 lies 0.00625 above the first
    # segment, 0.375 0.025 above the second, 0.75 0.025 above the flat line to Li metal.
    assert [p.x for p in result.stable] == [0.0, 0.25, 0.5]
    above = {0.0: 0.0, 0.125: 0.00625, 0.25: 0.0, 0.375: 0.025, 0.5: 0.0, 0.75: 0.025}
    for x, value in above.items():
        assert by_x[x].e_above_hull == pytest.approx(value, abs=1e-9)
    # V = -[Ef(x2) - Ef(x1)] / ((x2 - x1) z): 0.35 V then 0.25 V; 0.125, 0.375 and 0.75 are not steps.
    assert result.charge == 1
    assert [(s.x_charge, s.x_discharge) for s in result.steps] == [pytest.approx((0.0, 0.25)), pytest.approx((0.25, 0.5))]
    assert [s.voltage for s in result.steps] == [pytest.approx(0.35), pytest.approx(0.25)]
    # Capacity per gram of the most lithiated stable state (LiSi2 = Li0.5Si, pymatgen's normalisation).
    mass = Element("Si").atomic_mass + 0.5 * Element("Li").atomic_mass
    assert result.steps[0].capacity == pytest.approx(0.25 * FARADAY_MAH / mass, rel=1e-6)
    assert result.steps[-1].cumulative_capacity == pytest.approx(0.5 * FARADAY_MAH / mass, rel=1e-6)
    figures = result.electrode_summary()
    assert figures["average_voltage"] == pytest.approx(0.30)
    assert figures["capacity_grav"] == pytest.approx(0.5 * FARADAY_MAH / mass, rel=1e-6)
    assert figures["specific_energy"] == pytest.approx(0.30 * 0.5 * FARADAY_MAH / mass, rel=1e-6)
    assert figures["normalised_by"] == "LiSi2" and "energy_density" not in figures  # no structures, no volumes


def test_a_divalent_guest_in_a_ternary_host_divides_by_its_charge():
    host = ComputedEntry("Ti2S4", -40.0, entry_id="host")
    zn = ComputedEntry("Zn", -1.25, entry_id="Zn")
    states = [ComputedEntry("ZnTi2S4", -40.0 - 1.25 - 1.0, entry_id="x0.5"),
              ComputedEntry("Zn2Ti2S4", -40.0 - 2.5 - 1.2, entry_id="x1")]
    result = pseudo_binary(host, zn, states)
    # Ef per TiS2: -0.5 at x = 0.5, -0.6 at x = 1 (both on the hull); z = 2 halves the voltages.
    assert [p.formation_energy for p in result.points] == [0.0, pytest.approx(-0.5), pytest.approx(-0.6)]
    assert all(p.on_hull for p in result.points)
    assert result.charge == 2
    assert [s.voltage for s in result.steps] == [pytest.approx(0.5), pytest.approx(0.1)]
    assert [(s.x_charge, s.x_discharge) for s in result.steps] == [pytest.approx((0, 0.5)), pytest.approx((0.5, 1))]
    assert [s.formula_discharge for s in result.steps] == ["Ti2ZnS4", "TiZnS2"]


def test_guest_charges_and_a_content_without_a_stable_step():
    assert [guest_charge(g) for g in ("Li", "Na", "K", "Mg", "Zn")] == [1, 1, 1, 2, 2]
    host, li, _ = si8_li_states()
    # Li in Si above host + Li metal: nothing but the host is stable, so no voltage step at all.
    unstable = [ComputedEntry("LiSi8", -43.2 - 1.9 + 0.2, entry_id="up")]
    result = pseudo_binary(host, li, unstable)
    assert [p.on_hull for p in result.points] == [True, False] and result.steps == () and result.electrode is None
    assert result.points[1].e_above_hull == pytest.approx(0.2 / 8)
    with pytest.raises(ChggenError, match="is not Si \\+ Li"):
        pseudo_binary(host, li, [ComputedEntry("LiSi7P", -40.0, entry_id="odd")])


# --- the sweep ----------------------------------------------------------------------------------

A = 5.43
SI2 = Structure(Lattice([[0, A / 2, A / 2], [A / 2, 0, A / 2], [A / 2, A / 2, 0]]), ["Si", "Si"],
                [[0, 0, 0], [0.25, 0.25, 0.25]])
BCC_LI = Structure(Lattice.cubic(3.44), ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])


# The sweep fills `prepare_host(SI2)`: SI2 made a supercell by pymatgen (1x1x1 here), which goes through
# Cartesian coordinates, so its sites are SI2's to ~1e-16, not bit for bit. Bit for bit is the sweep's
# own host against what the sampler made of it: the "host" row stores that host through the same store.
SWEEP_HOST_ATOL = 1e-12


def li2si2() -> Structure:
    """Primitive diamond Si with Li on both tetrahedral interstitial sites: the analytic model's targets."""
    return Structure(SI2.lattice, ["Si", "Si", "Li", "Li"], [*SI2.frac_coords, [0.5, 0.5, 0.5], [0.75, 0.75, 0.75]])


def analytic() -> AnalyticSiteModel:
    return AnalyticSiteModel(li2si2(), 0.1, CartesianVE(num_levels=12, corrector_steps=1))


@pytest.fixture(scope="module")
def relaxer() -> Relaxer:
    return Relaxer(fmax=0.2, max_steps=60)


SWEEP = dict(samples=2, seed=0, jump_length=2, resamples=2, reference=BCC_LI, progress=False, echo=False)


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, relaxer):
    out = tmp_path_factory.mktemp("sweep")
    return intercalate(SI2, "Li", [1, 2], analytic(), out, relaxer=relaxer, **SWEEP), out


def rows(out: Path) -> dict:
    return {row.uid: row for row in ase.db.connect(out / "results.db").select(sort="id")}


def read_csv(path: Path) -> list[dict]:
    return read_table(path)  # rows keyed by the bare column names (headers carry units)


def test_sweep_stores_every_structure_and_reports_the_hull_from_them(sweep):
    result, out = sweep
    stored = rows(out)
    assert list(stored) == ["host", "reference/Li/file", "Li1/inpainting/0", "Li1/inpainting/1", "Li2/inpainting/0", "Li2/inpainting/1"]
    host_sites = Structure.from_dict(stored["host"].data["generated"]).frac_coords
    for uid, row in stored.items():
        if "/inpainting/" in uid:  # the host's sites exactly in place before relaxation, the guests added
            generated = Structure.from_dict(row.data["generated"])
            assert np.array_equal(generated.frac_coords[:2], host_sites)
            assert same_frac_coords(generated.frac_coords[:2], SI2.frac_coords, SWEEP_HOST_ATOL)
            assert generated.lattice == SI2.lattice
            assert generated.composition["Li"] == row.count and row.x == row.count / 2
            assert row.backend == "AnalyticSiteModel" and row.levels == 12 and row.relax_max_steps == 60
    # Formation energy per Si from the stored energies, by hand: lowest converged sample per count.
    mu = stored["reference/Li/file"].energy / 2
    host = stored["host"].energy / 2
    table = read_csv(out / "intercalation.csv")
    assert [float(r["x"]) for r in table] == [0.0, 0.5, 1.0]
    for line in table[1:]:
        n = int(line["count"])
        energies = [r.energy for uid, r in stored.items() if uid.startswith(f"Li{n}/") and r.status == "relaxed"]
        assert float(line["energy"]) == pytest.approx(min(energies), abs=1e-5)
        assert float(line["formation_energy"]) == pytest.approx(min(energies) / 2 - host - n / 2 * mu, abs=1e-5)
        assert line["uid"] in stored and line["space_group"] and int(line["steps"]) >= 0
    # The voltage steps join neighbouring stable contents with V = -dEf/dx (z = 1).
    stable = [r for r in table if r["on_hull"] == "True"]
    steps = read_csv(out / "voltage.csv")
    assert len(steps) == len(stable) - 1
    for step, (a, b) in zip(steps, zip(stable, stable[1:])):
        slope = (float(b["formation_energy"]) - float(a["formation_energy"])) / (float(b["x"]) - float(a["x"]))
        assert float(step["voltage"]) == pytest.approx(-slope, abs=1e-4)
    assert [p.x for p in result.thermo.stable] == [float(r["x"]) for r in stable]
    for name in ("hull.png", "voltage.png"):
        assert (out / name).stat().st_size > 1000
    assert len(list((out / "structures").glob("*.cif"))) == len(table) + 1  # + the Li reference


def test_a_killed_sweep_resumes_to_the_same_rows_and_a_finished_one_repeats_nothing(sweep, tmp_path, relaxer):
    _, fresh = sweep
    seen = []

    class Killed(Exception):
        pass

    def kill(stored):
        seen.append(stored.uid)
        if len(seen) == 3:
            raise Killed

    with pytest.raises(Killed):
        intercalate(SI2, "Li", [1, 2], analytic(), tmp_path, relaxer=relaxer, on_result=kill, **SWEEP)
    intercalate(SI2, "Li", [1, 2], analytic(), tmp_path, relaxer=relaxer, **SWEEP)
    again, expected = rows(tmp_path), rows(fresh)
    assert list(again)[:3] == seen and sorted(again) == sorted(expected)
    for uid, row in expected.items():
        assert again[uid].status == row.status
        assert np.array_equal(Structure.from_dict(again[uid].data["generated"]).frac_coords,
                              Structure.from_dict(row.data["generated"]).frac_coords)
        assert again[uid].get("energy", 0.0) == pytest.approx(row.get("energy", 0.0), abs=1e-6)
    intercalate(SI2, "Li", [1, 2], analytic(), tmp_path, relaxer=relaxer, on_result=kill, **SWEEP)
    assert len(seen) == 3  # nothing relaxed or written again
    with pytest.raises(ChggenError, match=r"intercalation sweep made with different settings \(samples changed\)"):
        intercalate(SI2, "Li", [1, 2], analytic(), tmp_path, relaxer=relaxer, **{**SWEEP, "samples": 3})


def test_host_supercell_and_count_checks():
    assert parse_supercell("2x1x1") == (2, 1, 1) and parse_supercell((1, 2, 3)) == (1, 2, 3)
    for bad in ("2x1", "2x0x1", "ax1x1", "2x1x1x1", "-1x1x1", (1.5, 1, 1)):
        with pytest.raises(ChggenError, match="three positive integers"):
            parse_supercell(bad)
    with pytest.raises(ChggenError, match=r"already contains 2 Li; pass --strip"):
        prepare_host(li2si2(), "Li")
    stripped, cells = prepare_host(li2si2(), "Li", "1x1x2", strip=True)
    assert stripped.composition == Composition("Si4") and cells == (1, 1, 2)
    # 1.5 x 40 A^3 less two Si spheres (r 1.1 A) leaves room for three Li spheres (r 1.45 A), not four.
    assert guest_room(SI2, "Li") == 3
    with pytest.raises(ChggenError, match=r"counts: 4 Li do not fit the Si2 cell"):
        intercalate(SI2, "Li", [1, 4], analytic(), "unused", echo=False, progress=False)


# --- the command ---------------------------------------------------------------------------------

@pytest.fixture
def files(tmp_path):
    SI2.to(filename=str(tmp_path / "host.cif"))
    li2si2().to(filename=str(tmp_path / "full.cif"))
    BCC_LI.to(filename=str(tmp_path / "li.cif"))
    return tmp_path


def command(files, *extra):
    return ["intercalate", str(files / "host.cif"), "--guest", "Li", "--samples", "1", "--model", "analytic",
            "--model-source", str(files / "full.cif"), "--reference", str(files / "li.cif"), "--resamples", "1",
            "--fmax", "0.3", "--max-steps", "40", "--out", str(files / "out"), "-q", *extra]


def test_cli_sweep_end_to_end_and_one_line_errors(files, capsys):
    assert main(command(files, "--max", "2")) == 0
    printed = capsys.readouterr().out
    assert "Ef (eV/Si)" in printed and "Li reference: Li" in printed and "results:" in printed
    for name in ("results.db", "intercalation.csv", "voltage.csv", "hull.png", "voltage.png"):
        assert (files / "out" / name).is_file()
    assert [r["count"] for r in read_csv(files / "out" / "intercalation.csv")] == ["0", "1", "2"]

    def refused(args, message):
        assert main(args) == 2
        error = capsys.readouterr().err.strip()
        assert error.count("\n") == 0 and message in error, error

    refused(command(files, "--counts", "1,2", "--samples", "2"), "different settings (samples changed)")
    refused(["intercalate", str(files / "full.cif"), *command(files, "--max", "2")[2:]],
            "already contains 2 Li; pass --strip")
    refused(command(files, "--counts", "1,4"), "4 Li do not fit the Si2 cell")
    refused(command(files, "--counts", "1,x"), "'x' is not an integer")
    refused(command(files, "--counts", "0,1"), "0 is not a positive integer")
    refused(command(files), "--counts 1,2,3 or --max N")
    refused(command(files, "--max", "1", "--supercell", "2x1"), "supercell '2x1': write three positive integers")
    zn_command = command(files, "--max", "1")
    zn_command[zn_command.index("Li")] = "Zn"
    refused(zn_command, "element(s) Zn unknown to AnalyticSiteModel")
    refused(command(files, "--max", "1", "--levels", "1"), "levels: 1 must be an integer >= 2")


# --- other backends ------------------------------------------------------------------------------

def test_mattergen_through_the_command(files, capsys):
    pytest.importorskip("mattergen")
    from chggen_mattergen.checkpoint import write_untrained_checkpoint

    checkpoint = files / "mattergen_small"
    write_untrained_checkpoint(checkpoint, hidden_dim=32, num_blocks=1, discrete_steps=10, max_neighbors=12, seed=3)
    args = command(files, "--counts", "1")
    args[args.index("analytic")] = "mattergen"
    args[args.index(str(files / "full.cif"))] = str(checkpoint)
    assert main([*args, "--levels", "10", "--max-steps", "10"]) == 0
    stored = rows(files / "out")
    assert stored["Li1/inpainting/0"].backend == "mattergen" and stored["Li1/inpainting/0"].levels == 10
    table = read_csv(files / "out" / "intercalation.csv")
    assert [(r["count"], r["samples"]) for r in table] == [("0", "1"), ("1", "1")]


def test_diffcsp_model_through_the_api(tmp_path, relaxer):
    from chggen_diffcsp import CSPNetConfig, DiffCSPScoreModel

    model = DiffCSPScoreModel.untrained(CSPNetConfig(hidden_dim=16, num_layers=2, num_freqs=4, time_dim=8,
                                                     timesteps=10), seed=2)
    result = intercalate(SI2, "Li", [1], model, tmp_path, relaxer=relaxer, **{**SWEEP, "samples": 1})
    row = next(result.store.results(method="inpainting"))
    assert row.get("backend") == "DiffCSPScoreModel" and row.get("levels") == 10
    assert row.generated.composition == Composition("LiSi2")
    host = next(result.store.results(method="host")).generated
    assert np.array_equal(row.generated.frac_coords[:2], host.frac_coords)
    assert same_frac_coords(row.generated.frac_coords[:2], SI2.frac_coords, SWEEP_HOST_ATOL)


def test_a_symmetric_sweep_stores_symmetric_samples_beside_free_ones(tmp_path, relaxer):
    """symmetric=True: per count, K more samples whose guests keep the host's group or a subgroup
    (recorded per row, and true of the generated structure)."""
    from chggen_plugins.runs.store import ResultStore
    from chggen_plugins.structures.wyckoff import plan_guests, symmetry_error

    intercalate(SI2, "Li", [1, 2], analytic(), tmp_path, relaxer=relaxer, symmetric=True, **SWEEP)
    symmetric = list(ResultStore(tmp_path / "results.db").results(method="inpainting-sym"))
    assert len(symmetric) == 4
    for row in symmetric:
        group = plan_guests(SI2, {"Li": row.get("count")}).group
        assert row.get("guest_space_group") == group.number
        assert symmetry_error(row.generated, group.rotations, group.translations) < 1e-3
