"""Symmetric inpainting: Wyckoff orbits in the host's own cell, the orbit constraint's maths with an
exact score, symmetric outputs on every backend, subgroups, and one-line errors."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from chggen_plugins import ChggenError, InpaintTask, inpaint, sample_tasks
from chggen_plugins.models.analytic import AnalyticSiteModel
from chggen_plugins.sampling.inpaint import SamplerSettings, sample
from chggen_plugins.sampling.noise import CartesianVE, FractionalVE
from chggen_plugins.structures.batch import tasks_to_batch, tasks_to_orbits
from chggen_plugins.structures.wyckoff import (
    fitting_plans,
    host_group,
    host_operations,
    orbit_distances,
    orbit_fit,
    plan_guests,
    propose_plan,
    subgroups,
    symmetry_error,
)


def diamond_si(primitive: bool = False, a: float = 5.43) -> Structure:
    """Diamond Si; a larger `a` gives the orbits' guests the room InpaintTask asks of a real cell
    (structures.room) where a test needs many of them in the 2-atom primitive cell."""
    conventional = Structure.from_spacegroup("Fd-3m", Lattice.cubic(a), ["Si"], [[0, 0, 0]])
    return conventional.get_primitive_structure() if primitive else conventional


def hexagonal_host() -> Structure:
    """P6/mmm: one atom at 1a of a hexagonal cell (the 120 degree metric is where frac and Cartesian
    projections part)."""
    return Structure(Lattice.hexagonal(6.0, 4.2), ["Si"], [[0, 0, 0]])


def monoclinic_host() -> Structure:
    """P2/m with beta = 108 degrees: one atom at 1a (a cell with room for 7 guests)."""
    return Structure(Lattice.monoclinic(4.95, 5.55, 6.15, 108), ["Si"], [[0, 0, 0]])


HOSTS = {"cubic-primitive": lambda: diamond_si(True), "cubic": diamond_si, "hexagonal": hexagonal_host,
         "simple-cubic": lambda: Structure(Lattice.cubic(5.4), ["Si"], [[0, 0, 0]]),
         "monoclinic": monoclinic_host, "rhombohedral": lambda: Structure(
             Lattice.hexagonal(4.0, 9.0), ["Si"] * 3, [[0, 0, 0], [2 / 3, 1 / 3, 1 / 3], [1 / 3, 2 / 3, 2 / 3]])}


@pytest.mark.parametrize("name", HOSTS)
def test_every_orbit_is_mapped_onto_itself_by_the_hosts_own_operations(name):
    """pyxtal's tables taken into spglib's cell of the host: every Wyckoff orbit at a generic point
    is a set the host's own operations permute (a wrong origin choice or setting breaks this)."""
    host = HOSTS[name]()
    rotations, translations = host_operations(host)
    group = host_group(host)
    assert group.number == SpacegroupAnalyzer(host, symprec=0.01).get_space_group_number()
    rng = np.random.default_rng(0)
    for orbit in group.orbits:
        points = orbit.points(rng.uniform(0, 1, 3))
        for rotation, translation in zip(rotations, translations):
            images = points @ rotation.T + translation
            diff = images[:, None, :] - points[None, :, :]
            diff -= np.round(diff)
            assert np.abs(diff).max(axis=2).min(axis=1).max() < 1e-8, (name, orbit.label)
        multiplicity_in_cell = orbit.multiplicity
        assert len({tuple(np.round(p, 6)) for p in points}) == multiplicity_in_cell


def targets_on(orbits, host, rng):
    """A reference crystal: the host plus one Li orbit per Wyckoff position, at a generic point."""
    reference, reps = host.copy(), []
    for orbit in orbits:
        u = rng.uniform(0.15, 0.35, 3)
        reps.append((len(reference), orbit, orbit.origin + orbit.free.T @ u))
        for point in orbit.points(u):
            reference.append("Li", point)
    return reference, reps


