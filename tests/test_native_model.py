"""The native backend as users meet it: checkpoints, training with resume, inpainting, errors."""

import csv

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_native import NativeScoreModel, NetworkConfig
from chggen_plugins.datasets.split import split_dataset
from chggen_native.train import (
    GUEST_SETS,
    TrainSettings,
    draw_guests,
    dsm_loss,
    noisy_batch,
    supercell_of,
    train,
    training_crystals,
    training_ladder,
    validation_loss,
)
from chggen_plugins import ChggenError, inpaint, load_model
from chggen_plugins.cli import main
from chggen_plugins.structures.batch import structures_to_batch

TINY = NetworkConfig(features=16, layers=2, cutoff=5.0)


def li_si_structures(count=40):
    """Rattled Li-Si crystals: enough variety for a split, small enough to train in seconds."""
    rng = np.random.default_rng(0)
    base = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    out = []
    for k in range(count):
        species = ["Li" if i == k % 8 else "Si" for i in range(8)]
        shift = rng.normal(scale=0.05 + 0.1 * rng.random(), size=(8, 3))
        out.append(Structure(base.lattice, species, base.cart_coords + shift, coords_are_cartesian=True))
    return out


def test_checkpoint_round_trip(tmp_path):
    model = NativeScoreModel.untrained(frozenset({3, 14}), TINY)
    model.metadata["data_recipe"] = {"note": "test"}
    model.save(tmp_path / "m.pt")
    loaded = NativeScoreModel.load(tmp_path / "m.pt")
    assert loaded.elements == {3, 14} and loaded.network.config == TINY
    assert loaded.metadata["data_recipe"] == {"note": "test"}
    assert loaded.noise_process.describe() == model.noise_process.describe()
    from chggen_plugins.structures.batch import structures_to_batch
    batch = structures_to_batch(li_si_structures(2))
    assert torch.equal(loaded.score(batch, 50), model.score(batch, 50))


def test_weights_say_whether_they_were_trained(tmp_path):
    from chggen_plugins.contract.provenance import UNTRAINED, model_provenance
    untrained = NativeScoreModel.untrained(frozenset({3, 14}), TINY)
    assert model_provenance(untrained).label == UNTRAINED
    shipped = model_provenance(load_model("native"))
    assert shipped.label == "trained" and "trained" in shipped.text and "steps" in shipped.text


