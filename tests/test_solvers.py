"""The few-step solvers (heun: EDM churn + Heun; ode: the probability-flow ODE with Heun), against
hand computations, the host contract, an exact score, call counts, orbits and the CLI."""

import math

import numpy as np
import pytest
import torch
from ase.io import read
from pymatgen.core import Lattice, Structure

from chggen_plugins import ChggenError, InpaintTask, inpaint, sample_tasks
from chggen_plugins.cli import main
from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.models.analytic import AnalyticSiteModel
from chggen_plugins.sampling.inpaint import SamplerSettings, sample, score_calls
from chggen_plugins.sampling.noise import CartesianVE, FractionalVE
from chggen_plugins.sampling.schedule import solver_schedule, sub_ladder
from chggen_plugins.structures.batch import tasks_to_batch

GUEST_SITES = [1, 4]  # the Li sites of the `reference` fixture


class GaussianSite:
    """One free atom, score of a Gaussian of std `width` (A) around `site` smoothed by the VE noise:
    score(x, sigma) = -(x - site) / (width^2 + sigma^2), Cartesian, minimum image. Its probability-flow
    ODE is solved by x - site = d * sqrt(width^2 + sigma^2): every distance shrinks by a known factor."""

    def __init__(self, site: np.ndarray, width: float, process: CartesianVE) -> None:
        self.site = torch.tensor(site, dtype=torch.float64)
        self.width, self.noise_process, self.elements = width, process, frozenset({3})

    def offset(self, batch: CrystalBatch) -> torch.Tensor:
        diff = batch.frac_coords - self.site
        return torch.einsum("ni,nij->nj", diff - torch.round(diff), batch.atom_lattice())

    def score(self, batch: CrystalBatch, level: int) -> torch.Tensor:
        return -self.offset(batch) / (self.width ** 2 + self.noise_process.sigma(level) ** 2)

    def to(self, device):
        return self


class Counting:
    """Wraps a model; records the level and positions of every score call."""

    def __init__(self, inner, host_conditioned: bool = False) -> None:
        self.inner, self.noise_process, self.elements = inner, inner.noise_process, inner.elements
        self.host_conditioned = host_conditioned
        self.calls: list[tuple[int, torch.Tensor]] = []

    def score(self, batch, level):
        self.calls.append((level, batch.frac_coords.clone()))
        return self.inner.score(batch, level)

    def to(self, device):
        return self


def one_atom_batch(start: list[float]) -> CrystalBatch:
    return CrystalBatch(torch.tensor([start], dtype=torch.float64), torch.eye(3, dtype=torch.float64)[None] * 10.0,
                        torch.tensor([3]), torch.tensor([0]), torch.tensor([False]))


def test_a_heun_step_is_the_hand_computed_one_and_the_last_step_is_tweedie():
    """Two levels visited (top, 0) then clean: one Heun step and one Euler step, from a known start.

    By hand, with s_a, s_b the sigmas and d the offset from the site: slope(d, s) = -s d / (w^2 + s^2),
    trial = d + (s_a - s_b) slope(d, s_a), Heun = d + (s_a - s_b) (slope(d, s_a) + slope(trial, s_b)) / 2,
    then Tweedie d (1 - s_0^2 / (w^2 + s_0^2)). A plain Euler step, sigma_b in place of sigma_a, or the
    trial point kept as the result is off by far more than the tolerance (checked).
    """
    process = CartesianVE(sigma_max=2.0, sigma_min=0.05, num_levels=20)
    width, site = 0.3, np.array([0.5, 0.5, 0.5])
    model = GaussianSite(site, width, process)
    batch = one_atom_batch([0.0, 0.0, 0.0])
    seed = 3
    result = sample(model, batch, SamplerSettings(solver="ode", steps=2, resamples=1),
                    torch.Generator().manual_seed(seed), trajectory=True)
    start = process.prior(batch, torch.Generator().manual_seed(seed))  # the run's first draw
    d = ((start.numpy()[0] - site + 0.5) % 1.0 - 0.5) * 10.0
    s_a, s_b = process.sigma(19), process.sigma(0)

    def slope(x, s):
        return -s * x / (width ** 2 + s ** 2)

    trial = d + (s_a - s_b) * slope(d, s_a)
    heun = d + (s_a - s_b) * (slope(d, s_a) + slope(trial, s_b)) / 2
    tweedie = heun * (1 - s_b ** 2 / (width ** 2 + s_b ** 2))
    after = [((frac.numpy()[0] - site + 0.5) % 1.0 - 0.5) * 10.0 for frac in result.trajectory]
    assert len(after) == 2
    np.testing.assert_allclose(after[0], heun, atol=1e-9)
    np.testing.assert_allclose(after[1], tweedie, atol=1e-9)


