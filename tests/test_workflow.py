"""The campaign end to end with the analytic model, CHGNet and tiny settings: outputs, Ed wiring,
resume after a kill, per-structure failures, skipped hosts, refused resumes."""

import shutil
from pathlib import Path

import ase.db
import pytest
from monty.serialization import dumpfn
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_plugins.applications.campaign import Campaign, run_campaign
from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.matching import match_or_lower
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.models.analytic import AnalyticSiteModel
from chggen_plugins.runs.config import load_config
from chggen_plugins.runs.schema import read_table
from chggen_plugins.runs.store import ResultStore
from chggen_plugins.sampling.noise import CartesianVE

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
REFERENCE = EXAMPLES / "li4si8_reference.cif"
ENTRIES = [ComputedEntry("Li", -1.9), ComputedEntry("Si2", -10.6), ComputedEntry("LiSi", -7.5),
           ComputedEntry("Li2Si", -9.0)]  # eV per formula unit, CHGNet-like scale

CONFIG = f"""
output = "out"
seed = 3
[model]
name = "analytic"
source = "{REFERENCE}"
[sampler]
jump_length = 2
resamples = 2
batch_size = 2
[cells]
systems = ["cubic", "hexagonal"]
ratios = [1.0]
[relax]
max_steps = 80
[hosts]
per_composition = 1
samples = 2
[stability]
entries = "entries.json"
threshold = 1.0
[[compositions]]
formula = "LiSi2"
formula_units = [1]
guests = ["Li"]
host_files = ["si_host.cif", "p1_host.cif"]
"""

TINY = (CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', 'host_files = ["si_host.cif"]')
        .replace("per_composition = 1", "per_composition = 0").replace("samples = 2", "samples = 1")
        .replace('systems = ["cubic", "hexagonal"]', 'systems = ["cubic"]').replace("max_steps = 80", "max_steps = 10"))


class Killed(Exception):
    """Stands in for a kill between two stored rows."""


def p1_host() -> Structure:
    """A Si4 framework that stays P1/P-1 up to symprec 2.0, angle 30 (found by search, checked below)."""
    return Structure(Lattice.from_parameters(4.0, 5.3, 6.9, 77, 101, 113), ["Si"] * 4,
                     [[0.15, 0.82, 0.68], [0.79, 0.19, 0.8], [0.19, 0.08, 0.86], [0.86, 0.88, 0.47]])


def campaign_dir(path: Path, text: str = CONFIG) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    dumpfn(ENTRIES, path / "entries.json")
    shutil.copy(EXAMPLES / "si_host.cif", path / "si_host.cif")
    p1_host().to(filename=str(path / "p1_host.cif"))
    (path / "campaign.toml").write_text(text)
    return path / "campaign.toml"


@pytest.fixture(scope="module")
def relaxer() -> Relaxer:
    return Relaxer(max_steps=80)


def small_model() -> AnalyticSiteModel:
    return AnalyticSiteModel(Structure.from_file(REFERENCE), 0.1, CartesianVE(num_levels=12, corrector_steps=1))


def stored(config) -> dict:
    return {r.uid: r for r in ResultStore(config.output / "results.db").results()}


