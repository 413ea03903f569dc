"""The DiffCSP network against DiffCSP's own code, and the symmetries its score must have.

tests/data/diffcsp_reference.pt was recorded by running DiffCSP's original CSPDiffusion modules
(jiaor17/DiffCSP, unmodified files, outside this repository) on seeded random weights and inputs: a
tiny CSP model and a tiny de novo model with their state dicts, inputs and outputs, plus the key
names and shapes of both full-size (hidden 512, 6 layers, 128 frequencies) state dicts.
"""

from pathlib import Path

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_diffcsp import CSPNetConfig, DiffCSPNetwork, DiffCSPScoreModel
from chggen_plugins.structures.batch import structures_to_batch

REFERENCE = torch.load(Path(__file__).parent / "data" / "diffcsp_reference.pt", weights_only=True)
TINY = CSPNetConfig(hidden_dim=16, num_layers=2, num_freqs=4, time_dim=8, timesteps=10)


@pytest.mark.parametrize("kind", ["csp", "denovo"])
def test_outputs_equal_diffcsp_original_code(kind):
    case = REFERENCE[kind]
    network = DiffCSPNetwork(CSPNetConfig(**case["config"]))
    network.load_state_dict(case["state_dict"], strict=True)
    x = case["inputs"]
    with torch.no_grad():
        lattice_out, coord_out, type_out = network(x["t"], x["atom_types"], x["frac_coords"],
                                                   x["lattice"], x["batch"])
    expected = case["outputs"]
    torch.testing.assert_close(coord_out, expected["coord_out"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(lattice_out, expected["lattice_out"], rtol=1e-5, atol=1e-5)
    if kind == "denovo":
        torch.testing.assert_close(type_out, expected["type_out"], rtol=1e-5, atol=1e-5)
    else:
        assert type_out is None
    assert coord_out.abs().max() > 0.1  # a real signal, not a vanishing output


@pytest.mark.parametrize("kind, keys, parameters", [("csp", 73, 12_294_656), ("denovo", 76, None)])
def test_full_size_layout_is_diffcsp_layout(kind, keys, parameters):
    network = DiffCSPNetwork(CSPNetConfig(predict_types=kind == "denovo"))
    layout = {name: list(value.shape) for name, value in network.state_dict().items()}
    assert layout == REFERENCE["full_layout"][kind]
    assert len(layout) == keys
    if parameters is not None:  # the published CSP model's size
        assert sum(p.numel() for p in network.parameters()) == parameters


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = DiffCSPScoreModel.untrained(TINY, seed=1)
    with torch.no_grad():  # LayerNorm starts as identity: perturb so every parameter matters
        for parameter in model.network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def li_si(lattice: Lattice) -> Structure:
    return Structure(lattice, ["Si", "Si", "Li", "Si"],
                     [[0.0, 0.0, 0.0], [0.26, 0.24, 0.27], [0.6, 0.1, 0.45], [0.5, 0.55, 0.05]])


def test_rotating_the_crystal_leaves_the_fractional_score_unchanged(model):
    lattice = Lattice.from_parameters(5.0, 5.6, 6.1, 82, 97, 109)
    rotation = torch.linalg.matrix_exp(torch.tensor([[0.0, -0.7, 0.3], [0.7, 0.0, -1.1], [-0.3, 1.1, 0.0]],
                                                    dtype=torch.float64)).numpy()
    rotated = Lattice(lattice.matrix @ rotation.T)  # every cell vector rotated, same fractional coords
    strained = Lattice(lattice.matrix @ np.diag([1.1, 1.0, 0.95]))
    batch = structures_to_batch([li_si(lattice), li_si(rotated), li_si(strained)])
    score = model.score(batch, 4)
    original, turned, stretched = score[:4], score[4:8], score[8:]
    torch.testing.assert_close(turned, original, rtol=1e-4, atol=1e-4)
    assert (stretched - original).abs().max() > 1e-2  # the lattice does reach the score


def test_score_follows_atoms_and_ignores_periodic_shifts(model):
    structure = li_si(Lattice.from_parameters(5.0, 5.6, 6.1, 82, 97, 109))
    order = [2, 0, 3, 1]
    shifted = structure.copy()
    shifted.translate_sites(list(range(4)), [0.37, -0.21, 0.9], to_unit_cell=True)
    permuted = Structure(structure.lattice, [structure[i].species for i in order],
                         [structure[i].frac_coords for i in order])
    batch = structures_to_batch([structure, shifted, permuted])
    score = model.score(batch, 7)
    torch.testing.assert_close(score[4:8], score[:4], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(score[8:], score[:4][order], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(model.score(batch, 2)[:4], score[:4])  # the time step matters