def test_bad_checkpoints_are_named(tmp_path):
    with pytest.raises(ChggenError, match="no such native checkpoint"):
        NativeScoreModel.load(tmp_path / "none.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file\n")  # torch itself says only "KeyError"
    with pytest.raises(ChggenError, match="junk.pt: not a readable torch checkpoint: a text file "
                                          r"\(starting 'not a torch file'\), not the zip archive"):
        NativeScoreModel.load(tmp_path / "junk.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ChggenError, match="empty.pt: not a readable torch checkpoint: the file is empty"):
        NativeScoreModel.load(tmp_path / "empty.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ChggenError, match="not a chggen native checkpoint"):
        NativeScoreModel.load(tmp_path / "other.pt")
    state = NativeScoreModel.untrained(frozenset({14}), TINY).state()
    state["network"]["features"] = 24
    torch.save(state, tmp_path / "mismatch.pt")
    with pytest.raises(ChggenError, match="weights do not match the recorded network"):
        NativeScoreModel.load(tmp_path / "mismatch.pt")


def test_unseen_element_is_refused(tmp_path):
    model = NativeScoreModel.untrained(frozenset({3, 14}), TINY)
    host = Structure(Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    with pytest.raises(ChggenError, match="element.*Zn unknown to NativeScoreModel, which knows Li, Si"):
        inpaint(host, {"Zn": 1}, model)


def test_with_levels_keeps_the_sigma_range_and_sets_correctors(tmp_path):
    """A coarser ladder over the same sigma range, the same network; corrector steps and snr as
    asked, kept by the checkpoint (they are the weights' sampling defaults)."""
    model = NativeScoreModel.untrained(frozenset({3, 14}), TINY)
    coarse = model.with_levels(30, corrector_steps=1, snr=0.7)
    assert coarse.network is model.network and coarse.noise_process.num_levels == 30
    assert coarse.noise_process.corrector_steps == 1 and model.noise_process.corrector_steps == 5
    assert (coarse.noise_process.snr, model.noise_process.snr) == (0.7, 0.4)
    assert torch.allclose(coarse.noise_process.sigmas[[0, -1]], model.noise_process.sigmas[[0, -1]])
    assert model.with_levels(30).noise_process.corrector_steps == 5
    assert coarse.with_levels(50).noise_process.snr == 0.7
    coarse.save(tmp_path / "coarse.pt")
    process = NativeScoreModel.load(tmp_path / "coarse.pt").noise_process
    assert (process.num_levels, process.corrector_steps, process.snr) == (30, 1, 0.7)


def test_native_inpaints_through_the_plugin(tmp_path):
    """Registered under 'native'; a checkpoint given as source; host exact, composition exact."""
    NativeScoreModel.untrained(frozenset({3, 14}), TINY).save(tmp_path / "m.pt")
    model = load_model("native", str(tmp_path / "m.pt"))
    host = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    for s in inpaint(host, {"Li": 2}, model, n_samples=2, seed=0, resamples=1):
        assert np.array_equal(s.frac_coords[:8], host.frac_coords)
        assert s.composition.formula == "Li2 Si8"
        assert np.isfinite(s.frac_coords).all()


def test_training_learns_and_resumes(tmp_path):
    structures = li_si_structures()
    settings = TrainSettings(steps=60, batch_size=4, learning_rate=5e-3, val_fraction=0.25,
                             eval_every=30, val_levels=4)
    model = train(structures, tmp_path, settings, TINY, recipe={"source": "test"}, progress=False)
    _, val = split_dataset(structures, 0.25)
    untrained = NativeScoreModel.untrained(model.elements, TINY)
    assert validation_loss(model, val, 4) < 0.9 * validation_loss(untrained, val, 4)  # 0.75 measured
    assert model.metadata["data_recipe"] == {"source": "test"} and model.metadata["step"] in (30, 60)
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["step"]) for r in rows] == [30, 60]
    # a later call with more steps (and a grown dataset) resumes at step 60 instead of starting over;
    # the new validation set makes the old best loss incomparable, so the next evaluation is the best
    grown = li_si_structures(60)
    assert grown[:40] == structures
    train(grown, tmp_path, TrainSettings(**{**settings.__dict__, "steps": 90}), TINY, progress=False)
    assert NativeScoreModel.load(tmp_path / "best.pt").metadata["step"] == 90
    rows = list(csv.DictReader(open(tmp_path / "log.csv")))
    assert [int(r["step"]) for r in rows] == [30, 60, 90]
    assert NativeScoreModel.load(tmp_path / "last.pt").metadata["step"] == 90


def test_supercell_of_repeats_the_shortest_vector_until_big_enough():
    layered = Structure(Lattice.from_parameters(3.4, 3.4, 5.7, 90, 90, 120), ["Ti", "S", "S"],
                        [[0, 0, 0], [1 / 3, 2 / 3, 0.25], [2 / 3, 1 / 3, 0.75]])
    big = supercell_of(layered, 48)
    # 3.4, 3.4, 5.7 -> repeats go to a, b, a, b, c, ... : 3 x 3 x 2 = 18 copies, 54 atoms
    assert len(big) == 54 and big.composition.reduced_formula == "TiS2"
    assert np.allclose(big.lattice.abc, (10.2, 10.2, 11.4))
    assert np.isclose(big.volume, 18 * layered.volume)
    assert supercell_of(big, 48) == big and len(supercell_of(layered, 3)) == 3


def test_training_crystals_draw_supercells_only_when_asked():
    structures = li_si_structures(8)
    plain = TrainSettings(batch_size=64)
    drawn = training_crystals(structures, plain, torch.Generator().manual_seed(0))
    assert {len(c) for c in drawn} == {8}
    grown = training_crystals(structures, TrainSettings(batch_size=64, supercell_atoms=20, supercell_fraction=0.5),
                              torch.Generator().manual_seed(0))
    # the same picks (the extra draw comes after them), about half of them as 2x2x1 supercells (32 atoms)
    assert [c.composition.reduced_formula for c in grown] == [c.composition.reduced_formula for c in drawn]
    sizes = [len(c) for c in grown]
    assert set(sizes) == {8, 32} and 20 <= sizes.count(32) <= 44
    always = TrainSettings(batch_size=8, supercell_atoms=20, supercell_fraction=1.0)
    assert {len(c) for c in training_crystals(structures, always, torch.Generator())} == {32}
    with pytest.raises(ChggenError, match="supercell fraction 1.5"):
        train(structures, "unused", TrainSettings(supercell_atoms=20, supercell_fraction=1.5))


def test_train_command(tmp_path, capsys):
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    write(tmp_path / "data.extxyz", [AseAtomsAdaptor.get_atoms(s) for s in li_si_structures(20)])
    argv = ["train", str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "run"), "--steps", "4",
            "--batch-size", "2", "--eval-every", "2", "--features", "16", "--layers", "1",
            "--val-fraction", "0.3", "-q"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "best validation loss" in out and "untrained network on the same" in out
    assert NativeScoreModel.load(tmp_path / "run" / "best.pt").network.config.layers == 1
    assert main(["train", str(tmp_path / "missing.extxyz"), "--out", str(tmp_path / "r")]) == 2
    assert main(["train", str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "r"), "--device", "tpu"]) == 2
    assert "--device 'tpu'" in capsys.readouterr().err
    assert main(argv[:2] + ["--out", str(tmp_path / "r1"), "--levels", "1", "-q"]) == 2
    assert "at least 2 levels, got 1" in capsys.readouterr().err


