"""MatterGen's position noise as a chggen NoiseProcess.

MatterGen (`NumAtomsVarianceAdjustedWrappedVESDE`) noises fractional coordinates with a wrapped VE
process whose std is sigma(t) * n^(-1/3) for a crystal of n atoms, sigma(t) = 0.01 * 500^t on
t in (0, 1] (sigma_min 0.01, sigma_max 5). A per-crystal scale on the noise is the same as a
crystal-independent ladder in stretched coordinates y = n^(1/3) * frac, whose period is n^(1/3) per
axis. So this is the core's `WrappedVE` with that period as its cell, and every formula (marginal,
re-noise, ancestral predictor, Langevin corrector) is the core's. Scores cross the protocol in y:
score_y = n^(-1/3) * score_frac.

Levels follow MatterGen's sampler grid: level l sits at t = (l + 1) / L, so the top level is t = 1
(sigma 5 n^(-1/3)) and the last reverse step goes from t = 1/L to clean, as its predictor does.
"""

from __future__ import annotations

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.noise import WrappedVE

SIGMA_MIN = 0.01  # MatterGen's WrappedVESDE default
SIGMA_MAX = 5.0   # sigma_max of the pos SDE in MatterGen's default corruption config


class MatterGenPositionVE(WrappedVE):
    """Wrapped VE on fractional coordinates scaled per crystal by n^(-1/3); MatterGen's pos process.

    Defaults are MatterGen's sampler: 1000 levels, one Langevin corrector step at snr 0.4.
    """

    units = "(fractional x n^(1/3))"

    def __init__(self, num_levels: int = 1000, corrector_steps: int = 1, snr: float = 0.4,
                 sigma_min: float = SIGMA_MIN, sigma_max: float = SIGMA_MAX) -> None:
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 2:
            raise ChggenError(f"MatterGen noise ladder needs an integer number of levels >= 2, "
                              f"got {num_levels!r}")
        lowest = sigma_min * (sigma_max / sigma_min) ** (1.0 / num_levels)
        super().__init__(sigma_max, lowest, num_levels, corrector_steps, snr)

    def time(self, level: int) -> float:
        """MatterGen's diffusion time t in (0, 1] of `level` (what its network is conditioned on)."""
        self.sigma(level)  # validates the level
        return (level + 1) / self.num_levels

    def stretch(self, batch: CrystalBatch) -> Tensor:
        """[B] n^(1/3) per crystal: y = stretch * frac."""
        return batch.num_atoms.to(batch.lattice.dtype) ** (1.0 / 3.0)

    def cell(self, batch: CrystalBatch) -> Tensor:
        eye = torch.eye(3, dtype=batch.lattice.dtype, device=batch.device)
        return self.stretch(batch)[:, None, None] * eye
