"""Noise ladders and the RePaint jump schedule (Lugmayr et al. 2022), as plain integer sequences."""

from __future__ import annotations

import math
import warnings

import torch

from chggen_plugins.errors import ChggenError, ChggenWarning


def geometric_sigmas(sigma_max: float, sigma_min: float, num_levels: int) -> torch.Tensor:
    """[num_levels] float64 sigmas, index 0 = sigma_min ... index num_levels-1 = sigma_max.

    Level l is the l-th rung from the clean end, so the reverse walk runs from the top index down.
    """
    if not (sigma_max > sigma_min > 0):
        raise ChggenError(f"noise ladder needs sigma_max > sigma_min > 0, got {sigma_max} and {sigma_min}")
    if num_levels < 2:
        raise ChggenError(f"noise ladder needs at least 2 levels, got {num_levels}")
    return torch.exp(torch.linspace(math.log(sigma_min), math.log(sigma_max), num_levels,
                                    dtype=torch.float64))


def repaint_schedule(num_levels: int, jump_length: int = 10, resamples: int = 3) -> list[tuple[int, int]]:
    """The walk over noise levels as (from_level, to_level) pairs.

    It starts at the top level (num_levels - 1, where the prior lives) and ends at -1 (clean).
    from > to is a reverse step; from < to is a forward re-noise (a RePaint jump). Each time the walk
    reaches a level that is a multiple of `jump_length` below the top segment, it jumps back
    `jump_length` levels, `resamples - 1` times, so every stretch is denoised `resamples` times.
    `resamples=1` is plain sampling. For 200 levels, j=10, r=3: 580 reverse and 380 forward steps.
    """
    for name, value, low in (("num_levels", num_levels, 1), ("jump_length", jump_length, 1),
                             ("resamples", resamples, 1)):
        if not isinstance(value, int) or value < low:
            raise ChggenError(f"RePaint schedule: {name} must be an integer >= {low}, got {value!r}")
    if resamples > 1 and jump_length >= num_levels:
        warnings.warn(f"RePaint: jump length {jump_length} leaves no room to jump back on a ladder of "
                      f"{num_levels} levels, so resamples={resamples} does nothing; use a jump length "
                      f"below {num_levels}", ChggenWarning, stacklevel=2)
    jumps_left = {level: resamples - 1 for level in range(0, num_levels - jump_length, jump_length)}
    walk = [num_levels - 1]
    level = num_levels - 1
    while level >= 0:
        level -= 1
        walk.append(level)
        if jumps_left.get(level, 0) > 0:
            jumps_left[level] -= 1
            for _ in range(jump_length):
                level += 1
                walk.append(level)
    return list(zip(walk[:-1], walk[1:]))
