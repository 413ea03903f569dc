"""Physics of the native score network: symmetry of the output and a complete periodic graph."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure
from scipy.spatial.transform import Rotation

from chggen_native import NativeScoreModel, NetworkConfig
from chggen_native.graph import all_pairs_graph, cell_list_graph, radius_graph
from chggen_native.network import PairGeometry
from chggen_plugins.structures.batch import structures_to_batch

LEVEL = 110  # sigma ~ 0.5 A: outputs of order one


HOST_SPECIES = (14, 16)  # a host-conditioned network sees Si and S as its clean host in these tests


@pytest.fixture(scope="module", params=[False, True], ids=["unconditional", "host-conditioned"])
def model(request):
    config = NetworkConfig(features=32, layers=2, host_flag=request.param)
    return NativeScoreModel.untrained(frozenset({3, 14, 15, 16, 30}), config)


@pytest.fixture
def crystal():
    rng = np.random.default_rng(7)
    return Structure(Lattice.from_parameters(5.2, 6.1, 7.0, 78, 96, 107),
                     ["Li", "Si", "Li", "Zn", "S", "P", "S"], rng.random((7, 3)))


def score_of(model, structure):
    """The score at LEVEL; a host-conditioned network gets its host by species, so the host rotates,
    translates, permutes and tiles with the crystal."""
    batch = structures_to_batch([structure])
    if model.host_conditioned:
        batch = replace(batch, fixed=torch.isin(batch.atomic_numbers, torch.tensor(HOST_SPECIES)))
    return model.score(batch, LEVEL).numpy()


def assert_same(got, expected):
    """Equal to float32 round-off relative to the output's scale (a real, non-zero output)."""
    scale = np.abs(expected).max()
    assert scale > 1e-4
    assert np.abs(got - expected).max() <= 1e-5 * scale, np.abs(got - expected).max() / scale


def test_rotation_rotates_the_score(model, crystal):
    rotation = Rotation.random(random_state=3).as_matrix()
    rotated = Structure(Lattice(crystal.lattice.matrix @ rotation.T), crystal.species, crystal.frac_coords)
    assert_same(score_of(model, rotated), score_of(model, crystal) @ rotation.T)


def test_translation_leaves_the_score_alone(model, crystal):
    shifted = Structure(crystal.lattice, crystal.species, crystal.frac_coords + [0.31, -0.47, 0.9])
    assert_same(score_of(model, shifted), score_of(model, crystal))


def test_permutation_permutes_the_score(model, crystal):
    order = [3, 0, 6, 1, 5, 2, 4]
    permuted = Structure(crystal.lattice, [crystal.species[i] for i in order], crystal.frac_coords[order])
    assert_same(score_of(model, permuted), score_of(model, crystal)[order])


def test_supercell_gives_the_tiled_score(model, crystal):
    supercell = crystal * (2, 1, 1)  # pymatgen lists each site's two copies next to each other
    assert_same(score_of(model, supercell), np.repeat(score_of(model, crystal), 2, axis=0))


def test_cell_smaller_than_the_cutoff(model):
    """A 2.6 A one-atom cell: each atom sees dozens of its own images; a 2x2x2 supercell agrees."""
    cell = Structure(Lattice.from_parameters(2.6, 2.8, 3.0, 85, 95, 100), ["Si", "Li"],
                     [[0, 0, 0], [0.45, 0.55, 0.4]])
    big = cell * (2, 2, 2)
    assert_same(score_of(model, big), np.repeat(score_of(model, cell), 8, axis=0))