def test_campaign_outputs_and_resume_after_a_kill(tmp_path, relaxer):
    fresh = load_config(campaign_dir(tmp_path / "fresh"))
    result = run_campaign(fresh, model=small_model(), relaxer=relaxer, progress=False)
    expected = {r.uid: r for r in result.store.results()}
    methods = [r.get("method") for r in expected.values()]
    assert methods.count("unconditional") == 2 and methods.count("inpainting") >= 2

    # The P1 framework is reported and skipped; the diamond-Si file host gets 4 Li (LiSi2).
    skipped = expected["LiSi2/host/file:p1_host.cif"]
    assert skipped.get("status") == "skipped" and "no space group above P-1" in skipped.get("error")
    diamond = expected["LiSi2/host/file:si_host.cif"]
    assert diamond.get("status") == "host" and diamond.get("guests") == "Li:4"
    assert diamond.get("host_sg_symbol") == "Fd-3m"

    # Ed is the energy above the hull of the entries file, checked with pymatgen directly.
    diagram = PhaseDiagram([PDEntry(e.composition, e.energy) for e in ENTRIES])
    relaxed = [r for r in expected.values() if r.get("status") in ("relaxed", "unconverged")]
    assert relaxed
    for row in relaxed:
        composition = row.structure.composition
        above = diagram.get_e_above_hull(PDEntry(composition, row.get("e_per_atom") * composition.num_atoms),
                                         allow_negative=True)
        assert row.get("ed") == pytest.approx(above, abs=1e-9)
        assert row.get("hull").startswith("entries file Li-Si") and row.get("hull_approximate") is False
        assert row.get("sg_spglib") >= 1 and row.get("sg_moyopy") >= 1 and row.get("backend") == "analytic"
        assert row.get("delta_e") == pytest.approx(row.get("e_per_atom") - row.get("e_initial"))
    # The generated host is the symmetrized framework of the lowest-energy relaxed unconditional structure.
    unconditional = [r for r in expected.values() if r.get("method") == "unconditional" and r.get("status") == "relaxed"]
    best = min(unconditional, key=lambda r: r.get("e_per_atom"))
    assert expected[f"{best.uid}/host"].get("parent") == best.uid
    for row in expected.values():
        if row.get("method") == "inpainting":  # every host site exactly in place before relaxation
            host = expected[row.get("parent")].generated
            assert (row.generated.frac_coords[:len(host)] == host.frac_coords).all()
            assert row.generated.composition.reduced_formula == "LiSi2"

    # Match-or-lower: the generated host's samples are held against the relaxed structure it was
    # stripped from (best); the host file's samples have no reference. Counted per summary row.
    for row in result.summary:
        referenced = [r for r in expected.values() if r.get("method") == row["method"]
                      and r.get("n_atoms") == row["n_atoms"] and r.get("parent") == f"{best.uid}/host"]
        counted = sum(r.get("status") in ("relaxed", "unconverged") and
                      match_or_lower(r.structure, r.get("e_per_atom"), best.structure, best.get("e_per_atom"))
                      for r in referenced)
        assert (row["match_or_lower"], row["with_reference"]) == ((counted, len(referenced)) if referenced
                                                                  else (None, None))
    assert any(row["with_reference"] for row in result.summary)

    # Outputs: summary, plots, shortlist CIFs and r2SCAN inputs without POTCARs.
    out = fresh.output
    summary = (out / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("composition,method,n_atoms,generated")
    assert "lowest_e_per_atom [eV/atom]" in summary[0].split(",") and "threshold [eV/atom]" in summary[0]
    assert len(summary) == 1 + len({(r.get("method"), r.get("n_atoms")) for r in relaxed + [
        r for r in expected.values() if r.get("status") == "error"]})
    for name in ("symmetry_rate", "ed_histogram", "de_vs_rmsd"):
        assert (out / "plots" / f"{name}.png").stat().st_size > 1000
    # Every row and the table say what the model's weights are (the analytic score is exact).
    assert {r.get("weights") for r in expected.values()} == {"trained"}
    assert all(row["weights"] == "trained" for row in result.summary)
    shortlisted = (out / "shortlist.csv").read_text().splitlines()[1:]
    assert shortlisted and len(list((out / "shortlist").glob("*.cif"))) == len(shortlisted)
    scan = next((out / "r2scan").iterdir())
    assert "METAGGA = R2scan" in (scan / "INCAR").read_text()
    assert (scan / "POSCAR").is_file() and (scan / "POTCAR.spec").is_file() and not (scan / "POTCAR").exists()

    # Killed inside the unconditional batch (after row 1), resumed and killed inside the inpainting
    # batch, resumed to the end: the same rows, each exactly once, with the same energies.
    first_inpainting = next(i for i, r in enumerate(expected.values()) if r.get("method") == "inpainting")
    resumed = load_config(campaign_dir(tmp_path / "resumed"))
    seen = []
    for kill_at in (1, first_inpainting + 1):
        def kill(stored, kill_at=kill_at):
            seen.append(stored.uid)
            if len(seen) == kill_at:
                raise Killed

        with pytest.raises(Killed):
            run_campaign(resumed, model=small_model(), relaxer=relaxer, on_result=kill, progress=False)
    run_campaign(resumed, model=small_model(), relaxer=relaxer, progress=False)
    database = ase.db.connect(resumed.output / "results.db")
    uids = [row.uid for row in database.select(sort="id")]
    assert uids[:len(seen)] == seen and len(set(uids)) == len(uids) and sorted(uids) == sorted(expected)
    again = stored(resumed)
    for uid, row in expected.items():
        assert again[uid].get("status") == row.get("status")
        assert again[uid].get("e_per_atom", 0.0) == pytest.approx(row.get("e_per_atom", 0.0), abs=1e-6)


def test_a_relaxation_failure_is_recorded_and_the_campaign_goes_on(tmp_path, relaxer, monkeypatch):
    text = CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', "").replace("per_composition = 1",
                                                                                     "per_composition = 0")
    config = load_config(campaign_dir(tmp_path, text))
    real = relaxer._relax
    calls = []

    def first_fails(structure, fixed):
        calls.append(structure)
        if len(calls) == 1:
            raise RuntimeError("CHGNet exploded")
        return real(structure, fixed)

    monkeypatch.setattr(relaxer, "_relax", first_fails)
    result = run_campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    statuses = {r.uid.split("/")[-2]: r for r in result.store.results()}
    assert len(statuses) == 2 and len(calls) == 2
    failed = [r for r in statuses.values() if r.get("status") == "error"]
    assert len(failed) == 1 and failed[0].get("error") == "relaxation failed: RuntimeError: CHGNet exploded"
    assert failed[0].structure is None and failed[0].generated is not None and "ed" not in failed[0].fields
    assert result.summary[0]["generated"] == 2 and result.summary[0]["errors"] == 1

    # A resume with different generation settings is refused before anything runs.
    (tmp_path / "campaign.toml").write_text(text.replace("[cells]", "[cells]\nv0 = 20.0"))
    with pytest.raises(ChggenError, match=r"different settings \(cells changed\)"):
        Campaign(load_config(tmp_path / "campaign.toml"), model=small_model(), relaxer=relaxer)