def test_train_command_energy_window(tmp_path, capsys):
    """Only structures near their formula's lowest energy are trained on, and the recipe says so."""
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import write
    from pymatgen.io.ase import AseAtomsAdaptor

    frames = []
    for index, structure in enumerate(li_si_structures(20)):
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.calc = SinglePointCalculator(atoms, energy=-4.0 * len(atoms) + 0.1 * (index % 4))
        frames.append(atoms)
    write(tmp_path / "data.extxyz", frames)
    argv = ["train", str(tmp_path / "data.extxyz"), "--out", str(tmp_path / "run"), "--steps", "2",
            "--batch-size", "2", "--eval-every", "2", "--features", "8", "--layers", "1",
            "--val-fraction", "0.3", "--energy-window", "0.02", "--device", "cpu", "--levels", "30",
            "--correctors", "1", "--snr", "0.6", "--supercell-atoms", "20", "--supercell-fraction", "0.25", "-q"]
    assert main(argv) == 0
    assert "10 structures (of 20, within 0.02 eV/atom" in capsys.readouterr().out
    trained = NativeScoreModel.load(tmp_path / "run" / "best.pt")
    recipe = trained.metadata["data_recipe"]
    assert recipe["structures"] == 10 and recipe["read"] == 20 and recipe["energy_window"] == 0.02
    assert trained.metadata["train_settings"]["supercell_atoms"] == 20
    assert trained.metadata["train_settings"]["supercell_fraction"] == 0.25
    # the sampling defaults the weights carry; training drew from the full 200-level ladder regardless
    process = trained.noise_process
    assert (process.num_levels, process.corrector_steps, process.snr) == (30, 1, 0.6)
    assert training_ladder(trained).num_levels == 200


def test_train_help_states_each_default_once(capsys):
    """Options left to the weights say their default in words, not as '(default: None)'."""
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: None" not in text
    assert "snr sigma)^2); default 0.4" in text and "decay over them) (default: 20000)" in text


def layered_crystal():
    """Li2TiS3-like 12 atoms of three species in a triclinic cell."""
    rng = np.random.default_rng(4)
    return Structure(Lattice.from_parameters(5.9, 6.3, 7.1, 82, 97, 104),
                     ["Li"] * 4 + ["Ti"] * 2 + ["S"] * 6, rng.random((12, 3)))


