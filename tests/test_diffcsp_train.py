"""DiffCSP's CSP objective as `chggen train-diffcsp` computes it, checked against the paper's formulas
worked independently, and a tiny training run that resumes and loads through the unchanged adapter."""

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Composition, Lattice, Structure

from chggen_diffcsp import CSPNetConfig, DiffCSPScoreModel, read_run
from chggen_diffcsp.noise import cosine_beta_tables
from chggen_diffcsp.settings import DiffCSPTrainSettings
from chggen_diffcsp.train import (
    as_batch,
    canonical,
    csp_loss,
    new_network,
    noised,
    train,
    wrapped_normal_minus_score,
)
from chggen_plugins import ChggenError
from chggen_plugins.cli import main
from chggen_plugins.structures.batch import structures_to_batch

TINY = DiffCSPTrainSettings(steps=3, batch_size=4, eval_every=1, val_times=2, hidden_dim=16, num_layers=1,
                            num_freqs=4, time_dim=8, timesteps=50, val_fraction=0.5)


def crystals() -> list[Structure]:
    """Eight small real crystals: rock salts, CsCl types and diamond-like cells of several sizes."""
    made = []
    for a, (x, y) in zip((4.0, 4.2, 5.6, 5.4), (("Li", "F"), ("Na", "Cl"), ("Mg", "O"), ("K", "Br"))):
        made.append(Structure.from_spacegroup("Fm-3m", Lattice.cubic(a), [x, y], [[0, 0, 0], [0.5, 0.5, 0.5]]))
        made.append(Structure(Lattice.cubic(a * 0.7), [x, y], [[0, 0, 0], [0.5, 0.5, 0.5]]))
    return made