def run_orbits(host, labels, process, width, n_samples, seed=3):
    """Sample n crystals with Li on the named orbits, with the exact score of Gaussians around a
    reference whose Li sit on those orbits; returns (reference, reps, samples [n, atoms, 3])."""
    reference, reps = targets_on(_orbits(host, labels), host, np.random.default_rng(seed))
    task = InpaintTask(host, {"Li": len(reference) - len(host)}, n_samples, symmetric=True,
                       wyckoff={"Li": labels})
    model = AnalyticSiteModel(reference, width, process)
    batch = tasks_to_batch([task])
    constraint, _ = tasks_to_orbits([task], np.random.default_rng(seed))
    result = sample(model, batch, SamplerSettings(jump_length=10, resamples=1),
                    torch.Generator().manual_seed(seed), orbits=constraint)
    return reference, reps, result.frac_coords.numpy().reshape(n_samples, len(reference), 3)


def _orbits(host, labels):
    group = host_group(host)
    return [next(o for o in group.orbits if o.label == label) for label in labels]


def nearest_on_position(position, targets, free):
    """[n, 3] fractional displacement of each `position` from the nearest of `targets` [m, 3] (any
    cell image) that lies on its own Wyckoff line or plane (in the span of `free`). Atoms of one
    species are interchangeable: a representative that settles on another point of the target
    orbit on its own line (the mirror image x -> -x, say) made the same crystal."""
    shifts = np.array(np.meshgrid(*[[-1, 0, 1]] * 3)).reshape(3, -1).T
    diff = position[:, None, :] - targets[None, :, :]
    candidates = ((diff - np.round(diff))[:, :, None, :] + shifts[None, None]).reshape(len(position), -1, 3)
    if np.linalg.matrix_rank(free):
        basis = np.linalg.svd(free)[2][:np.linalg.matrix_rank(free)]
        off = np.linalg.norm(candidates - candidates @ basis.T @ basis, axis=2)
    else:
        off = np.zeros(candidates.shape[:2])
    score = np.round(off, 9) * 1e6 + np.linalg.norm(candidates, axis=2)
    return candidates[np.arange(len(position)), score.argmin(axis=1)]


CASES = [  # host, Wyckoff positions, process, target width in its units
    ("simple-cubic", ["8g", "1b"], CartesianVE, 0.06),         # 8 on (x,x,x), 1 fixed
    ("simple-cubic", ["6f", "1b"], FractionalVE, 0.01),        # 6 on (x,1/2,1/2)
    ("hexagonal", ["12n", "2e"], CartesianVE, 0.06),           # 12 on (x,0,z), 2 on (0,0,z)
    ("hexagonal", ["6j", "4h"], FractionalVE, 0.01),           # 6 on (x,0,0), 4 on (1/3,2/3,z)
    ("monoclinic", ["2m", "4o", "1c"], CartesianVE, 0.06),     # 2 on (x,0,z), 4 general, 1 fixed
    ("monoclinic", ["2m", "4o"], FractionalVE, 0.01),
]


@pytest.mark.parametrize("name,labels,process,width", CASES,
                         ids=[f"{c[0]}-{c[2].__name__}" for c in CASES])
def test_representatives_follow_the_target_in_each_free_direction(name, labels, process, width):
    """1000 crystals: each representative has the target's mean and Tweedie spread along every free
    direction (orthonormal in the process's metric) and nothing across them; fixed positions sit
    exactly on their site; every copy is its operation applied to the representative.

    Averaging the noise over the orbit shrinks the spread of multiplicities > 1; a wrong inverse
    operation or a projection in the wrong metric biases it in the hexagonal and monoclinic cells.
    Positions are chosen whose line or plane passes no image of its own target sideways: where
    one does (the (x,x,x) line of an fcc primitive cell 2.2 A from an image; the (x,2x,0) line of a
    hexagonal cell half-way between two images), the orbit mean of per-atom scores, which know every
    3D image while the representative only moves along its line, has a second maximum there and
    10-20% of representatives settle in it. That is the recipe's approximation (DiffCSP++ shares it),
    measured and named here, not a slip of this sampler, so it is kept out of this test.
    """
    host = HOSTS[name]()
    noise = process(num_levels=60, corrector_steps=1)
    n = 1000
    reference, reps, frac = run_orbits(host, labels, noise, width, n)
    cell = reference.lattice.matrix if process is CartesianVE else np.eye(3)
    expected = width ** 2 / np.hypot(width, noise.sigma(0))
    assert np.array_equal(frac[:, :len(host)], np.broadcast_to(host.frac_coords, (n, len(host), 3)))
    for index, orbit, target in reps:
        d = nearest_on_position(frac[:, index], reference.frac_coords[index:index + orbit.multiplicity],
                                orbit.free) @ cell
        if orbit.dof == 0:
            assert np.abs(d).max() < 1e-12, orbit.label
        else:
            basis = np.linalg.svd(orbit.free @ cell)[2][:orbit.dof]          # rows, orthonormal
            along = d @ basis.T
            assert np.abs(d - along @ basis).max() < 1e-9, orbit.label    # nothing off the position
            assert np.abs(along.mean(axis=0)).max() < 4.5 * expected / np.sqrt(n), orbit.label
            spreads = along.std(axis=0) / expected
            assert np.all(np.abs(spreads - 1) < 0.08), (orbit.label, spreads)
        copies = np.einsum("mij,nj->nmi", orbit.rotations, frac[:, index]) + orbit.translations
        diff = copies - frac[:, index:index + orbit.multiplicity]
        assert np.abs(diff - np.round(diff)).max() < 1e-9, orbit.label


