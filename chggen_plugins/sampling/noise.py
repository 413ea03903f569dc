"""Variance-exploding diffusion of periodic positions, in Cartesian or fractional coordinates.

x_l = wrap(x_0 + sigma_l * z), z ~ N(0, I) in the process's own coordinates, on a geometric ladder.
Both flavours share every formula; they differ only in which cell the noise lives in:

* `CartesianVE`: noise in Angstrom, isotropic in space, wrapped by the crystal's lattice
  (the CHGGen / CDVAE convention; default ladder 10 A -> 0.01 A over 200 levels).
* `FractionalVE`: noise per unit fractional coordinate, wrapped by the unit cube
  (the DiffCSP / MatterGen convention; default ladder 0.5 -> 0.005 over 200 levels).

Reverse moves follow score_sde (Song et al. 2021): the ancestral VE predictor and the Langevin
corrector with a signal-to-noise ratio, defaults 5 corrector steps and snr 0.4 as in the CHGGen code.
"""

from __future__ import annotations

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.schedule import geometric_sigmas


def wrap_unit(frac: Tensor) -> Tensor:
    """Fractional coordinates into [0, 1); remainder alone can round -1e-18 up to exactly 1.0."""
    wrapped = torch.remainder(frac, 1.0)
    return torch.where(wrapped >= 1.0, wrapped - 1.0, wrapped)


