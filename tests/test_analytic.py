"""The analytic model's score against brute force: it is the yardstick of the sampler tests."""

import math

import numpy as np
import pytest
import torch
from pymatgen.core import Lattice, Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.models.analytic import AnalyticSiteModel, wrapped_gaussian_score
from chggen_plugins.sampling.noise import CartesianVE
from chggen_plugins.structures.batch import InpaintTask, tasks_to_batch

CELL = torch.tensor(Lattice.from_parameters(4.0, 5.0, 6.5, 75, 100, 110).matrix)


def brute_force_log_density(diff_frac: np.ndarray, cell: np.ndarray, std: float) -> float:
    """log of sum over 21^3 images of exp(-|d + n L|^2 / 2 std^2), in long double."""
    n = np.arange(-10, 11)
    grid = np.stack(np.meshgrid(n, n, n, indexing="ij"), -1).reshape(-1, 3)
    vectors = (diff_frac + grid) @ cell
    exponents = -(vectors ** 2).sum(axis=1) / (2 * std ** 2)
    top = exponents.max()
    return float(top + np.log(np.exp((exponents - top).astype(np.longdouble)).sum()))


def finite_difference_score(diff_frac, cell, std, h=1e-5):
    inverse = np.linalg.inv(cell)
    grad = np.zeros(3)
    for axis in range(3):
        step = np.zeros(3)
        step[axis] = h  # a Cartesian step, converted to fractional
        plus = brute_force_log_density(diff_frac + step @ inverse, cell, std)
        minus = brute_force_log_density(diff_frac - step @ inverse, cell, std)
        grad[axis] = (plus - minus) / (2 * h)
    return grad


@pytest.mark.parametrize("std", [0.05, 0.4, 1.0, 1.6, 2.5, 4.0])  # 21^3 images converge up to ~4 A
def test_score_matches_the_gradient_of_the_image_sum(std):
    rng = np.random.default_rng(0)
    diffs = rng.random((6, 3))
    score = wrapped_gaussian_score(torch.tensor(diffs), CELL.expand(6, 3, 3), std).numpy()
    cell = CELL.numpy()
    for diff, got in zip(diffs, score):
        expected = finite_difference_score(diff, cell, std)
        assert np.allclose(got, expected, rtol=1e-5, atol=1e-7 / std ** 2), (std, got, expected)


def test_both_series_agree_where_they_meet():
    """Images and Fourier harmonics are two forms of one theta function: force each and compare."""
    import chggen_plugins.models.analytic_model as analytic

    diffs = torch.rand(20, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    cells = CELL.expand(20, 3, 3)
    std = 1.3
    original = analytic._TAIL
    try:
        analytic._TAIL = 9.0  # more terms than needed in either form
        mixed = wrapped_gaussian_score(diffs, cells, std)
    finally:
        analytic._TAIL = original
    assert torch.allclose(mixed, wrapped_gaussian_score(diffs, cells, std), rtol=1e-7, atol=1e-9)


def test_sharp_limit_is_the_plain_gaussian_score():
    diff = torch.tensor([[0.01, -0.02, 0.015]], dtype=torch.float64)
    std = 0.05
    cartesian = diff @ CELL
    got = wrapped_gaussian_score(diff, CELL.unsqueeze(0), std)
    assert torch.allclose(got, -cartesian / std ** 2, rtol=1e-9)


def test_atoms_map_to_sites_element_by_element():
    reference = Structure(Lattice.cubic(5), ["Li", "Si", "Li", "Si"],
                          [[0.5, 0.5, 0.5], [0, 0, 0], [0.1, 0.2, 0.3], [0.25, 0.25, 0.25]])
    host = Structure(Lattice.cubic(5), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    model = AnalyticSiteModel(reference, 0.1, CartesianVE())
    batch = tasks_to_batch([InpaintTask(host, {"Li": 2}, n_samples=2)])
    targets = model.targets(batch).numpy()
    expected = [[0, 0, 0], [0.25, 0.25, 0.25], [0.5, 0.5, 0.5], [0.1, 0.2, 0.3]] * 2
    assert np.allclose(targets, expected)
    with pytest.raises(ChggenError, match="more atoms of Z=3"):
        model.targets(tasks_to_batch([InpaintTask(host, {"Li": 3})]))


def test_score_scale_follows_the_noise_level():
    reference = Structure(Lattice.cubic(6), ["Li"], [[0.5, 0.5, 0.5]])
    process = CartesianVE()
    model = AnalyticSiteModel(reference, 0.1, process)
    batch = tasks_to_batch([InpaintTask(Structure(Lattice.cubic(6), [], []), {"Li": 1})])
    batch = batch.with_frac_coords(torch.tensor([[0.52, 0.5, 0.5]], dtype=torch.float64))
    low = model.score(batch, 0)[0, 0].item()
    assert low == pytest.approx(-0.12 / (0.1 ** 2 + process.sigma(0) ** 2), rel=1e-6)
    assert abs(model.score(batch, 199)[0, 0].item()) < 1e-12  # flat at sigma 10 A in a 6 A cell
    assert math.isfinite(model.score(batch, 120)[0, 0].item())