def test_later_rounds_take_v0_from_the_best_relaxed_structure_so_far(tmp_path, relaxer):
    text = (CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', "")
            .replace("[cells]", "[cells]\nrounds = 2\nv0 = 30.0"))
    config = load_config(campaign_dir(tmp_path, text))
    campaign = Campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    spec = config.compositions[0]
    campaign.unconditional(spec)
    rows = list(campaign.store.results(method="unconditional"))
    first = [r for r in rows if r.get("round") == 0]
    second = [r for r in rows if r.get("round") == 1]
    assert len(first) == len(second) == 2 and all(r.get("v0") == 30.0 for r in first)
    for row in first:  # round 0 cells are exactly N x V0
        assert row.generated.volume == pytest.approx(30.0 * len(row.generated), rel=1e-9)
    relaxed = [r for r in first if r.get("status") == "relaxed"]
    assert relaxed, "the analytic model's round-0 structures should relax within 80 steps"
    best = min(relaxed, key=lambda r: r.get("e_per_atom")).structure
    v0 = best.volume / len(best)
    assert v0 != pytest.approx(30.0, rel=1e-3)
    for row in second:
        assert row.get("v0") == pytest.approx(v0, rel=1e-12) and "/round1/" in row.uid
        assert row.generated.volume == pytest.approx(v0 * len(row.generated), rel=1e-9)
    # A rerun derives the same V0 from the store and makes nothing new.
    again = Campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    again.unconditional(spec)
    assert len(again.store) == len(rows)


