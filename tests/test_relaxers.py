"""Relaxers as plugins and staged relaxation, with real calculators (CHGNet, SevenNet, ASE's EMT)."""

import hashlib
import json

import numpy as np
import pytest
from ase.calculators.emt import EMT
from pymatgen.core import Lattice, Structure

from chggen_plugins.cli.app import build_parser
from chggen_plugins.contract.registry import DEFAULT_RELAXER, LoadedRelaxer, installed_relaxers, load_relaxer
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import ALL, DEFAULT_STAGES, GUESTS, Relaxer
from chggen_plugins.runs.config import load_config
from chggen_plugins.runs.shards import host_sites
from chggen_plugins.runs.store import ResultStore

SI_HOST = Structure(Lattice.cubic(5.43), ["Si"] * 8,
                    [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                     [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])
HOST = range(len(SI_HOST))
GUEST = range(len(SI_HOST), len(SI_HOST) + 2)


def li2si8() -> Structure:
    """Two Li put by hand near (not at) the empty tetrahedral sites of diamond Si: the guests have
    somewhere to go, and the host feels them (its forces are far above fmax)."""
    structure = SI_HOST.copy()
    structure.append("Li", [0.52, 0.47, 0.55])
    structure.append("Li", [0.02, 0.03, 0.46])
    return structure


@pytest.fixture(scope="module")
def chgnet() -> LoadedRelaxer:
    return load_relaxer("chgnet")


def test_chgnet_is_the_cores_relaxer_and_names_its_version():
    found = installed_relaxers()
    assert DEFAULT_RELAXER == "chgnet" and found["chgnet"].origin.startswith("chggen-plugins")
    assert found["chgnet"].spec.version().startswith("chgnet 0.4") and "model 0.3.0" in found["chgnet"].spec.version()


def test_an_unknown_relaxer_is_one_line_listing_the_installed_ones():
    with pytest.raises(ChggenError) as error:
        load_relaxer("chgnett")
    message = str(error.value)
    assert "\n" not in message and "unknown relaxer 'chgnett'" in message and "chgnet, sevennet" in message


def test_stage_one_holds_the_host_bit_for_bit_while_the_guests_move(chgnet):
    start = li2si8()
    result = Relaxer(max_steps=40, relaxer=chgnet, stages=(GUESTS,)).relax(start, fixed=HOST)
    assert result.structure is not None and result.steps > 0
    after = result.structure
    assert np.array_equal(after.lattice.matrix, start.lattice.matrix)  # the cell is fixed too
    assert np.array_equal(after.cart_coords[HOST.start:HOST.stop], start.cart_coords[HOST.start:HOST.stop])
    moved = np.linalg.norm(after.cart_coords[GUEST.start:] - start.cart_coords[GUEST.start:], axis=1)
    assert (moved > 0.05).all()
    assert result.final_energy < result.initial_energy


def test_holding_the_wrong_sites_would_fail_that_check(chgnet):
    """Fixing the guests instead lets the host move: the check above tells the two index sets apart."""
    start = li2si8()
    result = Relaxer(max_steps=40, relaxer=chgnet, stages=(GUESTS,)).relax(start, fixed=GUEST)
    assert np.array_equal(result.structure.cart_coords[GUEST.start:], start.cart_coords[GUEST.start:])
    assert not np.array_equal(result.structure.cart_coords[:HOST.stop], start.cart_coords[:HOST.stop])


def test_staged_relaxation_shares_the_step_budget_and_ends_with_everything_relaxed(chgnet):
    start = li2si8()
    staged = Relaxer(max_steps=300, relaxer=chgnet, stages=(GUESTS, ALL)).relax(start, fixed=HOST)
    guests_only = Relaxer(max_steps=300, relaxer=chgnet, stages=(GUESTS,)).relax(start, fixed=HOST)
    assert staged.ok and staged.steps > guests_only.steps  # the sum over both stages
    assert not np.array_equal(staged.structure.lattice.matrix, start.lattice.matrix)  # stage two moved the cell
    assert staged.final_energy < guests_only.final_energy
    tight = Relaxer(max_steps=5, relaxer=chgnet, stages=(GUESTS, ALL)).relax(start, fixed=HOST)
    assert tight.steps == 5 and not tight.converged


def test_without_a_host_the_guest_stage_is_skipped(chgnet):
    """Unconditional structures (no host) relax in one stage, bit for bit as with stages = ["all"]."""
    start = li2si8()
    one = Relaxer(max_steps=30, relaxer=chgnet).relax(start)
    staged = Relaxer(max_steps=30, relaxer=chgnet, stages=(GUESTS, ALL)).relax(start)
    assert DEFAULT_STAGES == (ALL,)
    assert staged.steps == one.steps and staged.final_energy == one.final_energy
    assert np.array_equal(staged.structure.frac_coords, one.structure.frac_coords)


@pytest.mark.parametrize("stages", [(), ("guest",), (ALL, ALL)])
def test_bad_stages_are_one_line(stages, chgnet):
    with pytest.raises(ChggenError, match="distinct names from guests, all"):
        Relaxer(relaxer=chgnet, stages=stages)


def test_any_ase_calculator_relaxes_with_its_name_and_version_recorded():
    copper = Structure(Lattice.cubic(3.7), ["Cu"] * 4, [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]])
    relaxer = Relaxer(max_steps=100, relaxer=LoadedRelaxer("emt", "ase EMT", EMT()))
    result = relaxer.relax(copper)
    assert result.ok and 3.55 < result.structure.lattice.a < 3.65  # EMT's fcc Cu, about 3.59 A
    assert relaxer.fields() == {"relaxer": "emt", "relaxer_version": "ase EMT", "relax_stages": "all"}
    assert relaxer.fingerprint() == {"relax": "fmax 0.1 steps 100 relaxer emt", "relaxer": "emt ase EMT"}