def test_more_ode_steps_converge_to_the_exact_solution():
    """The ODE solution of the Gaussian score is known; Heun's error falls about 4x per halved step."""
    process = CartesianVE(sigma_max=2.0, sigma_min=0.05, num_levels=129)
    width, site = 0.3, np.array([0.5, 0.5, 0.5])
    model = GaussianSite(site, width, process)
    batch = one_atom_batch([0.0, 0.0, 0.0])
    start = process.prior(batch, torch.Generator().manual_seed(0))
    d = ((start.numpy()[0] - site + 0.5) % 1.0 - 0.5) * 10.0
    exact = d * math.sqrt((width ** 2 + process.sigma(0) ** 2) / (width ** 2 + process.sigma(128) ** 2))
    errors = []
    for steps in (5, 9, 17, 33):
        path = sample(model, batch, SamplerSettings(solver="ode", steps=steps, resamples=1),
                      torch.Generator().manual_seed(0),
                      trajectory=True).trajectory
        errors.append(np.abs(((path[-2].numpy()[0] - site + 0.5) % 1.0 - 0.5) * 10.0 - exact).max())
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(ratios > 3.0), (errors, ratios)


@pytest.mark.parametrize("conditioned", [False, True], ids=["unconditional", "host-conditioned"])
@pytest.mark.parametrize("solver,churn", [("ode", 0.0), ("heun", 0.3)])
def test_host_atoms_end_exactly_at_their_inputs(reference, host, conditioned, solver, churn):
    """A host-conditioned model sees the exact host in every call; an unconditional one a noised host
    (drawn anew at each level); both end bit for bit at the input."""
    model = Counting(AnalyticSiteModel(reference, 0.2, CartesianVE(num_levels=40, corrector_steps=2)), conditioned)
    tasks = [InpaintTask(host, {"Li": 2}, n_samples=3)]
    results = sample_tasks(tasks, model, seed=1, settings=SamplerSettings(solver=solver, steps=10, churn=churn))
    batch = tasks_to_batch(tasks)
    fixed = batch.fixed
    for level, frac in model.calls:
        same = torch.equal(frac[fixed], batch.frac_coords[fixed])
        assert same == conditioned, level
    for structure in results[0]:
        assert np.array_equal(structure.frac_coords[:4], host.frac_coords)
        assert structure.lattice == host.lattice


@pytest.mark.parametrize("process", [CartesianVE, FractionalVE])
def test_the_ode_with_an_exact_score_lands_guests_on_their_sites_in_few_steps(reference, host, process):
    """8 levels, 15 score calls: every guest within a few widths of its site (pc at 15 calls does not)."""
    noise = process(num_levels=100, corrector_steps=2)
    width = 0.05 if process is CartesianVE else 0.01
    model = AnalyticSiteModel(reference, width, noise)
    settings = SamplerSettings(solver="ode", steps=8)
    assert score_calls(model, settings) == 15
    samples = inpaint(host, {"Li": 2}, model, n_samples=20, seed=2, sampler="ode", steps=8)
    frac = np.array([s.frac_coords[4:] for s in samples])
    diff = frac - reference.frac_coords[GUEST_SITES]
    cart = (diff - np.round(diff)) @ reference.lattice.matrix
    assert np.linalg.norm(cart, axis=-1).max() < 0.2


def adapter_processes():
    from chggen_diffcsp.noise import DiffCSPProcess, wrapped_normal_tables
    from chggen_mattergen.noise import MatterGenPositionVE

    sigmas, norms = wrapped_normal_tables(100)
    return [DiffCSPProcess(sigmas, norms, 0.005, 1e-5), MatterGenPositionVE(num_levels=100)]