def test_cosine_schedule_is_the_papers_formula():
    tables = cosine_beta_tables(1000)
    f = lambda t: math.cos((t / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    by_hand = [1.0]  # abar_t = prod_k (1 - beta_k), beta_k = 1 - f(k) / f(k-1) clipped to 1e-4..0.9999
    for k in range(1, 1001):
        by_hand.append(by_hand[-1] * (1 - min(max(1 - f(k) / f(k - 1), 1e-4), 0.9999)))
    assert 1 - f(1) / f(0) < 1e-4  # the clip matters at the start: without it abar_1 would differ
    for t in (1, 250, 500, 900):
        assert tables["alphas_cumprod"][t].item() == pytest.approx(by_hand[t], rel=1e-5)
    assert tables["alphas_cumprod"][0] == 1 and tables["betas"][0] == 0
    assert tables["betas"][-1].item() == pytest.approx(0.9999)  # the clip at the last step
    t = 300  # DDPM posterior deviation: beta_t (1 - abar_{t-1}) / (1 - abar_t), square-rooted
    abar = tables["alphas_cumprod"].double()
    expected = math.sqrt(tables["betas"][t] * (1 - abar[t - 1]) / (1 - abar[t]))
    assert tables["sigmas"][t].item() == pytest.approx(expected, rel=1e-5)


def test_coordinate_target_is_minus_the_normalised_wrapped_score():
    """At each sigma the target equals -d/dd log p (finite differences of the density summed over
    images, by hand) divided by sqrt(E score^2) (estimated by sampling), and tends to eps at small sigma."""
    network = new_network(DiffCSPTrainSettings(hidden_dim=8, num_layers=1, num_freqs=2, time_dim=4))
    crystal = structures_to_batch([Structure(Lattice.cubic(3.0), ["Li"], [[0.1, 0.2, 0.3]])])
    batch = as_batch([Structure(Lattice.cubic(3.0), ["Li"], [[0.1, 0.2, 0.3]])])
    rng = np.random.default_rng(0)
    for t in (1, 600, 1000):
        sigma = network.sigma_scheduler.sigmas[t].item()
        eps = torch.tensor([[0.7, -1.3, 2.1]])
        out = noised(network, batch, torch.tensor([t]), torch.zeros(1, 3, 3), eps)

        def log_density(d):
            return np.log(sum(np.exp(-(d + k) ** 2 / (2 * sigma ** 2)) for k in range(-10, 11)))
        d, h = sigma * eps.double().numpy()[0], 1e-6 * sigma
        minus_score = -(log_density(d + h) - log_density(d - h)) / (2 * h)
        draws = np.mod(sigma * rng.standard_normal(200_000), 1.0)
        mean_square = np.mean(((log_density(draws + h) - log_density(draws - h)) / (2 * h)) ** 2)
        expected = minus_score / math.sqrt(mean_square)
        assert out.coord_target[0].double().numpy() == pytest.approx(expected, rel=0.02)
        wrapped = np.mod(crystal.frac_coords.numpy()[0] + d, 1.0)
        assert out.frac_coords[0].double().numpy() == pytest.approx(wrapped, abs=1e-6)
    assert out.coord_target[0, 0] == pytest.approx(out.coord_target[0, 1].item())  # d = 0.35 and -0.65: one point mod 1
    small = noised(network, batch, torch.tensor([1]), torch.zeros(1, 3, 3), eps).coord_target
    assert small[0].numpy() == pytest.approx(eps[0].numpy(), rel=0.01)


def test_lattice_is_noised_by_ddpm_and_the_loss_is_the_sum_of_two_mses():
    settings = DiffCSPTrainSettings(hidden_dim=8, num_layers=1, num_freqs=2, time_dim=4, cost_lattice=0.5)
    network = new_network(settings)
    batch = as_batch([canonical(s) for s in crystals()[:3]])
    times = torch.tensor([10, 500, 990])
    generator = torch.Generator().manual_seed(3)
    loss = csp_loss(network, batch, times, generator, settings)
    generator = torch.Generator().manual_seed(3)
    eps_l = torch.randn(batch.lattice.shape, generator=generator)
    eps_x = torch.randn(batch.frac_coords.shape, generator=generator)
    out = noised(network, batch, times, eps_l, eps_x)
    abar = cosine_beta_tables(1000)["alphas_cumprod"][times]
    for i in range(3):
        by_hand = math.sqrt(abar[i]) * batch.lattice[i] + math.sqrt(1 - abar[i]) * eps_l[i]
        assert torch.allclose(out.lattice[i], by_hand, atol=1e-5)
    pred_l, pred_x, _ = network(times, batch.atomic_numbers, out.frac_coords, out.lattice, batch.batch)
    by_hand = 0.5 * ((pred_l - eps_l) ** 2).mean() + ((pred_x - out.coord_target) ** 2).mean()
    assert loss.item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_wrapped_score_survives_tiny_sigma():
    d, sigma = torch.tensor([1e-4, -2e-4]), torch.tensor([1e-3, 1e-3])
    assert torch.allclose(wrapped_normal_minus_score(d, sigma), d / sigma ** 2, rtol=1e-6)


def test_tiny_run_resumes_and_loads_through_the_adapter(tmp_path):
    out = tmp_path / "run"
    train(crystals(), out, TINY, data="tests", progress=False)
    steps = [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3"]
    train(crystals(), out, DiffCSPTrainSettings(steps=5), progress=False)  # resumes with the run's own settings
    steps = [line.split(",")[0] for line in (out / "log.csv").read_text().splitlines()[1:]]
    assert steps == ["1", "2", "3", "4", "5"]
    assert len(list(out.glob("*.ckpt"))) == 1
    run = read_run(out)
    assert run.task == "csp" and run.network.hidden_dim == 16 and run.network.timesteps == 50
    model = DiffCSPScoreModel.load(out)
    assert model.trained and "training steps" in model.provenance
    batch = structures_to_batch(crystals()[:2])
    score = model.score(batch, 10)
    assert score.shape == (sum(map(len, crystals()[:2])), 3) and torch.isfinite(score).all()


def test_command_refuses_a_folder_that_is_not_its_run(tmp_path, capsys):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    data = tmp_path / "data.extxyz"
    status = main(["train-diffcsp", str(data), "--out", str(tmp_path / "mine"), "-q"])
    err = capsys.readouterr().err
    assert status == 2 and "not a run of chggen train-diffcsp" in err and err.strip().count("\n") == 0
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    assert main(["train-diffcsp", str(data), "--out", str(tmp_path / "new"), "--steps", "0", "-q"]) == 2


def test_own_sampler_returns_the_requested_composition(tmp_path):
    from chggen_diffcsp.generate import generate

    out = tmp_path / "run"
    train(crystals(), out, TINY, progress=False)
    made = generate(str(out), Composition("Li2Si4"), 3, seed=5)
    assert len(made) == 3
    for structure in made:
        assert structure.composition == Composition("Li2Si4")
        assert structure.lattice.volume > 0 and np.linalg.det(structure.lattice.matrix) > 0
    again = generate(str(out), Composition("Li2Si4"), 3, seed=5)
    assert all(np.allclose(a.frac_coords, b.frac_coords) and np.allclose(a.lattice.matrix, b.lattice.matrix)
               for a, b in zip(made, again))
    other = generate(str(out), Composition("Li2Si4"), 3, seed=6)
    assert not np.allclose(made[0].frac_coords, other[0].frac_coords)
    with pytest.raises(ChggenError, match="whole atom counts"):
        generate(str(out), Composition("Li0.5Si"), 1, seed=0)


@torch.no_grad()
def test_own_sampler_steps_are_diffcsps_formulas():
    """The sampler's two steps on a two-step schedule, redone by hand from the schedules and the
    network's outputs (corrector, predictor and lattice DDPM step; no noise at t = 1)."""
    from chggen_diffcsp.generate import sample_crystals

    model = DiffCSPScoreModel.untrained(CSPNetConfig(hidden_dim=8, num_layers=1, num_freqs=2, time_dim=4,
                                                     timesteps=2))
    made = sample_crystals(model, [3, 14], 1, seed=2)[0]
    network, process = model.network, model.noise_process
    generator = torch.Generator().manual_seed(2)
    lattice = torch.randn((1, 3, 3), generator=generator)
    frac = torch.rand((2, 3), generator=generator)
    batch, types = torch.zeros(2, dtype=torch.long), torch.tensor([3, 14])
    for t in (2, 1):
        z = (lambda shape: torch.randn(shape, generator=generator)) if t == 2 else torch.zeros
        sigma, before = network.sigma_scheduler.sigmas[t], network.sigma_scheduler.sigmas[t - 1]
        root_norm = network.sigma_scheduler.sigmas_norm[t].sqrt()
        eta = process.step_lr * (sigma / process.sigma_begin) ** 2
        _, out, _ = network(torch.tensor([t]), types, frac, lattice, batch)
        frac = (frac - eta * out * root_norm + (2 * eta).sqrt() * z((2, 3))) % 1.0
        eps, out, _ = network(torch.tensor([t]), types, frac, lattice, batch)
        variance = before ** 2 * (sigma ** 2 - before ** 2) / sigma ** 2
        frac = (frac - (sigma ** 2 - before ** 2) * out * root_norm + variance.sqrt() * z((2, 3))) % 1.0
        alpha, abar = network.beta_scheduler.alphas[t], network.beta_scheduler.alphas_cumprod[t]
        lattice = ((lattice - (1 - alpha) / (1 - abar).sqrt() * eps) / alpha.sqrt()
                   + network.beta_scheduler.sigmas[t] * z((1, 3, 3)))
    sign = 1.0 if torch.linalg.det(lattice[0]) > 0 else -1.0
    assert np.allclose(made.lattice.matrix, sign * lattice[0].double().numpy(), atol=1e-5)
    assert np.allclose(made.frac_coords, (sign * frac.double().numpy()) % 1.0, atol=1e-5)