def test_eight_li_in_diamond_si_keep_all_192_operations():
    host = diamond_si()
    rotations, translations = host_operations(host)
    assert len(rotations) == 192
    for sample_ in inpaint(host, {"Li": 8}, _free_li(host), n_samples=3, seed=1, symmetric=True):
        assert sample_.properties["guest_space_group"] == 227
        assert sample_.properties["guest_wyckoff"] == "Li:8b"
        assert symmetry_error(sample_, rotations, translations) < 1e-3
        assert sample_.composition.as_dict() == {"Si": 8, "Li": 8}


class _HostOnlyModel:
    """A smooth repulsive score (Cartesian): guests pushed away from every other atom."""

    def __init__(self, elements):
        self.noise_process = CartesianVE(num_levels=30, corrector_steps=1)
        self.elements = frozenset(elements)

    def score(self, batch, level):
        cart = batch.cart_coords()
        out = torch.zeros_like(cart)
        for crystal in range(batch.num_crystals):
            atoms = batch.batch == crystal
            frac = batch.frac_coords[atoms]
            diff = frac[:, None] - frac[None]
            diff = diff - torch.round(diff)
            vec = diff @ batch.lattice[crystal]
            dist2 = (vec ** 2).sum(-1) + torch.eye(len(frac), dtype=vec.dtype)
            out[atoms] = (vec / dist2.unsqueeze(-1) ** 2).sum(1)
        return out

    def to(self, device):
        return self


def _free_li(host):
    return _HostOnlyModel({3, *host.atomic_numbers})


@pytest.mark.parametrize("sampler,churn", [("heun", 0.3), ("ode", 0.0)])
def test_heun_and_ode_keep_the_orbits(sampler, churn):
    """Every Heun stage passes through the orbit constraint: all 192 operations kept, as with pc."""
    host = diamond_si()
    rotations, translations = host_operations(host)
    for sample_ in inpaint(host, {"Li": 8}, _free_li(host), n_samples=3, seed=1, symmetric=True, sampler=sampler,
                           steps=8, churn=churn):
        assert sample_.properties["guest_space_group"] == 227
        assert symmetry_error(sample_, rotations, translations) < 1e-3


def test_four_li_in_conventional_si_descend_to_f43m_and_keep_it():
    host = diamond_si()
    samples = inpaint(host, {"Li": 4}, _free_li(host), n_samples=4, seed=2, symmetric=True)
    group = plan_guests(host, {"Li": 4}).group
    assert (group.number, group.is_host_group) == (216, False)
    for s in samples:
        assert s.properties["guest_space_group"] == 216
        assert s.properties["guest_wyckoff"] in ("Li:4b", "Li:4d")
        assert symmetry_error(s, group.rotations, group.translations) < 1e-3
        assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == 216


