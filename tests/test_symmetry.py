"""Space groups of known crystals, the success criterion, and the Wilson interval's numbers."""

import math
import sys
from functools import cache
from importlib.util import find_spec

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure
from pymatgen.util.testing import STRUCTURES_DIR

from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.symmetry import (
    is_symmetric,
    space_group,
    symmetry_success_rate,
    wilson_interval,
)

NO_MOYOPY = pytest.mark.skipif(find_spec("moyopy") is None, reason="moyopy not installed")
LIBRARIES = ["spglib", pytest.param("moyopy", marks=NO_MOYOPY)]


@cache  # from_spacegroup is slow; the structures are only read
def diamond() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


@cache
def rocksalt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def random_p1(seed: int) -> Structure:
    lattice = Lattice.from_parameters(5.1, 6.3, 7.2, 71.0, 84.0, 103.0)
    return Structure(lattice, ["Si", "O", "O", "S"], np.random.default_rng(seed).random((4, 3)))


@pytest.mark.parametrize("library", LIBRARIES)
@pytest.mark.parametrize(
    ("make", "number", "symbol"),
    [
        (diamond, 227, "Fd-3m"),
        (rocksalt, 225, "Fm-3m"),
        (lambda: Structure.from_file(STRUCTURES_DIR / "LiFePO4.json"), 62, "Pnma"),
    ],
)
def test_known_groups(make, number, symbol, library):
    group = space_group(make(), library=library)
    assert (group.number, group.symbol, group.library) == (number, symbol, library)
    assert group.is_symmetric
    assert group.symprec == pytest.approx(0.1) and group.angle_tolerance == pytest.approx(10.0)


@pytest.mark.parametrize("library", LIBRARIES)
def test_random_structure_is_not_symmetric(library):
    assert space_group(random_p1(0), library=library).number == 1
    assert not is_symmetric(random_p1(0), library=library)


@pytest.mark.parametrize("library", LIBRARIES)
def test_failed_search_counts_as_p1(library):
    overlapping = Structure(Lattice.cubic(4.0), ["Si", "Si"], [[0, 0, 0], [0, 0, 0]], validate_proximity=False)
    assert space_group(overlapping, library=library).number == 1


def test_wilson_interval_7_of_20_by_hand():
    low, high = wilson_interval(7, 20)
    # Hand computation: z = 1.959964, p = 0.35, n = 20:
    # centre = (p + z^2/2n) / (1 + z^2/n) = 0.446036 / 1.192073 = 0.374169
    # half = z sqrt(p(1-p)/n + z^2/4n^2) / (1 + z^2/n) = 1.959964 * 0.117371 / 1.192073 = 0.192977
    assert low == pytest.approx(0.181192, abs=2e-6)
    assert high == pytest.approx(0.567146, abs=2e-6)
    # Both ends solve the Wilson quadratic (p_hat - p)^2 = z^2 p (1 - p) / n.
    z = 1.959963984540054
    for p in (low, high):
        assert (0.35 - p) ** 2 == pytest.approx(z * z * p * (1 - p) / 20, rel=1e-9)


def test_wilson_interval_edges_and_confidence():
    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(3.841459 / 13.841459, rel=1e-6)  # z^2 / (n + z^2)
    assert wilson_interval(10, 10)[1] == 1.0
    narrow, wide = wilson_interval(7, 20, 0.5), wilson_interval(7, 20, 0.99)
    assert wide[0] < narrow[0] < 0.35 < narrow[1] < wide[1]
    for bad in ((3, 0), (5, 4), (-1, 4)):
        with pytest.raises(ChggenError, match="binomial"):
            wilson_interval(*bad)


@pytest.mark.parametrize("library", LIBRARIES)
def test_success_rate_uses_all_generated_as_denominator(library):
    structures = [diamond(), rocksalt()] * 3 + [diamond()]  # 7 symmetric
    structures += [random_p1(seed) for seed in range(10)]  # 10 relaxed but P1
    structures += [None] * 3  # 3 failed to relax
    rate = symmetry_success_rate(structures, library=library)
    assert (rate.successes, rate.total, rate.failed) == (7, 20, 3)
    assert rate.rate == pytest.approx(0.35)
    assert (rate.low, rate.high) == pytest.approx(wilson_interval(7, 20))
    assert (rate.library, rate.symprec, rate.angle_tolerance, rate.confidence) == (library, 0.1, 10.0, 0.95)


def test_bad_inputs():
    with pytest.raises(ChggenError, match="'pyxtal'"):
        space_group(diamond(), library="pyxtal")
    with pytest.raises(ChggenError, match="empty"):
        symmetry_success_rate([])
    with pytest.raises(ChggenError, match="symprec -0.1"):
        space_group(diamond(), symprec=-0.1)


def test_z_matches_the_normal_quantile():
    # Guards the confidence -> z conversion (0.95 -> 1.96, 0.99 -> 2.576) used by every interval.
    n, k = 1000, 500
    for confidence, z in ((0.95, 1.959964), (0.99, 2.575829)):
        low, high = wilson_interval(k, n, confidence)
        half = z * math.sqrt(0.25 / n + z * z / (4 * n * n)) / (1 + z * z / n)
        assert high - low == pytest.approx(2 * half, rel=1e-6)


def test_missing_moyopy_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "moyopy", None)  # makes `import moyopy` raise ImportError
    with pytest.raises(ChggenError, match="pip install moyopy"):
        space_group(diamond(), library="moyopy")