class WrappedVE:
    """Shared maths of the VE processes; a subclass says only what its periodic cell is."""

    def __init__(self, sigma_max: float, sigma_min: float, num_levels: int = 200,
                 corrector_steps: int = 5, snr: float = 0.4) -> None:
        if corrector_steps < 0 or snr <= 0:
            raise ChggenError(f"corrector needs corrector_steps >= 0 and snr > 0, got "
                              f"{corrector_steps} and {snr}")
        self.sigmas = geometric_sigmas(sigma_max, sigma_min, num_levels)
        self.num_levels = num_levels
        self.corrector_steps = corrector_steps
        self.snr = snr
        self._inverse_for: tuple[Tensor, Tensor] | None = None
        self._inverse = torch.empty(0)

    # -- what a flavour defines -------------------------------------------------------------
    units = ""

    def cell(self, batch: CrystalBatch) -> Tensor:
        """[B, 3, 3] the period of the noise space: rows are the translations that wrap."""
        raise NotImplementedError

    # -- shared maths ------------------------------------------------------------------------
    def sigma(self, level: int) -> float:
        """Noise std at `level` in the process's units; 0 at level -1 (clean)."""
        if level == -1:
            return 0.0
        if not 0 <= level < self.num_levels:
            raise ChggenError(f"noise level {level} is outside 0..{self.num_levels - 1}")
        return float(self.sigmas[level])

    def describe(self) -> str:
        return (f"{type(self).__name__}: sigma {self.sigmas[-1]:.4g} -> {self.sigmas[0]:.4g} "
                f"{self.units}, {self.num_levels} levels, {self.corrector_steps} corrector steps "
                f"at snr {self.snr}")

    def displace(self, frac: Tensor, delta: Tensor, batch: CrystalBatch) -> Tensor:
        """Move positions by `delta` given in process coordinates, and wrap into the cell."""
        step = torch.bmm(delta.to(frac.dtype).unsqueeze(1), self._atom_inverse_cell(batch)).squeeze(1)
        return wrap_unit(frac + step)

    def _atom_inverse_cell(self, batch: CrystalBatch) -> Tensor:
        """[N, 3, 3] inverse cell per atom, kept while the batch's lattice and crystal index tensors
        are the same objects (a sampling run changes positions only: computed once per run)."""
        if self._inverse_for is None or self._inverse_for[0] is not batch.lattice \
                or self._inverse_for[1] is not batch.batch:
            self._inverse = torch.linalg.inv(self.cell(batch))[batch.batch]
            self._inverse_for = (batch.lattice, batch.batch)
        return self._inverse

    def _gaussian(self, frac: Tensor, generator: torch.Generator) -> Tensor:
        return torch.randn(frac.shape, generator=generator, dtype=frac.dtype, device=frac.device)

    def prior(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        """Uniform in the cell: the wrapped normal at the top sigma, which exceeds the cell."""
        return torch.rand(batch.frac_coords.shape, generator=generator, dtype=torch.float64,
                          device=batch.device)

    def marginal(self, frac0: Tensor, level: int, batch: CrystalBatch,
                 generator: torch.Generator) -> Tensor:
        if level == -1:
            return frac0
        noise = self.sigma(level) * self._gaussian(frac0, generator)
        return self.displace(frac0, noise, batch)

    def renoise(self, frac: Tensor, from_level: int, to_level: int, batch: CrystalBatch,
                generator: torch.Generator) -> Tensor:
        if to_level <= from_level:
            raise ChggenError(f"renoise goes up the ladder, got level {from_level} -> {to_level}")
        std = (self.sigma(to_level) ** 2 - self.sigma(from_level) ** 2) ** 0.5
        return self.displace(frac, std * self._gaussian(frac, generator), batch)

    def predictor_step(self, frac: Tensor, score: Tensor, level: int, batch: CrystalBatch,
                       generator: torch.Generator) -> Tensor:
        """Ancestral sampling: draw x_{l-1} from q(x_{l-1} | x_l, x_0 = Tweedie estimate).

        At the last step (to level -1) the noise vanishes and this is Tweedie's denoised mean.
        """
        sigma, sigma_next = self.sigma(level), self.sigma(level - 1)
        gap = sigma ** 2 - sigma_next ** 2
        delta = gap * score.to(frac.dtype)
        if sigma_next > 0:
            delta = delta + (sigma_next ** 2 * gap / sigma ** 2) ** 0.5 * self._gaussian(frac, generator)
        return self.displace(frac, delta, batch)

    def corrector_step(self, frac: Tensor, score: Tensor, level: int, batch: CrystalBatch,
                       generator: torch.Generator) -> Tensor:
        """Langevin step x + eps * score + sqrt(2 eps) z with eps = 2 (snr * sigma_level)^2.

        score_sde sizes eps from the sampled norms, 2 (snr |z| / |score|)^2; for atoms sitting at
        sharp sites E|z|^2 / E|score|^2 = sigma^2, so this is the same step in expectation. Per
        crystal with few free atoms the sampled ratio is heavy-tailed (with 2 guests 1-2% of steps
        exceed the stability limit and guests came out 1.3x too spread); the expected value is not.
        """
        step = 2.0 * (self.snr * self.sigma(level)) ** 2
        noise = self._gaussian(frac, generator)
        return self.displace(frac, step * score.to(frac.dtype) + (2.0 * step) ** 0.5 * noise, batch)


class CartesianVE(WrappedVE):
    """Isotropic noise in Angstrom, wrapped by the lattice (CHGGen, CDVAE)."""

    units = "A"

    def __init__(self, sigma_max: float = 10.0, sigma_min: float = 0.01, num_levels: int = 200,
                 corrector_steps: int = 5, snr: float = 0.4) -> None:
        super().__init__(sigma_max, sigma_min, num_levels, corrector_steps, snr)

    def cell(self, batch: CrystalBatch) -> Tensor:
        return batch.lattice


class FractionalVE(WrappedVE):
    """Isotropic noise in fractional coordinates, wrapped by the unit cube (DiffCSP, MatterGen)."""

    units = "(fractional)"

    def __init__(self, sigma_max: float = 0.5, sigma_min: float = 0.005, num_levels: int = 200,
                 corrector_steps: int = 5, snr: float = 0.4) -> None:
        super().__init__(sigma_max, sigma_min, num_levels, corrector_steps, snr)

    def cell(self, batch: CrystalBatch) -> Tensor:
        return torch.eye(3, dtype=batch.lattice.dtype, device=batch.device).expand(batch.num_crystals, 3, 3)