@pytest.mark.parametrize("index", [0, 1], ids=["diffcsp", "mattergen"])
def test_the_adapters_processes_take_the_few_step_solvers(reference, host, index):
    """DiffCSP's table-driven process and MatterGen's stretched one have sigma and displace: an exact
    score in their coordinates lands the guests in 10 ODE levels and in 10 heun levels with churn."""
    process = adapter_processes()[index]
    model = AnalyticSiteModel(reference, 0.01, process)
    for sampler, churn in (("ode", 0.0), ("heun", 0.3)):
        samples = inpaint(host, {"Li": 2}, model, n_samples=10, seed=0, sampler=sampler, steps=10, churn=churn)
        diff = np.array([s.frac_coords[4:] for s in samples]) - reference.frac_coords[GUEST_SITES]
        cart = (diff - np.round(diff)) @ reference.lattice.matrix
        assert np.linalg.norm(cart, axis=-1).max() < 0.3, sampler


@pytest.mark.parametrize("settings", [SamplerSettings(), SamplerSettings(resamples=3, jump_length=4),
                                      SamplerSettings(solver="ode", steps=7),
                                      SamplerSettings(solver="heun", steps=7, churn=0.5),
                                      SamplerSettings(solver="heun", churn=0.2, resamples=2, jump_length=3)],
                         ids=["pc", "pc-repaint", "ode", "heun-churn", "heun-repaint"])
def test_score_calls_count_what_the_sampler_calls(reference, host, settings):
    """pc: 1 + correctors per level; heun/ode: 2 per step and 1 for the last; churn and jumps: none."""
    model = Counting(AnalyticSiteModel(reference, 0.2, CartesianVE(num_levels=25, corrector_steps=2)))
    sample_tasks([InpaintTask(host, {"Li": 2}, n_samples=1)], model, seed=0, settings=settings)
    assert len(model.calls) == score_calls(model, settings)
    if settings.solver != "pc" and settings.resamples is None:
        assert len(model.calls) == 2 * settings.steps - 1


def test_sub_ladder_and_churn_schedule():
    assert sub_ladder(99, 4) == [99, 66, 33, 0]
    assert sub_ladder(99, None) == list(range(99, -1, -1)) == sub_ladder(99, 500)
    assert sub_ladder(0, 2) == [0]
    with pytest.raises(ChggenError, match="integer >= 2"):
        sub_ladder(99, 1)
    sigmas = [0.1 * 1.1 ** level for level in range(20)]  # a geometric ladder, 10% per level
    assert solver_schedule(sigmas, 19, 3, 10, 1) == [(19, 10), (10, 0), (0, -1)]
    # churn 0.25: up 2 levels (1.21 <= 1.25 < 1.331) before each move; the top has nowhere to go
    assert solver_schedule(sigmas, 19, 3, 10, 1, churn=0.25) == [(19, 10), (10, 12), (12, 0), (0, 2), (2, -1)]


def test_churn_re_noises_a_host_conditioned_models_host_back_to_the_truth(reference, host):
    """The churn's re-noise is a RePaint jump: the host goes back to its true positions after it."""
    model = Counting(AnalyticSiteModel(reference, 0.2, CartesianVE(num_levels=30)), host_conditioned=True)
    tasks = [InpaintTask(host, {"Li": 2}, n_samples=2)]
    sample_tasks(tasks, model, seed=0, settings=SamplerSettings(solver="heun", steps=6, churn=0.5))
    batch = tasks_to_batch(tasks)
    levels = [level for level, _ in model.calls]
    assert sorted(set(levels)) != sorted(set(sub_ladder(29, 6)))  # the churn moved the starts of moves
    assert all(torch.equal(frac[batch.fixed], batch.frac_coords[batch.fixed]) for _, frac in model.calls)


def test_a_partial_regeneration_starts_the_sub_ladder_at_its_level(reference, host):
    model = Counting(AnalyticSiteModel(reference, 0.2, CartesianVE(num_levels=50)))
    start = reference.copy()
    sigma = model.noise_process.sigma(20)
    inpaint(host, {"Li": 2}, model, seed=0, sampler="ode", steps=5, start=start, start_sigma=sigma)
    assert [level for level, _ in model.calls][::2][:4] == sub_ladder(20, 5)[:4]
    assert len(model.calls) == 2 * 5 - 1


class Bare:
    """A noise process with only the required methods (no sigma, no displace)."""

    def __init__(self, inner: CartesianVE) -> None:
        self.inner, self.num_levels, self.corrector_steps = inner, inner.num_levels, inner.corrector_steps

    def __getattr__(self, name):
        if name in ("sigma", "displace"):
            raise AttributeError(name)
        return getattr(self.inner, name)