def test_counts_off_the_centring_fit_a_subgroup_that_drops_it():
    """Every orbit of a group that keeps the four F centrings of a conventional fcc cell has a multiple
    of 4 points, so 1 Li in a conventional fcc S cell fits only a subgroup without them: the
    primitive cubic Pm-3m (48 operations), whose 1b is the cell's centre, the octahedral hole."""
    host = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.41), ["S"], [[0, 0, 0]])
    host_rotations, _ = host_operations(host)
    plan = plan_guests(host, {"Li": 1})
    assert (plan.group.number, len(plan.group.rotations), plan.group.is_host_group) == (221, 48, False)
    assert len(host_rotations) == 192
    ((symbol, orbit),) = plan.draw(np.random.default_rng(0))
    assert (symbol, orbit.label) == ("Li", "1b") and np.allclose(orbit.points(), [[.5, .5, .5]])
    for s in inpaint(host, {"Li": 1}, _free_li(host), n_samples=2, seed=0, symmetric=True):
        assert (s.properties["guest_space_group"], s.properties["guest_wyckoff"]) == (221, "Li:1b")
        assert SpacegroupAnalyzer(s, symprec=0.01).get_space_group_number() == 221
    # 2 Li: Pn-3m, whose operations pair some rotations with a former centring (glides, screws), and
    # whose 2a is the pair of tetrahedral holes at 1/4 1/4 1/4 and 3/4 3/4 3/4
    plan = plan_guests(host, {"Li": 2})
    two = plan.group
    pure = [t for r, t in zip(two.rotations, two.translations) if np.allclose(r, np.eye(3))]
    assert (two.number, len(two.rotations), len(pure)) == (224, 48, 1) and np.allclose(pure[0] % 1, 0)
    assert symmetry_error(host, two.rotations, two.translations) < 1e-9
    ((_, orbit),) = plan.draw(np.random.default_rng(0))
    assert orbit.label == "2a" and np.allclose(orbit.points(), [[.25, .25, .25], [.75, .75, .75]])


def test_samples_of_one_host_explore_several_assignments():
    host = diamond_si(primitive=True, a=8.0)
    samples = inpaint(host, {"Li": 12}, _free_li(host), n_samples=12, seed=5, symmetric=True)
    assert len({s.properties["guest_wyckoff"] for s in samples}) >= 3   # 48f, 32e + 16c, 32e + 16d, ...
    again = inpaint(host, {"Li": 12}, _free_li(host), n_samples=12, seed=5, symmetric=True)
    assert [s.properties["guest_wyckoff"] for s in samples] == [s.properties["guest_wyckoff"] for s in again]
    for s, t in zip(samples, again):
        assert np.array_equal(s.frac_coords, t.frac_coords)


def test_symmetric_and_free_tasks_share_one_batch():
    host = diamond_si(primitive=True)
    model = _free_li(host)
    symmetric, free = sample_tasks([InpaintTask(host, {"Li": 2}, 3, symmetric=True),
                                    InpaintTask(host, {"Li": 2}, 3)], model, seed=0)
    group = plan_guests(host, {"Li": 2}).group
    for s in symmetric:
        assert symmetry_error(s, group.rotations, group.translations) < 1e-3
    assert all(symmetry_error(s, group.rotations, group.translations) > 0.05 for s in free)
    assert all("guest_space_group" not in s.properties for s in free)


def test_user_chosen_subgroup_and_its_errors():
    host = diamond_si()
    plan = plan_guests(host, {"Li": 8}, space_group=141)   # I4_1/amd: its 4a is 8 sites in this cell
    assert plan.group.number == 141 and not plan.group.is_host_group
    with pytest.raises(ChggenError, match="space group 194 is not a subgroup"):
        plan_guests(host, {"Li": 8}, space_group=194)
    with pytest.raises(ChggenError, match=r"guest count\(s\) Li 3: no combination of Wyckoff orbits of space group "
                                          r"216 .*orbit sizes on offer: 4, 16, 24, 48, 96\)$"):
        plan_guests(host, {"Li": 3}, space_group=216)
    with pytest.raises(ChggenError, match="only used with symmetric=True"):
        InpaintTask(host, {"Li": 4}, space_group=216)
    with pytest.raises(ChggenError, match="symmetric inpainting needs a host"):
        InpaintTask(Structure(host.lattice, [], []), {"Li": 4}, symmetric=True)
    with pytest.raises(ChggenError, match=r"Wyckoff position\(s\) 9z for Li: not offered"):
        plan_guests(host, {"Li": 8}, wyckoff={"Li": ["9z"]})