def test_an_element_the_backend_does_not_know_is_one_line(tmp_path):
    config = load_config(campaign_dir(tmp_path, CONFIG.replace('"LiSi2"', '"NaSi2"').replace('["Li"]', '["Na"]')
                                      .replace('host_files = ["si_host.cif", "p1_host.cif"]', "")))
    with pytest.raises(ChggenError, match=r"compositions\[0\] \(NaSi2\): element\(s\) Na unknown"):
        Campaign(config, model=small_model())
    assert not (config.output / "results.db").exists()


def test_host_file_that_does_not_fit_the_composition_is_one_line(tmp_path):
    config = load_config(campaign_dir(tmp_path, CONFIG.replace('"LiSi2"', '"LiSi3"')))
    with pytest.raises(ChggenError, match="si_host.cif: Si8 needs a fractional number of guests for LiSi3"):
        Campaign(config, model=small_model())


def test_cli_campaign_with_the_registered_analytic_model(tmp_path, capsys):
    path = campaign_dir(tmp_path, TINY)
    assert main(["campaign", str(path), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "unconditional" in printed and "inpainting" in printed and "Ed against: entries file" in printed
    assert (tmp_path / "out" / "summary.csv").is_file()


def test_a_backends_own_sampler_runs_beside_chggen_and_wrong_compositions_are_errors(tmp_path, relaxer,
                                                                                     monkeypatch):
    """`model.own_samples`: structures from the backend's own generator are relaxed and counted as
    method "own"; one of the wrong composition is stored as an error, not relaxed; a model without a
    generator is refused before anything runs."""
    import dataclasses

    import chggen_plugins.applications.campaign as campaign
    import chggen_plugins.runs.shards as shards
    from chggen_plugins.contract.registry import InstalledModel

    calls = []

    def own_sampler(source, composition, num_samples, seed):
        calls.append((source, composition.reduced_formula, num_samples, seed))
        base = Structure.from_file(str(REFERENCE)).get_primitive_structure() * (2, 1, 1)  # Li2Si4
        assert composition.formula == base.composition.formula
        rattled = [base.copy().perturb(0.05, 0.02) for _ in range(num_samples)]
        rattled[-1].replace_species({"Li": "Si"})  # pure Si: not LiSi2
        return rattled

    analytic = campaign.installed_models()["analytic"]
    with_own = {"analytic": InstalledModel(dataclasses.replace(analytic.spec, generate=own_sampler),
                                           analytic.origin)}
    text = (CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', "").replace("per_composition = 1",
            "per_composition = 0").replace('[model]', '[model]\nown_samples = 3')
            .replace("batch_size = 2", "batch_size = 3")
            .replace("formula_units = [1]", "formula_units = [2]"))
    config = load_config(campaign_dir(tmp_path, text))
    with pytest.raises(ChggenError, match="'model.own_samples' asks for model 'analytic'.s own sampler"):
        Campaign(config, model=small_model(), relaxer=relaxer)

    monkeypatch.setattr(campaign, "installed_models", lambda: with_own)  # the campaign's check
    monkeypatch.setattr(shards, "installed_models", lambda: with_own)    # the shard's call of the sampler
    result = run_campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    own = [r for r in result.store.results(method="own")]
    assert calls == [(config.model.source, "LiSi2", 3, own[0].get("seed"))]
    assert own[2].get("status") == "error"
    assert own[2].get("error") == "own sampler made Si, not LiSi2" and own[2].structure is None
    assert all(r.get("status") in ("relaxed", "unconverged") and r.get("n_atoms") == 6 for r in own[:2])
    rows = {row["method"]: row for row in result.summary}
    assert rows["own"]["generated"] == 3 and rows["own"]["errors"] == 1 and "unconditional" in rows


def test_cells_count_deals_exactly_that_many_structures_over_the_grid(tmp_path):
    text = CONFIG.replace("[cells]", "[cells]\ncount = 5").replace("formula_units = [1]", "formula_units = [1, 2]")
    config = load_config(campaign_dir(tmp_path, text))
    campaign = Campaign(config, model=small_model(), progress=False)
    shards = campaign.unconditional_shards(config.compositions[0], 0)
    jobs = [(shard.host.lattice, uid, fields) for shard in shards for uid, fields in shard.jobs]
    for fu in (1, 2):
        mine = [(lattice, fields["start_cell"]) for lattice, _, fields in jobs if fields["formula_units"] == fu]
        assert len(mine) == 5  # per composition and cell size, whatever the grid's size
        cells = [cell for _, cell in mine]
        assert cells.count("cubic-1") == 3 and cells.count("hexagonal-1") == 2  # the two cells in turn
        assert all(lattice.volume == pytest.approx(24.0 * 3 * fu) for lattice, _ in mine)
    assert len({uid for _, uid, _ in jobs}) == 10


def test_cells_count_spans_the_lattice_systems_before_the_axis_ratios(tmp_path):
    text = CONFIG.replace('systems = ["cubic", "hexagonal"]', 'systems = ["cubic", "tetragonal", "hexagonal"]')
    text = text.replace("ratios = [1.0]", "ratios = [0.5, 0.75, 1.0, 1.25, 1.5]").replace("[cells]", "[cells]\ncount = 4")
    config = load_config(campaign_dir(tmp_path, text))
    shards = Campaign(config, model=small_model(), progress=False).unconditional_shards(config.compositions[0], 0)
    cells = sorted(fields["start_cell"] for shard in shards for _, fields in shard.jobs)
    assert cells == ["cubic-1", "cubic-1.25", "hexagonal-1", "tetragonal-1"]


def test_a_second_campaign_on_one_output_is_refused_in_one_line(tmp_path, capsys):
    """Another process writing OUTPUT/results.db holds its lock: this campaign stops before it stores
    anything (two writers stored every structure twice)."""
    from test_store import another_writer

    path = campaign_dir(tmp_path, TINY)
    (tmp_path / "out").mkdir()
    with another_writer(tmp_path / "out" / "results.db"):
        assert main(["campaign", str(path), "-q"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "results.db is being written by another chggen process" in error[0], error
    assert [r.uid for r in ResultStore(tmp_path / "out" / "results.db").results()] == ["written-by-the-other-process"]


def test_a_moved_campaign_folder_resumes_without_recomputing(tmp_path, relaxer, monkeypatch):
    """The fingerprint holds settings and file contents, not paths (entries file, host file, hull
    cache under the output): the same campaign in another folder resumes, nothing is redone."""
    result = run_campaign(load_config(campaign_dir(tmp_path / "before", TINY)), model=small_model(),
                          relaxer=relaxer, progress=False)
    rows = {r.uid: r.get("e_per_atom") for r in result.store.results()}
    shutil.move(tmp_path / "before", tmp_path / "after")

    def relax(structure):
        raise AssertionError("a stored structure was relaxed again")

    monkeypatch.setattr(relaxer, "relax", relax)
    moved = run_campaign(load_config(tmp_path / "after" / "campaign.toml"), model=small_model(),
                         relaxer=relaxer, progress=False)
    assert moved.store.path == tmp_path / "after" / "out" / "results.db"
    assert {r.uid: r.get("e_per_atom") for r in moved.store.results()} == rows
    assert (tmp_path / "after" / "out" / "summary.csv").is_file()


def test_an_output_that_is_a_file_is_one_line(tmp_path, capsys):
    path = campaign_dir(tmp_path, TINY)
    (tmp_path / "out").write_text("not a folder")
    assert main(["campaign", str(path), "-q"]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "key 'output' names" in error[0] and "is a file, not a folder" in error[0], error


def test_symmetric_and_snapped_inpainting_beside_free_with_symmetry_kept_in_relaxation(tmp_path, relaxer):
    """[hosts] methods: each method's rows stand beside the others'; inpainting-sym keeps the group
    it was given through a FixSymmetry relaxation ([relax] keep_symmetry), with the group and the
    Wyckoff positions in its row; inpainting-snap records the group it snapped to. Adding a method to
    a finished campaign resumes (methods are not a generation setting)."""
    from chggen_plugins.structures.wyckoff import host_operations, symmetry_error

    text = TINY.replace("samples = 1", "samples = 2")
    config = load_config(campaign_dir(tmp_path, text))
    run_campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    before = stored(config)
    text = text.replace("[hosts]", '[hosts]\nmethods = ["inpainting", "inpainting-sym", "inpainting-snap"]')
    text = text.replace("max_steps = 10", "max_steps = 10\nkeep_symmetry = true")
    (tmp_path / "campaign.toml").write_text(text)
    with pytest.raises(ChggenError, match="relax"):   # keep_symmetry changes how structures are made
        run_campaign(load_config(tmp_path / "campaign.toml"), model=small_model(), relaxer=relaxer, progress=False)
    text = text.replace("keep_symmetry = true", "")
    (tmp_path / "campaign.toml").write_text(text)
    config = load_config(tmp_path / "campaign.toml")
    run_campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    rows = stored(config)
    assert all(rows[uid].get("e_per_atom") == row.get("e_per_atom") for uid, row in before.items())
    by_method = {}
    for row in rows.values():
        by_method.setdefault(row.get("method"), []).append(row)
    assert len(by_method["inpainting-sym"]) == len(by_method["inpainting-snap"]) == 2
    for row in by_method["inpainting-sym"]:
        assert row.get("guest_space_group") == 216 and row.get("guest_wyckoff") in ("Li:4b", "Li:4d")
        rotations, translations = host_operations(row.generated)
        assert len(rotations) == 96 and symmetry_error(row.generated, rotations, translations) < 1e-3
    for row in by_method["inpainting-snap"]:
        assert row.get("snapped_space_group") >= 1


def test_fix_symmetry_relaxation_keeps_the_group_exactly(relaxer):
    """keep_symmetry: ASE's FixSymmetry takes the group found at 0.01 A (F-43m of a start rattled by
    2-3 mA), idealises the start and keeps every step symmetric: the result is F-43m even at 1e-4 A.
    Without it the rattle stays (the forces there are ~1e-5 eV/A) and the result is P1 at 1e-4 A."""
    from chggen_plugins.evaluation.symmetry import space_group

    start = Structure.from_spacegroup("F-43m", Lattice.cubic(5.6), ["Li", "Si", "Si"],
                                      [[0.5, 0.5, 0.5], [0, 0, 0], [0.25, 0.25, 0.25]])
    start.perturb(0.003, min_distance=0.002)
    assert space_group(start, 0.01, 5.0).number == 216 and space_group(start, 1e-4, 1.0).number == 1
    for keep, group in ((True, 216), (False, 1)):
        relaxed = Relaxer(max_steps=5, relaxer=relaxer.loaded, keep_symmetry=keep).relax(start).structure
        assert space_group(relaxed, 1e-4, 1.0).number == group, keep


@pytest.mark.parametrize("conditioned,expected", [(False, 3), (True, 1)], ids=["unconditional", "host-conditioned"])
def test_resamples_left_out_is_the_models_default_and_fingerprinted_as_such(tmp_path, conditioned, expected):
    """A config without `resamples` takes 3 for a model that sees the host noisy (so campaigns made
    before the key became optional resume) and 1 for a host-conditioned one; the store records it."""
    path = campaign_dir(tmp_path, TINY.replace("resamples = 1\n", ""))  # TINY says resamples = 1
    model = AnalyticSiteModel(Structure.from_file(REFERENCE), 0.2, CartesianVE(num_levels=10, corrector_steps=1))
    model.host_conditioned = conditioned
    config = load_config(path)
    assert config.sampler.resamples is None
    campaign = Campaign(config, model=model, progress=False)
    assert campaign.config.sampler.resamples == expected
    explicit = load_config(campaign_dir(tmp_path / "explicit", TINY.replace("resamples = 1", f"resamples = {expected}")))
    assert campaign.store.metadata["fingerprint"]["sampler"] == explicit.fingerprint()["sampler"]


def test_a_nan_score_is_that_shards_error_and_the_campaign_goes_on(tmp_path, relaxer):
    """A NaN score used to stop the whole campaign; now it is stored as the failing shard's rows."""
    text = CONFIG.replace('host_files = ["si_host.cif", "p1_host.cif"]', "").replace("per_composition = 1",
                                                                                     "per_composition = 0")
    config = load_config(campaign_dir(tmp_path, text))

    class FirstShardNaN(AnalyticSiteModel):
        calls = 0

        def score(self, batch, level):
            score = super().score(batch, level)
            if FirstShardNaN.calls == 0:
                score[:] = float("nan")
            return score

    model = FirstShardNaN(Structure.from_file(REFERENCE), 0.1, CartesianVE(num_levels=12, corrector_steps=1))

    def count_rows(stored):  # once the first shard is stored, the second samples afresh: finite
        FirstShardNaN.calls += 1

    result = run_campaign(config, model=model, relaxer=relaxer, on_result=count_rows, progress=False)
    rows = list(result.store.results())
    failed = [r for r in rows if r.get("status") == "error"]
    assert len(rows) == 2 and len(failed) == 1
    assert failed[0].get("error").startswith("FirstShardNaN: score turned NaN/inf at step 0 (noise level 11) in ")
    assert "sample 0" in failed[0].get("error") and failed[0].structure is None
    assert [r for r in rows if r.get("status") != "error"][0].structure is not None


def test_symmetric_inpainting_with_model_proposed_orbits_through_a_campaign(tmp_path, relaxer, capsys):
    """[hosts] orbits = "model": the analytic model puts Li on the octahedral sites of its reference
    (Li4Si8: 4b of F-43m in the diamond host), so every sample takes 4b, where the uniform draw also
    takes 4d; the rows record the choice and the free pass's distance to the orbits, and the summary
    shows it beside the method. The host file is that reference itself, guests included: it is
    relaxed once as the host's reference, and every sample, which finds it, counts as match-or-lower."""
    text = TINY.replace("\nsamples = 1", '\nsamples = 3\nmethods = ["inpainting-sym"]\norbits = "model"')
    text = text.replace('host_files = ["si_host.cif"]', f'host_files = ["{REFERENCE.name}"]')
    text = text.replace("max_steps = 10", "max_steps = 80")
    shutil.copy(REFERENCE, tmp_path / REFERENCE.name)
    config = load_config(campaign_dir(tmp_path, text))
    assert config.hosts.orbits == "model"
    result = run_campaign(config, model=small_model(), relaxer=relaxer, progress=False)
    rows = [r for r in result.store.results() if r.get("method") == "inpainting-sym"]
    assert len(rows) == 3
    for row in rows:
        assert row.get("orbits") == "model" and row.get("guest_wyckoff") == "Li:4b"
        assert row.get("guest_space_group") == 216 and 0 <= row.get("orbit_proposal_distance") < 0.5
    reference = next(result.store.results(uid=f"LiSi2/host/file:{REFERENCE.name}/reference"))
    assert reference.get("method") == "reference" and reference.get("status") == "relaxed"
    assert reference.generated.composition == Structure.from_file(REFERENCE).composition
    summary = next(r for r in result.summary if r["method"] == "inpainting-sym")
    assert summary["orbits"] == "model" and summary["generated"] == 3
    assert (summary["match_or_lower"], summary["with_reference"]) == (3, 3)
    assert "inpainting-sym (model)" in capsys.readouterr().out
    table = read_table(config.output / "summary.csv")
    assert [row["orbits"] for row in table] == ["", "model"]  # unconditional rows have no orbit choice
