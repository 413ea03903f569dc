"""DiffCSP's noise on fractional coordinates, on its own time grid, as a chggen NoiseProcess.

DiffCSP draws x_t = (x_0 + sigma_t z) mod 1 for integer t = 1..T with sigma_t from a table stored in
the checkpoint (sigma_0 = 0 is clean data). chggen's levels map one to one: level l is t = l + 1,
level -1 is t = 0. Prior, marginal, re-noising and the ancestral predictor are the core's fractional
VE formulas on that table. The corrector differs: DiffCSP's Langevin step is
step_lr * (sigma_t / sigma_begin)^2, its noise sqrt(2 step), and at t = 1 it adds no noise.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.noise import FractionalVE


def wrapped_normal_tables(timesteps: int, sigma_begin: float = 0.005,
                          sigma_end: float = 0.5) -> tuple[Tensor, Tensor]:
    """[T + 1] sigmas and sigmas_norm as DiffCSP defines them, for untrained networks only.

    sigmas_norm[t] = E|d/dx log p_t(x)|^2 under the wrapped normal p_t; DiffCSP estimates it by Monte
    Carlo, here it is a quadrature. A loaded checkpoint always keeps its own stored tables.
    """
    sigmas = torch.exp(torch.linspace(math.log(sigma_begin), math.log(sigma_end), timesteps,
                                      dtype=torch.float64))
    x = (torch.arange(4000, dtype=torch.float64) + 0.5) / 4000 - 0.5
    shifted = x[None, :, None] + torch.arange(-3, 4, dtype=torch.float64)
    exponent = -shifted ** 2 / (2 * sigmas[:, None, None] ** 2)
    score = -(shifted * torch.softmax(exponent, -1)).sum(-1) / sigmas[:, None] ** 2
    density = torch.softmax(torch.logsumexp(exponent, -1), -1)
    norms = (density * score ** 2).sum(-1)
    zero, one = torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64)
    return torch.cat([zero, sigmas]).float(), torch.cat([one, norms]).float()


def cosine_beta_tables(timesteps: int, s: float = 0.008) -> dict[str, Tensor]:
    """DiffCSP's `beta_scheduler` buffers [T + 1] for the cosine schedule (entry 0: no noise).

    abar(t) = f(t) / f(0) with f(t) = cos^2((t / T + s) / (1 + s) * pi / 2); betas from consecutive
    ratios, clipped to 1e-4..0.9999; sigmas are the DDPM posterior standard deviations.
    """
    x = torch.linspace(0, timesteps, timesteps + 1, dtype=torch.float64)
    f = torch.cos((x / timesteps + s) / (1 + s) * math.pi * 0.5) ** 2
    f = f / f[0]
    betas = torch.cat([torch.zeros(1, dtype=torch.float64), (1 - f[1:] / f[:-1]).clip(1e-4, 0.9999)])
    alphas = 1 - betas
    alphas_cumprod = torch.cumprod(alphas, 0)
    sigmas = torch.zeros_like(betas)
    sigmas[1:] = (betas[1:] * (1 - alphas_cumprod[:-1]) / (1 - alphas_cumprod[1:])).sqrt()
    return {name: value.float() for name, value in
            (("betas", betas), ("alphas", alphas), ("alphas_cumprod", alphas_cumprod), ("sigmas", sigmas))}


class DiffCSPProcess(FractionalVE):
    """Wrapped normal on fractional coordinates over a checkpoint's `sigma_scheduler` tables.

    sigmas, sigmas_norm: the [T + 1] buffers as stored (entry 0 is t = 0). sigmas_norm[t] is
    E|score of the wrapped normal|^2, the factor that turns the network's output into a score.
    """

    def __init__(self, sigmas: Tensor, sigmas_norm: Tensor, sigma_begin: float,
                 step_lr: float, where: str = "checkpoint") -> None:
        sigmas, sigmas_norm = sigmas.detach().cpu().double(), sigmas_norm.detach().cpu().double()
        if sigmas.ndim != 1 or sigmas.shape != sigmas_norm.shape or len(sigmas) < 3:
            raise ChggenError(f"{where}: sigma_scheduler tables must be two equal 1-d tensors of length "
                              f"T + 1 >= 3, got shapes {tuple(sigmas.shape)} and {tuple(sigmas_norm.shape)}")
        table = sigmas[1:]
        if not (torch.isfinite(sigmas_norm[1:]).all() and (sigmas_norm[1:] > 0).all()
                and (table > 0).all() and (table[1:] > table[:-1]).all()):
            raise ChggenError(f"{where}: sigma_scheduler.sigmas must rise from a positive value and "
                              "sigmas_norm be positive for t >= 1; the tables look damaged")
        if not step_lr > 0 or not sigma_begin > 0:
            raise ChggenError(f"DiffCSP corrector needs step_lr > 0 and sigma_begin > 0, got {step_lr} "
                              f"and {sigma_begin}")
        super().__init__(float(table[-1]), float(table[0]), len(table), corrector_steps=1)
        self.sigmas = table  # the checkpoint's own table (float32 values), not a recomputed ladder
        self.sigmas_norm = sigmas_norm[1:]
        self.sigma_begin = sigma_begin
        self.step_lr = step_lr

    @staticmethod
    def time_step(level: int) -> int:
        """DiffCSP's integer t for a chggen level."""
        return level + 1

    def score_scale(self, level: int) -> float:
        """score = -score_scale * network output (DiffCSP trains the output on -score / sqrt(norm))."""
        self.sigma(level)  # range check
        return float(self.sigmas_norm[level]) ** 0.5

    def corrector_step(self, frac: Tensor, score: Tensor, level: int, batch: CrystalBatch,
                       generator: torch.Generator) -> Tensor:
        step = self.step_lr * (self.sigma(level) / self.sigma_begin) ** 2
        delta = step * score.to(frac.dtype)
        if level > 0:
            delta = delta + (2.0 * step) ** 0.5 * self._gaussian(frac, generator)
        return self.displace(frac, delta, batch)

    def describe(self) -> str:
        return (f"DiffCSP wrapped normal (fractional): sigma {self.sigmas[-1]:.4g} -> {self.sigmas[0]:.4g} "
                f"from the checkpoint, {self.num_levels} levels (t = level + 1), 1 Langevin step "
                f"(step_lr {self.step_lr:g})")