def test_fixed_sites_next_to_host_atoms_are_not_offered():
    host = diamond_si()
    labels = {o.label for o in plan_guests(host, {"Li": 8}).orbits}
    assert "8a" not in labels and "8b" in labels   # 8a is where Si sits in origin choice 2


def test_largest_subgroups_come_first():
    orders = [len(g.rotations) for g in subgroups(diamond_si(True))]
    assert orders == sorted(orders, reverse=True) and orders[0] == 48


def _native():
    from chggen_native import NativeScoreModel, NetworkConfig

    return NativeScoreModel.untrained(frozenset({3, 14}), NetworkConfig(features=16, layers=2, cutoff=5.0)).with_levels(20)


def _diffcsp():
    from chggen_diffcsp import CSPNetConfig, DiffCSPScoreModel

    return DiffCSPScoreModel.untrained(CSPNetConfig(hidden_dim=16, num_layers=2, num_freqs=4, time_dim=8,
                                                    timesteps=10))


def _mattergen(tmp_path_factory):
    pytest.importorskip("mattergen")
    from chggen_mattergen.checkpoint import write_untrained_checkpoint
    from chggen_plugins.contract.registry import load_model

    directory = tmp_path_factory.mktemp("mattergen_small")
    write_untrained_checkpoint(directory, hidden_dim=64, num_blocks=2, discrete_steps=10, max_neighbors=12, seed=3)
    return load_model("mattergen", str(directory))


@pytest.mark.parametrize("backend", ["native", "diffcsp", "mattergen"])
def test_every_backend_gives_structures_the_whole_group_maps_onto_themselves(backend, tmp_path_factory):
    """Small random networks of each backend (Cartesian, DiffCSP's and MatterGen's processes): 8 Li
    into diamond Si's conventional cell keep all 192 operations of Fd-3m (8b), and 8 Li on the free
    line 32e of the primitive cell keep its 48; host exact, composition exact."""
    model = {"native": _native, "diffcsp": _diffcsp}[backend]() if backend != "mattergen" else \
        _mattergen(tmp_path_factory)
    for host, wyckoff, operations in ((diamond_si(), None, 192), (diamond_si(True, a=7.5), {"Li": ["32e"]}, 48)):
        rotations, translations = host_operations(host)
        assert len(rotations) == operations
        task = InpaintTask(host, {"Li": 8}, 2, symmetric=True, wyckoff=wyckoff)
        samples = sample_tasks([task], model, seed=4, settings=SamplerSettings(jump_length=3, resamples=2))[0]
        for s in samples:
            assert np.array_equal(s.frac_coords[:len(host)], host.frac_coords)
            assert s.composition.as_dict() == {"Si": len(host), "Li": 8}
            assert symmetry_error(s, rotations, translations) < 1e-3, backend
        if wyckoff:  # the free parameter was really sampled: the two samples differ
            assert np.abs(samples[0].frac_coords - samples[1].frac_coords).max() > 1e-3


@pytest.mark.parametrize("process,expected", [(FractionalVE, 0.0), (CartesianVE, -0.005)],
                         ids=["fractional", "cartesian"])
def test_moves_are_projected_orthogonally_in_the_metric_of_the_process(process, expected):
    """The representative of 6j (x,0,0) in a hexagonal cell, moved by 0.01 along b: orthogonal to the
    line in fractional coordinates (no move), but not in Cartesian ones, where b has -a/2 along a
    (a move of -0.005 in x). The copies follow their representative."""
    host = hexagonal_host()
    task = InpaintTask(host, {"Li": 6}, 1, symmetric=True, wyckoff={"Li": ["6j"]})
    batch = tasks_to_batch([task])
    constraint, _ = tasks_to_orbits([task], np.random.default_rng(0))
    bound = constraint.bind(batch, process(num_levels=10))
    before = bound.prior(torch.full_like(batch.frac_coords, 0.3))
    rep = len(host)
    assert np.allclose(before[rep].numpy(), [0.3, 0.0, 0.0])
    after = before.clone()
    after[rep, 1] += 0.01
    moved = bound.follow(before, after)
    assert np.allclose((moved[rep] - before[rep]).numpy(), [expected, 0, 0], atol=1e-12)
    orbit = task.plan.orbits[task.plan.combinations["Li"][0][0]]
    copies = orbit.points(np.array([0.3 + expected, 0, 0]))  # free row (1, 0, 0): u is x
    diff = moved[rep:rep + 6].numpy() - copies
    assert np.abs(diff - np.round(diff)).max() < 1e-12


