"""The VE processes against their defining formulas, statistically, in a skewed cell."""

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice

from chggen_plugins.sampling.noise import CartesianVE, FractionalVE, wrap_unit
from chggen_plugins.structures.batch import InpaintTask, tasks_to_batch

N_COPIES = 4000


@pytest.fixture
def batch(reference):
    return tasks_to_batch([InpaintTask(reference, {"Li": 1}, n_samples=N_COPIES // 7)])


def displacement(process, frac, frac0, batch):
    """Minimum-image displacement in process coordinates (valid while it is well under half a cell):
    Angstrom through pymatgen's own lattice for the Cartesian process, fractional otherwise."""
    diff = frac - frac0
    diff = (diff - torch.round(diff)).numpy()
    if isinstance(process, CartesianVE):
        lattice = Lattice(batch.lattice[0].numpy())
        return torch.from_numpy(lattice.get_cartesian_coords(diff))
    return torch.from_numpy(diff)


@pytest.mark.parametrize("process", [CartesianVE(), FractionalVE()], ids=["cartesian", "fractional"])
def test_marginal_is_isotropic_gaussian_with_ladder_std(process, batch):
    generator = torch.Generator().manual_seed(0)
    level = 60
    sigma = process.sigma(level)
    d = displacement(process, process.marginal(batch.frac_coords, level, batch, generator),
                     batch.frac_coords, batch).numpy()
    covariance = np.cov(d.T)
    assert np.allclose(np.diag(covariance), sigma ** 2, rtol=0.06)
    assert np.abs(covariance - np.diag(np.diag(covariance))).max() < 0.05 * sigma ** 2


@pytest.mark.parametrize("process", [CartesianVE(), FractionalVE()], ids=["cartesian", "fractional"])
def test_renoise_composes_to_the_higher_marginal(process, batch):
    """marginal(s) then renoise(s -> t) must have std sigma_t: catches variance used as std."""
    generator = torch.Generator().manual_seed(1)
    s, t = 40, 70
    noisy = process.marginal(batch.frac_coords, s, batch, generator)
    d = displacement(process, process.renoise(noisy, s, t, batch, generator), batch.frac_coords, batch)
    assert d.std().item() == pytest.approx(process.sigma(t), rel=0.04)


def test_clean_level_returns_the_input_bit_for_bit(batch):
    process = CartesianVE()
    assert process.marginal(batch.frac_coords, -1, batch, torch.Generator()) is batch.frac_coords
    assert process.sigma(-1) == 0.0


def test_predictor_is_the_gaussian_posterior(batch):
    """For data exactly at x0 the score is -(x - x0)/sigma^2; one ancestral step must land at the
    posterior q(x_{l-1} | x_l, x0): mean x0 + (sigma'^2/sigma^2)(x_l - x0), std sigma' gap/sigma."""
    process = CartesianVE()
    generator = torch.Generator().manual_seed(2)
    level = 50
    sigma, sigma_next = process.sigma(level), process.sigma(level - 1)
    noisy = process.marginal(batch.frac_coords, level, batch, generator)
    d = displacement(process, noisy, batch.frac_coords, batch)
    score = -d / sigma ** 2
    stepped = process.predictor_step(noisy, score, level, batch, generator)
    d_next = displacement(process, stepped, batch.frac_coords, batch)
    residual = d_next - (sigma_next ** 2 / sigma ** 2) * d
    expected_std = sigma_next * (sigma ** 2 - sigma_next ** 2) ** 0.5 / sigma
    assert residual.mean().abs().item() < 4 * expected_std / len(d) ** 0.5
    assert residual.std().item() == pytest.approx(expected_std, rel=0.04)


def test_tweedie_final_step_lands_on_the_clean_positions(batch):
    process = FractionalVE()
    generator = torch.Generator().manual_seed(4)
    noisy = process.marginal(batch.frac_coords, 0, batch, generator)
    score = -displacement(process, noisy, batch.frac_coords, batch) / process.sigma(0) ** 2
    final = process.predictor_step(noisy, score, 0, batch, generator)
    assert torch.allclose(displacement(process, final, batch.frac_coords, batch),
                          torch.zeros_like(final), atol=1e-12)


def test_corrector_has_the_langevin_stationary_spread(batch):
    """Langevin steps eps = 2 (snr sigma)^2 with the exact score of N(x0, sigma^2) settle at the
    unadjusted-Langevin variance sigma^2 / (1 - snr^2), whatever spread they start from."""
    process = CartesianVE(snr=0.4)
    generator = torch.Generator().manual_seed(5)
    level = 40
    sigma = process.sigma(level)
    frac = process.marginal(batch.frac_coords, level - 15, batch, generator)  # start too narrow
    for _ in range(25):
        score = -displacement(process, frac, batch.frac_coords, batch) / sigma ** 2
        frac = process.corrector_step(frac, score, level, batch, generator)
    d = displacement(process, frac, batch.frac_coords, batch)
    assert d.std().item() == pytest.approx(sigma / (1 - 0.4 ** 2) ** 0.5, rel=0.03)
    assert d.mean().abs().item() < 0.05 * sigma


def test_wrap_unit_never_returns_one():
    values = torch.tensor([-1e-18, -0.0, 1.0, 2.5, -3.25, 0.999999], dtype=torch.float64)
    wrapped = wrap_unit(values)
    assert ((wrapped >= 0) & (wrapped < 1)).all()
    assert wrapped.tolist()[2:5] == [0.0, 0.5, 0.75]
