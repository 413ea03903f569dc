"""The one sampling loop: RePaint inpainting of free atoms around fixed ones, for every backend.

Host atoms (`batch.fixed`) are never integrated: at every level they are drawn afresh from the
forward marginal of their true positions, so the score model always sees a host exactly as noisy as
it was trained to expect, and at level -1 they sit bit for bit at their input positions. Guests
follow the reverse process (predictor, then corrector steps). A RePaint jump re-noises everything one
rung up and the walk descends again, giving the guests time to agree with the host. With no fixed
atom this is plain unconditional generation; there is no second code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor
from tqdm.auto import tqdm

from ..errors import ChggenError
from ..protocol import CrystalBatch, ScoreModel
from .schedule import repaint_schedule


@dataclass(frozen=True)
class SamplerSettings:
    """How the walk over noise levels goes (the ladder itself belongs to the model's process)."""

    jump_length: int = 10
    resamples: int = 3


@dataclass
class SampleResult:
    frac_coords: Tensor            # [N, 3] final positions; host atoms equal the input exactly
    trajectory: list[Tensor] | None  # positions after every step, when asked for


def _checked_score(model: ScoreModel, batch: CrystalBatch, level: int, step: int) -> Tensor:
    score = model.score(batch, level)
    if score.shape != batch.frac_coords.shape:
        raise ChggenError(f"{type(model).__name__}.score returned shape {tuple(score.shape)}, "
                          f"expected {tuple(batch.frac_coords.shape)} (one 3-vector per atom)")
    bad = ~torch.isfinite(score).all(dim=1)
    if bad.any():
        crystals = sorted(set(batch.batch[bad].tolist()))
        raise ChggenError(f"score turned NaN/inf at step {step} (noise level {level}) in crystal(s) "
                          f"{crystals[:10]}: check the model and the input structure")
    return score


def sample(model: ScoreModel, batch: CrystalBatch, settings: SamplerSettings = SamplerSettings(),
           generator: torch.Generator | None = None, trajectory: bool = False,
           progress: bool = False) -> SampleResult:
    """Generate the free atoms of every crystal in `batch` in one walk, one score call per move.

    `batch.frac_coords` holds the true positions of the fixed atoms; those of free atoms are ignored.
    """
    process = model.noise_process
    generator = generator if generator is not None else torch.Generator(device=batch.device)
    host = batch.fixed.unsqueeze(1)
    truth = batch.frac_coords.to(torch.float64)
    batch = batch.with_frac_coords(truth)

    def put_host(frac: Tensor, level: int) -> Tensor:
        return torch.where(host, process.marginal(truth, level, batch, generator), frac)

    top = process.num_levels - 1
    frac = put_host(process.prior(batch, generator), top)
    walk = repaint_schedule(process.num_levels, settings.jump_length, settings.resamples)
    path = [] if trajectory else None
    for step, (level, next_level) in enumerate(tqdm(walk, desc="reverse steps", disable=not progress,
                                                     unit="step")):
        if next_level > level:
            frac = process.renoise(frac, level, next_level, batch, generator)
        else:
            score = _checked_score(model, batch.with_frac_coords(frac), level, step)
            frac = put_host(process.predictor_step(frac, score, level, batch, generator), next_level)
            if next_level >= 0:
                for _ in range(process.corrector_steps):
                    score = _checked_score(model, batch.with_frac_coords(frac), next_level, step)
                    frac = torch.where(host, frac,
                                       process.corrector_step(frac, score, next_level, batch, generator))
        if path is not None:
            path.append(frac.clone())
    return SampleResult(frac_coords=frac, trajectory=path)