@pytest.mark.parametrize("lattice", [
    Lattice.from_parameters(2.5, 2.5, 9.0, 90, 90, 120),
    Lattice.from_parameters(4.0, 4.5, 5.0, 60, 70, 65),
    Lattice.from_parameters(7.0, 3.1, 5.0, 100, 120, 95),
])
@pytest.mark.parametrize("search", [cell_list_graph, all_pairs_graph], ids=["vesin", "all-pairs"])
def test_graph_finds_every_neighbour(lattice, search):
    """Edge count and distances equal pymatgen's exhaustive periodic neighbour search, for the CPU
    (vesin) search and the on-device one alike."""
    rng = np.random.default_rng(1)
    structure = Structure(lattice, ["Si"] * 5, rng.random((5, 3)))
    batch = structures_to_batch([structure, structure * (1, 2, 1)])
    edges = search(torch.remainder(batch.frac_coords, 1.0), batch.lattice, batch.batch, 6.0)
    for index, s in enumerate([structure, structure * (1, 2, 1)]):
        centres, _, _, distances = s.get_neighbor_list(6.0)
        mine = edges.vectors.norm(dim=1)[batch.batch[edges.target] == index].numpy()
        assert len(mine) == len(centres)
        assert np.allclose(np.sort(mine), np.sort(distances), atol=1e-9)


def test_noise_level_changes_the_output(model, crystal):
    batch = structures_to_batch([crystal])
    low = model.network_output(batch, torch.full((7,), 0.05))
    high = model.network_output(batch, torch.full((7,), 5.0))
    assert (low - high).abs().max() > 0.01 * low.abs().max()  # the sigma path is wired in


def test_host_flag_changes_the_output_of_a_host_conditioned_network_only(model, crystal):
    """The host mask is an input of a host-conditioned network (a different host gives a different
    score) and is ignored by an unconditional one (bit for bit)."""
    batch = structures_to_batch([crystal])
    sigma = torch.full((7,), 0.5)
    host_a = replace(batch, fixed=torch.tensor([False, True, False, True, True, False, True]))
    host_b = replace(batch, fixed=torch.tensor([False, False, False, True, False, True, False]))
    a, b = model.network_output(host_a, sigma), model.network_output(host_b, sigma)
    if model.host_conditioned:
        assert (a - b).abs().max() > 0.01 * a.abs().max()
    else:
        assert torch.equal(a, b)
        assert model.network.host_embedding is None


def test_pair_messages_equal_the_sum_over_every_edge(model):
    """Messages are computed once per atom pair from its images' summed basis; they must equal the
    message of every edge (every image) summed one by one, filter bias included once per image. In a
    2.6 A cell each pair recurs in dozens of images, so a pair counted once or a bias added once fails."""
    cell = Structure(Lattice.from_parameters(2.6, 2.8, 3.0, 85, 95, 100), ["Si", "Li"],
                     [[0, 0, 0], [0.45, 0.55, 0.4]])
    batch = structures_to_batch([cell, cell * (1, 2, 1)])
    network, layer = model.network, model.network.interactions[0]
    generator = torch.Generator().manual_seed(0)
    atoms = len(batch.atomic_numbers)
    s = torch.randn(atoms, layer.features, generator=generator)
    v = torch.randn(atoms, 3, layer.features, generator=generator)
    edges = radius_graph(batch.frac_coords.float(), batch.lattice.float(), batch.batch, network.config.cutoff)
    pairs = PairGeometry.of(edges, network.radial, atoms)
    assert len(edges.source) > 10 * len(pairs.source)
    sum_s, sum_v = layer.gather(s, v, pairs)

    f, distance = layer.features, edges.vectors.norm(dim=1)
    unit = edges.vectors / distance.unsqueeze(1)
    gates = layer.message(layer.norm_message(s))[edges.source] * layer.filter(network.radial(distance))
    unit_v = v / v.pow(2).sum(dim=1).mean(dim=1).sqrt().view(-1, 1, 1)
    per_edge_v = (unit_v[edges.source] * gates[:, f:2 * f].unsqueeze(1)
                  + unit.unsqueeze(2) * gates[:, 2 * f:].unsqueeze(1))
    expected_s = torch.zeros_like(s).index_add_(0, edges.target, gates[:, :f])
    expected_v = torch.zeros_like(v).index_add_(0, edges.target, per_edge_v)
    assert_same(sum_s.detach().numpy(), expected_s.detach().numpy())
    assert_same(sum_v.detach().numpy(), expected_v.detach().numpy())
