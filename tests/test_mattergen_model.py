"""The MatterGen backend on a small randomly initialised MatterGen saved in its published layout:
loading, the score against MatterGen's own score_fn, its noise process, inpainting through the
core sampler, MatterGen's own generator (its network swapped for the exact score of a known
crystal), and one-line errors."""

import functools
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

pytest.importorskip("mattergen")
from chggen_mattergen.checkpoint import CHECKPOINT_FILE, CONFIG_FILE, write_untrained_checkpoint  # noqa: E402
from chggen_mattergen.noise import MatterGenPositionVE  # noqa: E402
from chggen_mattergen.runtime import mattergen_module  # noqa: E402
from chggen_plugins.api import inpaint  # noqa: E402
from chggen_plugins.cli import main  # noqa: E402
from chggen_plugins.contract.protocol import CrystalBatch  # noqa: E402
from chggen_plugins.contract.registry import installed_models, load_model  # noqa: E402
from chggen_plugins.errors import ChggenError  # noqa: E402
from chggen_plugins.structures.batch import InpaintTask, tasks_to_batch  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
LEVELS = 10  # the small checkpoint's species diffusion steps: its own grid, and its generator's N


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """(directory, the DiffusionLightningModule that was saved there): hidden 64, 2 blocks and 12
    neighbours (MatterGen: 512, 4, 50) keep a call near 50 ms for 20 atoms on one thread."""
    directory = tmp_path_factory.mktemp("mattergen_small")
    saved = write_untrained_checkpoint(directory, hidden_dim=64, num_blocks=2, discrete_steps=LEVELS,
                                       max_neighbors=12, seed=3)
    return directory, saved


@pytest.fixture(scope="module")
def model(checkpoint):
    return load_model("mattergen", str(checkpoint[0]))


@pytest.fixture
def si_host():
    return Structure.from_file(str(EXAMPLES / "si_host.cif"))


def noisy_batch(host, guests_per_crystal, seed=0):
    """One crystal per guest count (different atom counts, so different n^(1/3)), random positions."""
    batch = tasks_to_batch([InpaintTask(host, {"Li": n}) for n in guests_per_crystal])
    frac = torch.rand(batch.frac_coords.shape, generator=torch.Generator().manual_seed(seed),
                      dtype=torch.float64)
    return batch.with_frac_coords(frac)


def mattergen_graph(batch):
    """MatterGen's own batch for the same crystals, built here independently of the adapter."""
    ChemGraph = mattergen_module("common.data.chemgraph").ChemGraph
    collate = mattergen_module("common.data.collate").collate
    graphs = []
    for crystal in range(batch.num_crystals):
        atoms = batch.batch == crystal
        graphs.append(ChemGraph(pos=batch.frac_coords[atoms].float(), cell=batch.lattice[crystal][None].float(),
                                atomic_numbers=batch.atomic_numbers[atoms], num_atoms=int(atoms.sum()),
                                num_nodes=int(atoms.sum())))
    return collate(graphs)


def test_a_checkpoint_torch_weights_only_refuses_loads_with_the_saved_weights(checkpoint, model):
    directory, saved = checkpoint
    with pytest.raises(pickle.UnpicklingError):  # torch>=2.6 default: a Lightning checkpoint fails
        torch.load(directory / CHECKPOINT_FILE, weights_only=True)
    loaded = model.module.state_dict()
    for name, tensor in saved.state_dict().items():
        assert torch.equal(loaded[name], tensor), name
    assert model.noise_process.num_levels == LEVELS
    state = torch.random.get_rng_state()
    load_model("mattergen", str(directory))
    assert torch.equal(torch.random.get_rng_state(), state)  # loading draws no numbers of the caller's


