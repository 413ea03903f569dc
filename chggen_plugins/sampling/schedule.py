"""Noise ladders, the RePaint jump schedule (Lugmayr et al. 2022) and the few-step solvers' walks over a
sub-ladder with EDM churn (Karras et al. 2022), as plain integer sequences."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

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


def sub_ladder(top: int, steps: int | None) -> list[int]:
    """The levels a few-step solver visits, from `top` down to 0: `steps` of them, evenly spaced in
    level index and always including `top` and 0 (None, or more steps than levels: every level).

    Why evenly in index: the ladders are geometric, so even index spacing is even spacing in
    log sigma, the spacing EDM's and score_sde's samplers take on such a ladder.
    """
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 2):
        raise ChggenError(f"solver steps must be an integer >= 2 (the top level and level 0), got {steps!r}")
    if steps is None or steps > top:
        return list(range(top, -1, -1))
    return sorted({round(top * i / (steps - 1)) for i in range(steps)}, reverse=True)


def solver_schedule(sigmas: Sequence[float], top: int, steps: int | None, jump_length: int, resamples: int,
                    churn: float = 0.0) -> list[tuple[int, int]]:
    """The walk of a few-step solver (heun, ode) as (from_level, to_level) pairs, like `repaint_schedule`.

    The RePaint walk is taken over the sub-ladder (`sub_ladder(top, steps)`; `jump_length` counts
    its rungs) and ends with a move to -1. With `churn` (EDM's gamma) each move from level a is
    preceded by a re-noise pair (a, a') to the highest level a' whose sigma is at most
    sigma_a * (1 + churn), when that is above a; the move then starts from a'. A re-noise pair is
    what a RePaint jump is, so the sampler treats both alike.

    Args:
        sigmas: sigma of every level 0..num_levels-1 (the model's ladder, for the churn's targets).
        top: the level the walk starts from (the prior's, or a partial regeneration's start).
        steps: how many levels of the ladder the moves visit (None: every level).
        jump_length: RePaint jump length, in sub-ladder rungs.
        resamples: RePaint resamples r (1: one descent).
        churn: EDM's gamma >= 0 (0: no re-noising before a move).

    Returns:
        The (from, to) pairs, from `top` to -1.
    """
    rungs = sub_ladder(top, steps)[::-1]  # rungs[i]: level of the sub-ladder's i-th rung, from the bottom
    walk = [(rungs[a], -1 if b < 0 else rungs[b])
            for a, b in repaint_schedule(len(rungs), jump_length, resamples)]
    if churn <= 0:
        return walk
    churned: list[tuple[int, int]] = []
    for a, b in walk:
        if b < a:
            limit = sigmas[a] * (1 + churn) * (1 + 1e-12)
            lifted = max(level for level in range(a, len(sigmas)) if sigmas[level] <= limit)
            if lifted > a:
                churned.append((a, lifted))
                a = lifted
        churned.append((a, b))
    return churned