def test_fixed_orbits_closer_than_1_a_never_share_an_assignment():
    """In a short hexagonal cell 3f (1/2,0,0) and 3g (1/2,0,1/2) lie 0.9 A apart: together they would
    give guests that meet (set aside before relaxation). Both stay on offer, never in one draw."""
    host = Structure(Lattice.hexagonal(3.0, 1.8), ["Si"], [[0, 0, 0]])
    plan = plan_guests(host, {"Li": 6})
    labels = {i: orbit.label for i, orbit in enumerate(plan.orbits)}
    offered = {tuple(sorted(labels[i] for i in c)) for c in plan.combinations["Li"]}
    assert ("3f", "3g") in offered  # the combination exists: only the clash rule keeps it out
    assert len(plan.combinations["Li"]) < 30  # 300 uniform draws would meet it without the rule
    rng = np.random.default_rng(0)
    drawn = [plan.draw(rng) for _ in range(300)]
    assert not any({"3f", "3g"} <= {orbit.label for _, orbit in a} for a in drawn)
    for assignment in drawn:
        fixed = [orbit.points() for _, orbit in assignment if orbit.dof == 0]
        for a in range(len(fixed)):
            for b in range(a + 1, len(fixed)):
                assert host.lattice.get_all_distances(fixed[a], fixed[b]).min() >= 1.0


class _Gathering(_HostOnlyModel):
    """Guests drawn to the nearest image of one point (the cell centre) by a Gaussian score: the
    copies of a free orbit whose line runs through it gather there and meet."""

    def score(self, batch, level):
        sigma = float(self.noise_process.sigma(level))
        diff = batch.frac_coords - 0.5
        diff = diff - torch.round(diff)
        vec = torch.einsum("ni,nij->nj", diff, batch.lattice[batch.batch])
        out = -vec / (sigma ** 2 + 0.3 ** 2)
        return torch.where(batch.fixed.unsqueeze(-1), torch.zeros_like(out), out)


def test_symmetric_samples_whose_orbit_copies_met_are_drawn_again():
    """Guests on Wyckoff orbits of primitive diamond Si: where the model gathers a free orbit's copies,
    they meet; such samples (pairs under 1 A) are sampled again with a new assignment, counted per
    sample, and the others are left as they were."""
    from chggen_plugins import api

    host = diamond_si(primitive=True, a=8.0)
    tasks = [InpaintTask(host, {"Li": 8}, 12, symmetric=True)]
    model = _Gathering({3, 14})
    first = api._sample_batch(tasks, model, 5, SamplerSettings(), "cpu", False, None)[0]
    met = [i for i, s in enumerate(first) if s.properties["close_pairs"]]
    assert 0 < len(met) < len(first)  # the case needs samples whose copies met, and some that did not
    samples = sample_tasks(tasks, model, seed=5)[0]
    for i, structure in enumerate(samples):
        if i in met:
            assert structure.properties["orbit_redraws"] >= 1
        else:  # untouched samples are the first run's, bit for bit
            assert structure.properties["orbit_redraws"] == 0
            assert np.array_equal(structure.frac_coords, first[i].frac_coords)
    assert sum(s.properties["close_pairs"] > 0 for s in samples) < len(met)  # new assignments helped
    free = sample_tasks([InpaintTask(host, {"Li": 8}, 2)], model, seed=5)[0]
    assert "orbit_redraws" not in free[0].properties  # free inpainting is not redrawn