def test_score_is_mattergen_score_fn_in_the_stretched_coordinates(checkpoint, model, si_host):
    _, saved = checkpoint
    model = model.with_levels(1000)
    batch = noisy_batch(si_host, [2, 5])
    level = 600
    t = torch.full((2,), (level + 1) / 1000)
    with torch.no_grad():
        expected = saved.diffusion_module.score_fn(mattergen_graph(batch), t).pos.double()
    stretch = batch.num_atoms.double()[batch.batch].unsqueeze(1) ** (1 / 3)
    got = model.score(batch, level)
    assert torch.allclose(got * stretch, expected, rtol=1e-6, atol=1e-9 * expected.abs().max())
    # MatterGen's pos std at t is the ladder's sigma over the stretch n^(1/3)
    pos_sde = saved.diffusion_module.corruption.sdes["pos"]
    _, std = pos_sde.marginal_prob(torch.ones(2, 3), t, batch_idx=torch.arange(2),
                                   batch={"num_atoms": batch.num_atoms})
    assert torch.allclose(std[:, 0].double(), model.noise_process.sigma(level) / batch.num_atoms.double() ** (1 / 3),
                          rtol=1e-6)


def test_ladder_is_mattergen_time_grid_and_noise_shrinks_with_atom_count():
    process = MatterGenPositionVE(num_levels=50)
    for level in (0, 17, 49):
        assert process.time(level) == pytest.approx((level + 1) / 50)
        assert process.sigma(level) == pytest.approx(0.01 * 500 ** ((level + 1) / 50), rel=1e-12)
    lattice = torch.diag(torch.tensor([4.0, 5.0, 6.0], dtype=torch.float64))
    sizes = torch.tensor([8, 27])
    batch = CrystalBatch(torch.full((35, 3), 0.5, dtype=torch.float64), lattice.expand(2, 3, 3).clone(),
                         torch.full((35,), 14), torch.repeat_interleave(torch.arange(2), sizes),
                         torch.zeros(35, dtype=torch.bool))
    level = 20  # sigma 0.12: std 0.06 and 0.04 in fractional units, far from the wrap
    generator = torch.Generator().manual_seed(0)
    draws = torch.stack([process.marginal(batch.frac_coords, level, batch, generator) for _ in range(400)])
    spread = (draws - 0.5).std(dim=0)
    for crystal, n in enumerate((8, 27)):
        measured = spread[batch.batch == crystal].mean().item()
        assert measured == pytest.approx(process.sigma(level) / n ** (1 / 3), rel=0.03)


def test_last_reverse_step_is_mattergen_ancestral_predictor(checkpoint, model, si_host):
    """From t = 1/L to clean MatterGen's predictor is deterministic: x + std_t^2 * score_frac."""
    directory, saved = checkpoint
    batch = noisy_batch(si_host, [2, 3], seed=1)
    score = model.score(batch, 0)
    got = model.noise_process.predictor_step(batch.frac_coords, score, 0, batch, torch.Generator())
    predictor = mattergen_module("diffusion.wrapped.wrapped_predictors_correctors") \
        .WrappedAncestralSamplingPredictor(corruption=saved.diffusion_module.corruption.sdes["pos"], score_fn=None)
    graph = mattergen_graph(batch)
    t = torch.full((2,), 1 / LEVELS)
    with torch.no_grad():
        score_frac = saved.diffusion_module.score_fn(graph, t).pos
    _, mean = predictor.update_given_score(x=graph.pos, t=t, dt=torch.tensor(-1 / LEVELS),
                                           batch_idx=graph.get_batch_idx("pos"), score=score_frac, batch=graph)
    difference = (got - mean.double() + 0.5) % 1.0 - 0.5  # both wrapped into [0, 1)
    assert difference.abs().max() < 1e-6


def test_inpaint_li_into_si_keeps_host_and_composition(model, si_host):
    samples = inpaint(si_host, {"Li": 2}, model, n_samples=2, seed=5, jump_length=5, resamples=2)
    assert len(samples) == 2
    for structure in samples:
        assert structure.composition == Composition("Si8Li2")
        assert np.array_equal(structure.lattice.matrix, si_host.lattice.matrix)
        assert np.array_equal(structure.frac_coords[:8], si_host.frac_coords)
        assert [site.specie.symbol for site in structure][:8] == ["Si"] * 8
        guests = structure.frac_coords[8:]
        assert np.isfinite(guests).all() and (guests >= 0).all() and (guests < 1).all()
    assert not np.allclose(samples[0].frac_coords[8:], samples[1].frac_coords[8:])


