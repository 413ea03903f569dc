"""The moves of the one sampling loop, one small class per kind (score_sde's predictor/corrector style).

Every move takes the positions at one level of the walk and returns them at the next; the loop in
`inpaint.sample` only picks the move for each (from, to) pair of its schedule:

* `Renoise` (up the ladder): a RePaint jump, and the churn of the EDM sampler, which is the same
  re-noise before a move;
* `PredictorCorrector` (one level down): the ancestral predictor then Langevin correctors, the
  paper's sampler ("pc");
* `Heun` (any number of levels down): a Heun step of the probability-flow ODE of the VE process,
  dx/dsigma = -sigma * score(x, sigma) (Karras et al. 2022, EDM Alg. 1 and 2); the last step to the
  clean level is Euler, which is Tweedie's denoised mean, as pc's last predictor step is. With churn
  before each move (solver "heun") it is EDM's stochastic sampler, without it (solver "ode") the
  deterministic ODE solver.

Host atoms are put back after every stage (`Frame.put_host`), orbit constraints tie every score and
every displacement (`Frame.tied`), and every displacement wraps into the cell (`displace` does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch, NoiseProcess
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.orbits import BoundOrbits

ODE_CAPABILITIES = ("sigma", "displace")  # optional NoiseProcess methods the heun and ode moves use


def check_ode_capable(process: NoiseProcess, solver: str) -> None:
    """Refuse, in one line, a process without the optional methods a Heun move needs.

    Args:
        process: the model's noise process.
        solver: the solver asked for (named in the message).

    Raises:
        ChggenError: `process` lacks `sigma(level)` or `displace(frac, delta, batch)`.
    """
    missing = [name for name in ODE_CAPABILITIES if not callable(getattr(process, name, None))]
    if missing:
        raise ChggenError(f"solver {solver!r} needs the noise process's optional {' and '.join(missing)}, which "
                          f"{type(process).__name__} does not have (see NoiseProcess); sample this model with "
                          "solver 'pc'")


@dataclass(frozen=True)
class Frame:
    """What every move of one sampler run shares.

    process: the model's noise process; batch: the crystals (lattice, species, host mask);
    generator: the run's randomness; host: [N, 1] True for host atoms;
    put_host(frac, level): `frac` with host atoms as the model must see them at `level`;
    score_at(frac, level, step): the checked, orbit-tied score; tied: the orbit constraint;
    clean_host: the model is host-conditioned (its host is never noised).
    """

    process: NoiseProcess
    batch: CrystalBatch
    generator: torch.Generator
    host: Tensor
    put_host: Callable[[Tensor, int], Tensor]
    score_at: Callable[[Tensor, int, int], Tensor]
    tied: BoundOrbits
    clean_host: bool


class Renoise:
    """Up the ladder from `level` to `to_level` (> level): x_to ~ q(x_to | x_level) for the free atoms.

    A host-conditioned model's host goes back to its true positions (it is never noised); any other
    model's host was re-noised with the rest, as its marginal at `to_level` would have it.
    """

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def __call__(self, frac: Tensor, level: int, to_level: int, step: int) -> Tensor:
        f = self.frame
        frac = f.tied.follow(frac, f.process.renoise(frac, level, to_level, f.batch, f.generator))
        return f.put_host(frac, to_level) if f.clean_host else frac


class PredictorCorrector:
    """One level down: the process's predictor from `level` to `level - 1`, then its corrector steps there."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def __call__(self, frac: Tensor, level: int, to_level: int, step: int) -> Tensor:
        f, process = self.frame, self.frame.process
        moved = process.predictor_step(frac, f.score_at(frac, level, step), level, f.batch, f.generator)
        frac = f.put_host(f.tied.follow(frac, moved), to_level)
        if to_level >= 0:
            for _ in range(process.corrector_steps):
                moved = process.corrector_step(frac, f.score_at(frac, to_level, step), to_level, f.batch,
                                               f.generator)
                frac = torch.where(f.host, frac, f.tied.follow(frac, moved))
        return frac


class Heun:
    """From `level` a down to `to_level` b < a along the probability-flow ODE, in sigma.

    The drift is dx/dsigma = -sigma * score, so going down by (sigma_a - sigma_b) moves x by
    (sigma_a - sigma_b) * sigma * score. Euler with the slope at a gives the trial point; when b is a
    noisy level the slope there is averaged in (Heun, two score calls), and the trial point's host
    (the one the second score saw) is kept. To b = -1 (sigma 0) the Euler step alone is taken: one call.
    """

    def __init__(self, frame: Frame) -> None:
        self.frame = frame

    def __call__(self, frac: Tensor, level: int, to_level: int, step: int) -> Tensor:
        f, process = self.frame, self.frame.process
        sigma_a, sigma_b = process.sigma(level), process.sigma(to_level)
        slope_a = sigma_a * f.score_at(frac, level, step).to(frac.dtype)
        trial = f.put_host(f.tied.follow(frac, process.displace(frac, (sigma_a - sigma_b) * slope_a, f.batch)),
                           to_level)
        if to_level < 0:
            return trial
        slope_b = sigma_b * f.score_at(trial, to_level, step).to(frac.dtype)
        moved = process.displace(frac, (sigma_a - sigma_b) * (slope_a + slope_b) / 2, f.batch)
        return torch.where(f.host, trial, f.tied.follow(frac, moved))
