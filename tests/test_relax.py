"""CHGNet relaxation with the real model: small cells, few steps."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer, RelaxResult, site_rmsd
from chggen_plugins.structures.io import closest_pair


@pytest.fixture(scope="module")
def relaxer() -> Relaxer:
    return Relaxer(max_steps=100)


def diamond_si() -> Structure:
    """Conventional diamond Si with a slightly too large lattice constant."""
    return Structure(Lattice.cubic(5.47), ["Si"] * 8,
                     [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
                      [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]])


def test_rattled_si_relaxes_down_with_small_rmsd(relaxer: Relaxer) -> None:
    start = diamond_si()
    rng = np.random.default_rng(0)
    for i in range(len(start)):
        start.translate_sites([i], rng.normal(0.0, 0.05, 3), frac_coords=False)
    result = relaxer.relax(start)
    assert result.ok and result.error is None and result.converged
    assert 0 < result.steps <= 100
    assert result.final_energy < result.initial_energy
    assert result.delta_e == pytest.approx(result.final_energy - result.initial_energy)
    assert -5.5 < result.final_energy < -5.0  # CHGNet 0.3.0 diamond Si is about -5.31 eV/atom
    assert 0.01 < result.rmsd < 0.2
    assert [site.specie for site in result.structure] == [site.specie for site in start]


def test_close_pair_is_set_aside_without_relaxing(relaxer: Relaxer) -> None:
    start = Structure(Lattice.cubic(4.0), ["Li", "Si"], [[0, 0, 0], [0.125, 0, 0]])  # 0.5 A apart
    result = relaxer.relax(start)
    assert result.structure is None and not result.ok and result.steps == 0
    assert result.error.startswith("set aside") and "0.50 A" in result.error


def test_failure_is_recorded_and_the_batch_goes_on(relaxer: Relaxer) -> None:
    curium = Structure(Lattice.cubic(3.5), ["Cm"], [[0, 0, 0]])  # CHGNet knows Z <= 94 only
    results = relaxer.relax_many([curium, diamond_si()])
    assert results[0].structure is None and results[0].error.startswith("relaxation failed")
    assert results[1].ok and isinstance(results[1], RelaxResult)


def test_step_budget_is_respected(relaxer: Relaxer) -> None:
    start = diamond_si()
    start.translate_sites([0], [0.3, 0.0, 0.0], frac_coords=False)
    result = Relaxer(max_steps=2, relaxer=relaxer.loaded).relax(start)
    assert result.steps == 2 and not result.converged and not result.ok and result.error is None


def test_closest_pair_sees_periodic_images() -> None:
    thin = Structure(Lattice.tetragonal(0.9, 5.0), ["Si"], [[0, 0, 0]])
    distance, i, j = closest_pair(thin, 1.0)
    assert distance == pytest.approx(0.9) and i == j == 0
    assert closest_pair(diamond_si(), 1.0) is None


def test_site_rmsd_ignores_rigid_shifts_and_wraps() -> None:
    start = diamond_si()
    shifted = start.copy()
    shifted.translate_sites(list(range(len(shifted))), [0.3, -0.2, 0.55], to_unit_cell=True)
    assert site_rmsd(start, shifted) == pytest.approx(0.0, abs=1e-9)


def test_bad_settings_are_one_line_errors(relaxer: Relaxer) -> None:
    with pytest.raises(ChggenError, match="fmax"):
        Relaxer(fmax=0, relaxer=relaxer.loaded)