def test_the_documented_cli_command_writes_inpainted_structures(checkpoint, tmp_path, capsys):
    out = tmp_path / "li_si.extxyz"
    assert main(["inpaint", str(EXAMPLES / "si_host.cif"), "--guest", "Li:1", "--model", "mattergen",
                 "--model-source", str(checkpoint[0]), "--samples", "2", "--seed", "0", "--out", str(out),
                 "-q"]) == 0
    assert "wrote 2 structures" in capsys.readouterr().out
    from ase.io import read
    frames = read(out, index=":")
    assert [frame.get_chemical_formula() for frame in frames] == ["LiSi8", "LiSi8"]


# MatterGen's own generator runs its real sampler, corruption and score_fn, with the denoiser network
# swapped for the exact score of a known crystal: a random network's scores are ~1e-3, so its Langevin
# corrector blows the cell up (~1e6 A^3 at the first step) and nothing definite can be checked.
TARGET_LATTICE = Lattice.from_parameters(4.2, 5.1, 6.3, 84, 97, 109)  # triclinic
TARGET_SPECIES = [16, 30, 16, 16, 30, 16]  # S and Zn: not the composition asked for, in this order
TARGET_SITES = torch.tensor([[0.0, 0.0, 0.0], [0.27, 0.61, 0.13], [0.52, 0.08, 0.71],
                             [0.93, 0.44, 0.36], [0.15, 0.85, 0.58], [0.68, 0.33, 0.95]],
                            dtype=torch.float64)


def symmetric_cell(lattice):
    """MatterGen's lattice convention (its polar decomposition): sqrt(L L^T), the symmetric matrix
    whose rows have the lengths and angles of L's rows."""
    matrix = torch.tensor(lattice.matrix, dtype=torch.float64)
    values, vectors = torch.linalg.eigh(matrix @ matrix.T)
    return vectors @ torch.diag(values.sqrt()) @ vectors.T


class ExactTargetDenoiser(torch.nn.Module):
    """In place of MatterGen's GemNetTDenoiser, with its output conventions (pos and cell: score x std,
    pos per unit fractional coordinate; atomic numbers: zero-based logits whose last class is the
    mask), the exact marginal scores of data at one crystal (atom i at site i), or spread around it:
    pos ~ wrapped N(site, pos_spread^2) (summed over images), cell ~ N(target, cell_spread^2 A^2) per
    element under the lattice VP SDE, species certain and never the mask. Std, mean coefficient and
    marginal mean come from MatterGen's own SDEs."""

    def __init__(self, corruption, cell, species, sites, pos_spread=0.0, cell_spread=0.0):
        super().__init__()
        self.corruption = corruption
        self.cell = cell.float()
        self.species = torch.tensor(species)
        self.sites = sites.float()
        self.pos_spread, self.cell_spread = pos_spread, cell_spread

    def forward(self, x, t):
        pos_sde, cell_sde = self.corruption.sdes["pos"], self.corruption.sdes["cell"]
        types = self.corruption.discrete_corruptions["atomic_numbers"]
        batch_idx = x.get_batch_idx("pos")
        assert (x["num_atoms"] == len(self.sites)).all()
        site = torch.arange(len(batch_idx)) % len(self.sites)  # atom i of every crystal -> site i

        _, std = pos_sde.marginal_prob(torch.ones_like(x["pos"]), t, batch_idx, batch=x)
        variance = std ** 2 + self.pos_spread ** 2
        reach = int(torch.ceil(6 * variance.max().sqrt())) + 1  # every image within 6 std
        offsets = ((x["pos"] - self.sites[site]).remainder(1.0)[..., None]
                   + torch.arange(-reach, reach + 1, dtype=x["pos"].dtype))
        weights = torch.softmax(-offsets ** 2 / (2 * variance[..., None]), dim=-1)
        pos_score = -(weights * offsets).sum(-1) / variance

        target = self.cell.expand(len(x["num_atoms"]), 3, 3)
        mean, cell_std = cell_sde.marginal_prob(target, t, None, batch=x)
        coefficient, _ = cell_sde.mean_coeff_and_std(target, t, None, batch=x)
        cell_score = -(x["cell"] - mean) / (cell_std ** 2 + (coefficient * self.cell_spread) ** 2)

        logits = torch.full((len(batch_idx), types.d3pm.dim), -50.0)
        logits[torch.arange(len(batch_idx)), self.species[site] - types.offset] = 0.0
        return x.replace(pos=pos_score * std, cell=cell_score * cell_std, atomic_numbers=logits)