def test_a_process_without_sigma_and_displace_is_refused_for_heun_in_one_line(reference, host):
    model = Counting(AnalyticSiteModel(reference, 0.2, CartesianVE(num_levels=10)))  # scores with its own process
    model.noise_process = Bare(model.noise_process)
    with pytest.raises(ChggenError, match="solver 'heun' needs the noise process's optional sigma and displace, "
                                          "which Bare does not have") as error:
        inpaint(host, {"Li": 2}, model, seed=0, sampler="heun", steps=4, jump_length=3)
    assert "\n" not in str(error.value)
    assert len(inpaint(host, {"Li": 2}, model, seed=0, jump_length=3)) == 1  # pc needs neither


@pytest.mark.parametrize("kwargs,message", [
    (dict(solver="euler"), "not one of pc, heun, ode"),
    (dict(steps=10), "set its count with --levels"),
    (dict(solver="ode", churn=0.1), "churn is for the heun sampler"),
    (dict(solver="heun", steps=1), "integer >= 2"),
    (dict(solver="heun", churn=-0.1), "churn must be a number >= 0"),
    (dict(solver="heun", churn=float("nan")), "churn must be a number >= 0")])
def test_bad_settings_are_one_line(kwargs, message):
    with pytest.raises(ChggenError, match=message):
        SamplerSettings(**kwargs)


def test_run_label_keeps_pc_and_names_the_others():
    assert SamplerSettings(resamples=3).label() == "j10 r3"
    assert SamplerSettings(resamples=1, solver="heun", steps=25, churn=0.3).label() == "j10 r1 heun s25 c0.3"
    assert SamplerSettings(resamples=1, solver="ode").label() == "j10 r1 ode sall c0"


def cli(files, *extra):
    return ["inpaint", str(files / "host.cif"), "--guest", "Li:2", "--model", "analytic", "--model-source",
            str(files / "full.cif"), "--samples", "2", "--seed", "4", "--jump-length", "5", "-q",
            "--out", str(files / "out.extxyz"), *extra]


def test_cli_heun_matches_the_api(files, reference, host):
    from chggen_plugins import load_model

    assert main(cli(files, "--sampler", "heun", "--steps", "6", "--churn", "0.3")) == 0
    model = load_model("analytic", str(files / "full.cif"))
    samples = inpaint(host, {"Li": 2}, model, n_samples=2, seed=4, jump_length=5, sampler="heun", steps=6, churn=0.3)
    for frame, structure in zip(read(files / "out.extxyz", index=":"), samples):
        assert np.allclose(frame.get_scaled_positions(wrap=False), structure.frac_coords)


@pytest.mark.parametrize("extra,message", [(["--steps", "5"], "steps are for the heun and ode samplers"),
                                           (["--sampler", "ode", "--churn", "0.2"], "churn is for the heun")])
def test_cli_refuses_options_of_another_sampler_in_one_line(files, capsys, extra, message):
    assert main(cli(files, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


@pytest.mark.parametrize("extra,option", [(["--sampler", "euler"], "--sampler"), (["--steps", "1"], "--steps"),
                                          (["--steps", "x"], "--steps"), (["--churn", "-0.5"], "--churn"),
                                          (["--churn", "inf"], "--churn")])
def test_cli_bad_values_are_usage_errors(files, capsys, extra, option):
    with pytest.raises(SystemExit) as stop:
        main(cli(files, "--sampler", "heun", *extra))
    assert stop.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in last and "Traceback" not in last


def test_an_empty_cell_generates_with_the_ode_too():
    """No host at all (unconditional generation) runs the same loop."""
    lattice = Lattice.cubic(6.0)
    reference = Structure(lattice, ["Li", "Li"], [[0.1, 0.2, 0.3], [0.6, 0.7, 0.8]])
    from chggen_plugins import generate

    model = AnalyticSiteModel(reference, 0.05, CartesianVE(num_levels=60))
    made = generate(lattice, {"Li": 2}, model, n_samples=4, seed=0, sampler="ode", steps=10)
    for structure in made:
        diff = structure.frac_coords - reference.frac_coords
        assert np.abs((diff - np.round(diff)) @ lattice.matrix).max() < 0.2