def test_guest_sets_are_drawn_in_every_way_at_their_rates():
    """Per crystal: a whole species, a random share, the atoms nearest a site, or everything."""
    crystal = layered_crystal()
    batch = structures_to_batch([crystal] * 800)
    guests = ~draw_guests(batch, torch.Generator().manual_seed(0)).fixed.view(800, 12)
    numbers = batch.atomic_numbers.view(800, 12)[0]
    species = torch.unique(numbers)
    every = guests.all(dim=1)
    one_species = torch.tensor([not g.all() and any(torch.equal(g, numbers == z) for z in species) for g in guests])
    assert abs(every.float().mean().item() - GUEST_SETS["all"]) < 0.05
    assert abs(one_species.float().mean().item() - GUEST_SETS["species"]) < 0.05
    partial = guests[~every & ~one_species]
    assert partial.sum(dim=1).min() >= 1 and partial.sum(dim=1).max() <= round(0.6 * 12)   # 10-60%
    assert abs(len(partial) / 800 - GUEST_SETS["subset"] - GUEST_SETS["sphere"]) < 0.06
    # a sphere's guests are the atoms nearest one of them (no host atom closer to that centre): all
    # sphere draws and, by chance, few random subsets
    distances = torch.tensor(crystal.distance_matrix)
    balls = sum(any((distances[c, g].max() <= distances[c, ~g].min()) for c in torch.nonzero(g).flatten())
                for g in partial)
    share = GUEST_SETS["sphere"] / (GUEST_SETS["sphere"] + GUEST_SETS["subset"])
    assert share * len(partial) <= balls <= (share + 0.15) * len(partial)


def test_conditional_noise_leaves_the_host_clean_and_the_loss_counts_guests_only():
    config = NetworkConfig(features=16, layers=1, cutoff=5.0, host_flag=True)
    model = NativeScoreModel.untrained(frozenset({3, 22, 16}), config)
    batch = draw_guests(structures_to_batch([layered_crystal()] * 6), torch.Generator().manual_seed(1))
    assert batch.fixed.any() and (~batch.fixed).any()
    levels = torch.tensor([20, 60, 100, 140, 180, 199])
    noisy, sigma, target = noisy_batch(model, batch, levels, torch.Generator().manual_seed(2))
    host = batch.fixed
    assert torch.equal(noisy.frac_coords[host], batch.frac_coords[host])        # bit for bit
    assert (noisy.frac_coords[~host] != batch.frac_coords[~host]).all(dim=1).all()
    assert torch.equal(target[host], torch.zeros_like(target[host]))
    output = model.network_output(noisy, sigma)
    by_hand = (output[~host] - target[~host].float()).pow(2).sum(dim=1).mean()
    loss = dsm_loss(model, batch, levels, torch.Generator().manual_seed(2))
    assert torch.allclose(loss, by_hand)
    with_host = (output - target.float()).pow(2).sum(dim=1).mean()     # the host must not count
    assert not torch.allclose(loss, with_host, rtol=1e-3)


def test_conditional_training_saves_a_host_conditioned_model(tmp_path):
    settings = TrainSettings(steps=6, batch_size=4, val_fraction=0.25, eval_every=6, val_levels=2)
    model = train(li_si_structures(), tmp_path, settings, NetworkConfig(features=16, layers=1, cutoff=5.0,
                                                                        host_flag=True), progress=False)
    loaded = NativeScoreModel.load(tmp_path / "best.pt")
    assert model.host_conditioned and loaded.host_conditioned
    assert loaded.provenance.startswith("host-conditioned native network trained 6 steps")
    host = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    for s in inpaint(host, {"Li": 2}, loaded, n_samples=2, seed=0, levels=20):
        assert np.array_equal(s.frac_coords[:8], host.frac_coords)


def test_weights_without_a_host_flag_load_unconditional():
    """The shipped weights and every older checkpoint predate the flag: they stay unconditional."""
    assert load_model("native").host_conditioned is False
    from chggen_native.plugin import DEFAULT_WEIGHTS
    conditional = load_model("native", str(DEFAULT_WEIGHTS.with_name("native_conditional.pt")))
    assert conditional.host_conditioned and conditional.trained