def use_exact_denoiser(monkeypatch, **spreads):
    """generate() as it is, reading the checkpoint from disk, but with ExactTargetDenoiser as the
    network of the module it loads. Returns the target's (symmetric) cell."""
    import chggen_mattergen.generate as own

    target_cell = symmetric_cell(TARGET_LATTICE)
    real_load = own.load_module

    def load_with_exact_denoiser(directory, device="cpu"):
        module, config = real_load(directory, device)
        diffusion = module.diffusion_module
        diffusion.model = ExactTargetDenoiser(diffusion.corruption, target_cell, TARGET_SPECIES,
                                              TARGET_SITES, **spreads)
        return module, config

    monkeypatch.setattr(own, "load_module", load_with_exact_denoiser)
    monkeypatch.setattr(own, "_module", functools.lru_cache(maxsize=1)(own._module.__wrapped__))  # fresh cache
    return target_cell


def test_own_generator_samples_lattice_species_and_positions(checkpoint, monkeypatch):
    target_cell = use_exact_denoiser(monkeypatch, pos_spread=0.01, cell_spread=0.05)
    generate = installed_models()["mattergen"].spec.generate
    state = torch.random.get_rng_state()
    first = generate(str(checkpoint[0]), Composition("Li2Si4"), 2, 11)
    assert torch.equal(torch.random.get_rng_state(), state)  # seeded privately
    again = generate(str(checkpoint[0]), Composition("Li2Si4"), 2, 11)
    other = generate(str(checkpoint[0]), Composition("Li2Si4"), 2, 12)
    vocabulary = set(mattergen_module("common.utils.globals").SELECTED_ATOMIC_NUMBERS)
    assert len(first) == 2
    # tolerances: over 100 samples (10 steps) the largest deviations were 0.029 frac, 0.031 A per
    # cell element, 0.38% in length, 0.73 degrees and 1.3% in volume
    for structure, repeat, reseeded in zip(first, again, other):
        assert len(structure) == 6  # the composition's atom count; species are MatterGen's choice
        assert list(structure.atomic_numbers) == TARGET_SPECIES
        assert set(structure.atomic_numbers) <= vocabulary
        lattice = structure.lattice
        assert np.isfinite(lattice.matrix).all()
        assert np.abs(lattice.matrix - target_cell.numpy()).max() < 0.1
        assert np.allclose(lattice.abc, TARGET_LATTICE.abc, rtol=0.015)
        assert np.allclose(lattice.angles, TARGET_LATTICE.angles, atol=2.0)
        assert lattice.volume == pytest.approx(TARGET_LATTICE.volume, rel=0.04)
        frac = structure.frac_coords
        assert ((frac >= 0) & (frac < 1)).all()
        offset = (frac - TARGET_SITES.numpy() + 0.5) % 1.0 - 0.5  # minimum image, atom i vs site i
        assert np.abs(offset).max() < 0.05
        assert np.array_equal(frac, repeat.frac_coords)
        assert np.array_equal(lattice.matrix, repeat.lattice.matrix)
        assert structure.atomic_numbers == repeat.atomic_numbers
        assert not np.allclose(frac, reseeded.frac_coords)  # the seed matters