def test_model_proposed_orbits_find_zincblende_where_the_uniform_draw_finds_rock_salt():
    """Stripped of Zn, zincblende ZnS leaves an fcc S sublattice (Fm-3m). The uniform draw keeps the
    host's group, whose only 4-fold orbit for 4 Zn is octahedral 4b: rock salt. A model that puts Zn
    in tetrahedral sites (here the exact score of zincblende) is asked instead with orbits="model":
    every sample is F-43m with Zn on one tetrahedral orbit, the answer the model holds."""
    zincblende = Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["S", "Zn"], [[0, 0, 0], [.25, .25, .25]])
    host = zincblende.copy()
    host.remove_species(["Zn"])
    model = AnalyticSiteModel(zincblende, 0.05, CartesianVE(num_levels=30, corrector_steps=1))
    uniform = sample_tasks([InpaintTask(host, {"Zn": 4}, 3, symmetric=True)], model, seed=0)[0]
    assert {s.properties["guest_wyckoff"] for s in uniform} == {"Zn:4b"}
    assert {s.properties["guest_space_group"] for s in uniform} == {225}
    proposed = sample_tasks([InpaintTask(host, {"Zn": 4}, 3, symmetric=True, orbits="model")], model, seed=0)[0]
    assert len(proposed) == 3
    for structure in proposed:
        assert structure.properties["guest_space_group"] == 216
        assert structure.properties["guest_wyckoff"] in ("Zn:4c", "Zn:4d")
        assert structure.properties["orbit_proposal_distance"] < 0.5
        assert SpacegroupAnalyzer(structure, symprec=0.1).get_space_group_number() == 216
        assert np.array_equal(structure.frac_coords[:4], host.frac_coords)
    with pytest.raises(ChggenError, match=r'orbits="model" chooses the group and orbits of a symmetric task'):
        InpaintTask(host, {"Zn": 4}, 1, symmetric=True, space_group=216, orbits="model")


def test_model_proposed_orbits_find_wurtzite_in_its_hcp_sulfur_sublattice():
    """AFLOW's wurtzite prototype (AB_hP4_186_b_b) stripped of Zn leaves hcp S (P6_3/mmc). Both Zn lie
    on the lines of P-3m1's 2d, (1/3, 2/3, z) and (2/3, 1/3, -z), but at no single z: a proposal
    that let each guest slide along its own copy chose P-3m1 (a group listed before P6_3mc) and the
    Zn came out where wurtzite has none. Fitted at one parameter, the proposal is P6_3mc's 2b, and
    the samples, refined from the fitted proposal, are wurtzite."""
    prototype = next(entry["snl"].structure for entry in AFLOW_PROTOTYPE_LIBRARY
                     if entry["tags"]["aflow"] == "AB_hP4_186_b_b")
    wurtzite = SpacegroupAnalyzer(prototype, symprec=0.01).get_refined_structure()
    host = wurtzite.copy()
    host.remove_species(["Zn"])
    assert SpacegroupAnalyzer(host, symprec=0.01).get_space_group_number() == 194
    zinc = wurtzite.frac_coords[[i for i, site in enumerate(wurtzite) if site.specie.symbol == "Zn"]]
    plans = fitting_plans(host, {"Zn": 2})
    p3m1 = next(plan for plan in plans if plan.group.number == 164)
    line = next(orbit for orbit in p3m1.orbits if orbit.label == "2d")
    assert orbit_distances(line, host.lattice, zinc).max() < 1e-9   # each Zn on a line of 2d ...
    assert orbit_fit(line, host.lattice, zinc)[0].min() > 0.7        # ... but not both at one z
    plan, distance, placement = propose_plan(plans, host.lattice, {"Zn": zinc})
    assert plan.group.number == 186 and distance < 1e-9
    assert host.lattice.get_all_distances(placement, zinc).min(axis=0).max() < 1e-6  # the fit is wurtzite's Zn
    # the exact model's k-th Zn targets the reference's k-th Zn: list them in the orbit's copy order
    reference = host.copy()
    for point in placement:
        reference.append("Zn", point)
    model = AnalyticSiteModel(reference, 0.05, CartesianVE(num_levels=30, corrector_steps=1))
    proposed = sample_tasks([InpaintTask(host, {"Zn": 2}, 3, symmetric=True, orbits="model")], model, seed=0)[0]
    assert {(s.properties["guest_space_group"], s.properties["guest_wyckoff"]) for s in proposed} == {(186, "Zn:2b")}
    assert all(s.properties["close_pairs"] == 0 and s.properties["orbit_proposal_distance"] < 0.5 for s in proposed)
    for structure in proposed:
        zinc_sites = [site.frac_coords for site in structure if site.specie.symbol == "Zn"]
        assert host.lattice.get_all_distances(zinc_sites, zinc).min(axis=0).max() < 0.2   # on wurtzite's Zn sites