def test_sevennet_relaxes_li_in_si_offline():
    """The adapter's 7net-0 weights ship in the sevenn wheel: a real relaxation, no network."""
    relaxer = Relaxer(max_steps=60, relaxer="sevennet")
    start = li2si8()
    result = relaxer.relax(start)
    assert result.structure is not None and np.isfinite(result.final_energy)
    assert result.final_energy < result.initial_energy and result.rmsd > 0.02
    assert -5.5 < result.final_energy < -3.5
    assert relaxer.version.startswith("sevenn ") and relaxer.version.endswith("model 7net-0")


def test_host_sites_are_the_first_sites_only_where_the_structure_starts_with_its_host():
    made = li2si8()
    assert host_sites(SI_HOST, made) == HOST
    assert host_sites(Structure(SI_HOST.lattice, [], []), made) == range(0)  # unconditional
    assert host_sites(SI_HOST, Structure.from_sites(list(made)[::-1])) == range(0)  # reordered (e.g. snapped)


CONFIG = """
[model]
name = "analytic"
[[compositions]]
formula = "Li2Si"
guests = ["Li"]
"""


def test_config_relaxer_and_stages(tmp_path):
    path = tmp_path / "campaign.toml"
    path.write_text(CONFIG)
    default = load_config(path)
    assert (default.relax.relaxer, default.relax.stages) == ("chgnet", ("all",))
    # the relax section hashes the dict it hashed before relaxers were plugins: old stores resume
    old = {"fmax": 0.1, "max_steps": 500, "keep_symmetry": False}
    assert default.fingerprint()["relax"] == hashlib.sha256(json.dumps(old, sort_keys=True).encode()).hexdigest()[:16]
    path.write_text(CONFIG + '[relax]\nrelaxer = "sevennet"\nstages = ["guests", "all"]\n')
    staged = load_config(path)
    assert staged.relax.stages == ("guests", "all")
    changed = staged.fingerprint()
    assert [k for k in changed if changed[k] != default.fingerprint()[k]] == ["relax", "relaxer"]
    for text, message in (('relaxer = "chgnett"', "key 'relax.relaxer' unknown relaxer 'chgnett'"),
                          ('stages = ["guests", "guests"]', "key 'relax.stages'")):
        path.write_text(CONFIG + f"[relax]\n{text}\n")
        with pytest.raises(ChggenError, match=message):
            load_config(path)


def test_a_store_from_before_relaxers_resumes_and_records_the_relaxer(tmp_path):
    path = tmp_path / "campaign.toml"
    path.write_text(CONFIG)
    fingerprint = load_config(path).fingerprint()
    legacy = {k: v for k, v in fingerprint.items() if k != "relaxer"}
    store = ResultStore(tmp_path / "results.db")
    store.claim(legacy, "a campaign", "hint")
    store.add("row", {"status": "relaxed"})
    store.claim(fingerprint, "a campaign", "hint")  # resumes
    assert ResultStore(tmp_path / "results.db").metadata["fingerprint"] == fingerprint
    with pytest.raises(ChggenError, match="relaxer changed"):  # and is checked from now on
        store.claim({**fingerprint, "relaxer": "sevennet sevenn 0.13.0, model 7net-0"}, "a campaign", "hint")
    path.write_text(CONFIG + '[relax]\nstages = ["guests", "all"]\n')
    other = ResultStore(tmp_path / "other.db")
    other.claim(legacy, "a campaign", "hint")
    other.add("row", {"status": "relaxed"})
    with pytest.raises(ChggenError, match=r"\(relax changed\)"):  # staged is not what the old rows are
        other.claim(load_config(path).fingerprint(), "a campaign", "hint")


def test_every_relaxing_command_takes_relaxer_and_stages():
    parser = build_parser()
    for command in (["intercalate", "host.cif", "--guest", "Li", "--max", "2", "--model", "native", "--out", "o"],
                    ["order", "x.cif", "--out", "o"], ["benchmark", "symmetry"]):
        args = parser.parse_args(command + ["--relaxer", "sevennet", "--relax-stages", "guests,all"])
        assert (args.relaxer, args.relax_stages) == ("sevennet", ("guests", "all"))
        defaults = parser.parse_args(command)
        assert (defaults.relaxer, defaults.relax_stages) == (DEFAULT_RELAXER, DEFAULT_STAGES)


def test_chggen_models_lists_the_relaxers_with_their_versions(capsys):
    from chggen_plugins.cli import main

    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    relaxers = lines[lines.index(next(line for line in lines if line.startswith("RELAXER"))) + 1:]
    listed = {line.split()[0]: line for line in relaxers if line.strip()}
    assert set(listed) == set(installed_relaxers())
    assert "chgnet 0.4.2" in listed["chgnet"] and "chggen_plugins.evaluation.chgnet_relaxer" in listed["chgnet"]


def test_a_bad_relax_stages_value_names_the_option(capsys):
    """It used to read "relax stages: ..." from deep inside the Relaxer."""
    from chggen_plugins.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["intercalate", "host.cif", "--guest", "Li", "--max", "1", "--model", "native", "--out", "x",
              "--relax-stages", "guests,everything"])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("chggen intercalate: error: argument --relax-stages: 'guests,everything': ")
    assert "must be distinct names from guests, all" in error