def test_own_generator_lands_on_a_sharp_target_inside_the_cell(checkpoint, monkeypatch):
    """With a point target the final ancestral step lands on it (float32 precision). Site 0 sits at
    the origin: MatterGen's float32 wrap returns 1.0 for -1e-8, and with this seed it does."""
    target_cell = use_exact_denoiser(monkeypatch)
    generate = installed_models()["mattergen"].spec.generate
    for structure in generate(str(checkpoint[0]), Composition("Li2Si4"), 2, 0):
        assert list(structure.atomic_numbers) == TARGET_SPECIES
        assert np.abs(structure.lattice.matrix - target_cell.numpy()).max() < 1e-5
        frac = structure.frac_coords
        assert ((frac >= 0) & (frac < 1)).all()
        assert np.abs((frac - TARGET_SITES.numpy() + 0.5) % 1.0 - 0.5).max() < 1e-6


def one_line_error(excinfo):
    message = str(excinfo.value)
    assert "\n" not in message
    return message


def test_elements_outside_the_vocabulary_are_refused(model, si_host):
    with pytest.raises(ChggenError, match="Xe") as excinfo:
        inpaint(si_host, {"Xe": 1}, model, seed=0)
    one_line_error(excinfo)
    batch = noisy_batch(si_host, [1])
    batch = CrystalBatch(batch.frac_coords, batch.lattice, torch.tensor([14] * 8 + [54]), batch.batch, batch.fixed)
    with pytest.raises(ChggenError, match="Xe outside MatterGen's vocabulary"):
        model.score(batch, 3)


def test_a_crystal_without_neighbours_is_refused_before_gemnet(model, si_host):
    # an empty cell (as unconditional generation has; a host this sparse is refused by InpaintTask)
    lonely = Structure(Lattice.cubic(30.0), [], [])
    batch = tasks_to_batch([InpaintTask(lonely, {"Si": 2, "Li": 1})])  # all pairs >= 10 A apart, cutoff 7 A
    batch = batch.with_frac_coords(torch.tensor([[0, 0, 0], [0.5, 0.5, 0.5], [0.25, 0.75, 0.5]],
                                                dtype=torch.float64))
    with pytest.raises((IndexError, RuntimeError)):  # what MatterGen itself does with it
        with torch.no_grad():
            model.diffusion.score_fn(mattergen_graph(batch), torch.full((1,), 0.5))
    with pytest.raises(ChggenError, match="crystal 0 .*no atom has two neighbours within") as excinfo:
        model.score(batch, 3)
    one_line_error(excinfo)
    dense = noisy_batch(si_host, [1])
    both = tasks_to_batch([InpaintTask(si_host, {"Li": 1}), InpaintTask(lonely, {"Si": 2, "Li": 1})])
    both = both.with_frac_coords(torch.cat([dense.frac_coords, batch.frac_coords]))
    with pytest.raises(ChggenError, match="crystal 1 "):  # a sparse crystal beside a dense one too
        model.score(both, 3)


def test_missing_or_incomplete_checkpoint_directories_name_the_file(checkpoint, tmp_path):
    with pytest.raises(ChggenError, match="not a directory") as excinfo:
        load_model("mattergen", str(tmp_path / "nowhere"))
    one_line_error(excinfo)
    only_config = tmp_path / "only_config"
    only_config.mkdir()
    (only_config / CONFIG_FILE).write_text((checkpoint[0] / CONFIG_FILE).read_text())
    with pytest.raises(ChggenError, match="missing checkpoints/last.ckpt"):
        load_model("mattergen", str(only_config))
    only_weights = tmp_path / "only_weights"
    (only_weights / "checkpoints").mkdir(parents=True)
    (only_weights / CHECKPOINT_FILE).write_bytes(b"x")
    with pytest.raises(ChggenError, match="missing config.yaml"):
        load_model("mattergen", str(only_weights))
    (only_weights / CONFIG_FILE).write_text((checkpoint[0] / CONFIG_FILE).read_text())
    (only_weights / CHECKPOINT_FILE).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0\n")
    with pytest.raises(ChggenError, match="Git LFS pointer"):
        load_model("mattergen", str(only_weights))
    with pytest.raises(ChggenError, match="needs --model-source"):
        load_model("mattergen", None)