def test_a_placement_on_orbits_is_refined_not_redrawn():
    """sample() with orbits and a start level starts from the given placement (on its orbits) noised
    to that level: from level 0 the guests stay where they were put, though the model pulls them
    elsewhere (a sampler that ignored the start would end at the model's sites)."""
    host = Structure(Lattice.cubic(6.0), ["Si"], [[0, 0, 0]])
    plan = plan_guests(host, {"Li": 6}, wyckoff={"Li": ["6e"]})
    line = plan.orbits[plan.combinations["Li"][0][0]]
    placed, target = line.points(np.array([0.2, 0, 0])), line.points(np.array([0.35, 0, 0]))
    reference = host.copy()
    for point in target:
        reference.append("Li", point)
    model = AnalyticSiteModel(reference, 0.05, CartesianVE(num_levels=30, corrector_steps=1))
    task = InpaintTask(host, {"Li": 6}, 1, symmetric=True, wyckoff={"Li": ["6e"]})
    task = replace(task, orbits="model", wyckoff=None, proposed=plan, proposed_at=placed)
    batch = tasks_to_batch([task])
    orbits, _ = tasks_to_orbits([task], np.random.default_rng(0))
    generator = torch.Generator().manual_seed(0)
    out = sample(model, batch, SamplerSettings(), generator, orbits=orbits, start_level=0).frac_coords[1:].numpy()
    assert host.lattice.get_all_distances(out, placed).diagonal().max() < 0.1
    generator = torch.Generator().manual_seed(0)
    redrawn = sample(model, batch, SamplerSettings(), generator, orbits=orbits).frac_coords[1:].numpy()
    assert host.lattice.get_all_distances(redrawn, target).diagonal().max() < 0.2


def test_an_orbit_fit_shares_one_parameter_and_matches_points_to_copies():
    host = Structure(Lattice.cubic(6.0), ["Si"], [[0, 0, 0]])
    line = next(o for o in host_group(host).orbits if o.label == "6e")  # (x, 0, 0) and its 5 copies
    on = line.points(np.array([0.2, 0.0, 0.0]))[::-1]                  # in another order
    assert np.allclose(orbit_fit(line, host.lattice, on)[0], 0.0, atol=1e-9)
    moved = on.copy()
    moved[0, np.argmax(np.abs(on[0] - np.round(on[0])))] += 0.05         # one copy 0.3 A along its line
    fitted, representative = orbit_fit(line, host.lattice, moved)
    assert orbit_distances(line, host.lattice, moved).max() < 1e-9      # alone, it is still on its line
    # one x for all six, fitted by least squares: the moved copy 0.25 A off, the other five 0.05 A
    assert np.allclose(sorted(fitted), [0.05] * 5 + [0.25], atol=1e-6)
    # the moved copy was (0, 0, -0.2), now -0.15: the shared |x| drops by a sixth of 0.05
    assert np.isclose(np.abs(representative).max(), 0.2 - 0.05 / 6) and np.count_nonzero(np.round(representative, 9)) == 1


def test_orbit_distances_are_zero_on_the_orbit_and_the_offset_off_it():
    host = Structure(Lattice.cubic(6.0), ["Si"], [[0, 0, 0]])
    line = next(o for o in host_group(host).orbits if o.label == "6e")  # (x, 0, 0)
    on = line.points(np.array([0.2, 0.0, 0.0]))
    assert np.allclose(orbit_distances(line, host.lattice, on), 0.0, atol=1e-9)
    off = on[:1] + np.array([[0.0, 0.05, 0.0]])  # 0.3 A across the line
    assert orbit_distances(line, host.lattice, off)[0] == pytest.approx(0.3, abs=1e-9)
