"""Shared structures: a skewed Li-Si crystal whose Li sites are the targets of the analytic model."""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture
def reference() -> Structure:
    """Four Si host atoms and two Li guest sites in a triclinic cell (skew catches frac/Cartesian mix-ups)."""
    lattice = Lattice.from_parameters(5.0, 5.5, 6.0, 80, 95, 105)
    return Structure(lattice, ["Si", "Li", "Si", "Si", "Li", "Si"],
                     [[0.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.25, 0.25, 0.25], [0.5, 0.0, 0.5],
                      [0.9, 0.2, 0.7], [0.0, 0.5, 0.75]])


@pytest.fixture
def host(reference: Structure) -> Structure:
    framework = reference.copy()
    framework.remove_species(["Li"])
    return framework


@pytest.fixture
def files(tmp_path, reference, host):
    """The reference as full.cif and its host as host.cif in tmp_path: what CLI tests read."""
    reference.to(filename=str(tmp_path / "full.cif"))
    host.to(filename=str(tmp_path / "host.cif"))
    return tmp_path