class WritesMarker:
    """Unpickling this runs `touch PATH`, as a planted `__reduce__` would."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def copy_checkpoint(source, target):
    (target / "checkpoints").mkdir(parents=True)
    (target / CONFIG_FILE).write_text((source / CONFIG_FILE).read_text())
    (target / CHECKPOINT_FILE).write_bytes((source / CHECKPOINT_FILE).read_bytes())
    return target


SET_EMBEDDING = ("      _target_: mattergen.property_embeddings.SetEmbeddingType\n      p_unconditional: 0.2\n"
                 "      dropout_fields_iid: false\n")


@pytest.mark.parametrize("old, new, message", [
    (SET_EMBEDDING, "      _target_: os.system\n      _args_: ['touch {marker}']\n",
     "lightning_module.diffusion_module.pre_corruption_fn._target_ = 'os.system' is not one of MatterGen's"),
    ("p_unconditional: 0.2", "p_unconditional: ${{eval:'__import__(\"os\").system(\"touch {marker}\") * 0.0'}}",
     "lightning_module.diffusion_module.pre_corruption_fn.p_unconditional = "),
], ids=["target", "eval-resolver"])
def test_a_config_that_would_run_code_is_refused_before_hydra(checkpoint, tmp_path, capsys, old, new, message):
    """A `_target_` outside MatterGen's model classes, or MatterGen's `eval` resolver, in config.yaml:
    nothing runs and the user reads one line."""
    marker = tmp_path / "ran"
    planted = copy_checkpoint(checkpoint[0], tmp_path / "planted")
    text = (planted / CONFIG_FILE).read_text()
    assert old in text
    (planted / CONFIG_FILE).write_text(text.replace(old, new.format(marker=marker)))
    argv = ["inpaint", str(EXAMPLES / "si_host.cif"), "--guest", "Li:1", "--model", "mattergen",
            "--model-source", str(planted), "--out", str(tmp_path / "o.extxyz"), "-q"]
    assert main(argv) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0] and str(planted / CONFIG_FILE) in error[0], error
    assert not marker.exists()


def test_a_checkpoint_pickle_that_would_run_code_loads_inert(checkpoint, tmp_path):
    """`last.ckpt` is read by the restricted unpickler: a planted `__reduce__` stays a stand-in, the
    weights load, nothing runs."""
    marker = tmp_path / "ran"
    planted = copy_checkpoint(checkpoint[0], tmp_path / "planted")
    torch.save({"state_dict": checkpoint[1].state_dict(), "config": WritesMarker(marker)},
               planted / CHECKPOINT_FILE)
    loaded = load_model("mattergen", str(planted)).module.state_dict()
    assert not marker.exists()
    assert all(torch.equal(loaded[name], tensor) for name, tensor in checkpoint[1].state_dict().items())
    torch.load(planted / CHECKPOINT_FILE, weights_only=False)  # the payload is real: a full unpickling runs it
    assert marker.exists()


def test_published_name_offline_says_what_to_download(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ChggenError, match="download checkpoints/mattergen_base/config.yaml") as excinfo:
        load_model("mattergen", "mattergen_base")
    assert "--model-source DIR" in one_line_error(excinfo)


def test_more_atoms_than_trained_on_warns(model, si_host):
    si_host.make_supercell([2, 1, 1])  # 16 Si + 6 Li = 22 atoms > 20
    with pytest.warns(UserWarning, match="trained on cells of at most 20"):
        model.score(noisy_batch(si_host, [6]), 5)
