"""The one sampling loop: RePaint inpainting of free atoms around fixed ones, for every backend.

Host atoms (`batch.fixed`) are never integrated: at every level they are drawn afresh from the
forward marginal of their true positions, so the score model always sees a host exactly as noisy as
it was trained to expect, and at level -1 they sit bit for bit at their input positions. A model
that declares itself host-conditioned (`host_conditioned = True`: trained with the host clean and
only guests noised) is shown the host at its true positions at every level instead, and needs no
RePaint resampling to agree with it (`default_resamples`: 1 instead of 3). Guests
follow the reverse process: by default (solver "pc") a predictor then corrector steps at every
level; with "heun" or "ode" by Heun steps of the probability-flow ODE over a sub-ladder of `steps`
levels, "heun" re-noising by EDM's churn before each (`solvers.py` has the moves). A RePaint jump
re-noises everything one rung up and the walk descends again, giving the guests time to agree with
the host. With no fixed atom this is plain unconditional generation; there is no second code path:
the schedule is a list of (from, to) level pairs, and the loop takes the re-noise move up and the
solver's move down.

Symmetric inpainting adds a constraint (`orbits.OrbitConstraint`) that ties free atoms into orbits of
a space group: the prior, every score and every move pass through it. Without orbits it hands back
what it is given, so free inpainting runs the same loop.

Partial regeneration (`start_level`) starts the walk lower on the ladder from given guest positions
noised to that level (SDEdit; DiffCSP++'s template start): a placement is refined, not redrawn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
from torch import Tensor
from tqdm.auto import tqdm

from chggen_plugins.contract.protocol import CrystalBatch, NoiseProcess, ScoreModel
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling import SOLVERS
from chggen_plugins.sampling.orbits import OrbitConstraint
from chggen_plugins.sampling.schedule import repaint_schedule, solver_schedule
from chggen_plugins.sampling.solvers import Frame, Heun, PredictorCorrector, Renoise, check_ode_capable


def is_host_conditioned(model: ScoreModel) -> bool:
    """The protocol's optional `host_conditioned` attribute (False when a model does not say)."""
    return getattr(model, "host_conditioned", False) is True


def default_resamples(model: ScoreModel) -> int:
    """RePaint resamples r when none is asked for: 3 (the paper's) for a model that sees the host
    noisy, 1 for a host-conditioned one, which is trained to see the host as it is."""
    return 1 if is_host_conditioned(model) else 3


@dataclass(frozen=True)
class SamplerSettings:
    """How the walk over noise levels goes (the ladder itself belongs to the model's process).

    jump_length, resamples: the RePaint walk (`resamples=None`: the model's default,
        `default_resamples`); for heun and ode the jumps are taken on their sub-ladder.
    solver: "pc" (ancestral predictor + Langevin correctors at every level: the paper's sampler),
        "heun" (EDM's stochastic Heun sampler: churn, then a Heun step of the probability-flow
        ODE) or "ode" (the probability-flow ODE with Heun steps, deterministic in the free atoms).
    steps: levels the heun/ode moves visit, evenly spaced from the top to 0 (None: every level);
        pc visits every level of the ladder (its count is the model's --levels).
    churn: EDM's gamma for "heun": before each move, re-noise up to sigma * (1 + churn).
    """

    jump_length: int = 10
    resamples: int | None = None
    solver: str = "pc"
    steps: int | None = None
    churn: float = 0.0

    def __post_init__(self) -> None:
        if self.solver not in SOLVERS:
            raise ChggenError(f"sampler {self.solver!r} is not one of {', '.join(SOLVERS)}")
        if self.steps is not None and (isinstance(self.steps, bool) or not isinstance(self.steps, int)
                                       or self.steps < 2):
            raise ChggenError(f"sampler steps must be an integer >= 2 (the top level and level 0), got "
                              f"{self.steps!r}")
        if self.steps is not None and self.solver == "pc":
            raise ChggenError("steps are for the heun and ode samplers; the pc sampler visits every level: "
                              "set its count with --levels")
        if isinstance(self.churn, bool) or not isinstance(self.churn, (int, float)) or not 0 <= self.churn < math.inf:
            raise ChggenError(f"churn must be a number >= 0, got {self.churn!r}")
        if self.churn and self.solver != "heun":
            raise ChggenError(f"churn is for the heun sampler; {self.solver} takes none (got {self.churn:g})")

    def for_model(self, model: ScoreModel) -> "SamplerSettings":
        """These settings with `resamples` filled in for `model` (what a run records)."""
        return self if self.resamples is not None else replace(self, resamples=default_resamples(model))

    def label(self) -> str:
        """What a run records of the sampler, e.g. "j10 r3" (pc: the label runs had before the other
        solvers, so their resume fingerprints stay) or "j10 r1 heun s25 c0.3"."""
        repaint = f"j{self.jump_length} r{self.resamples}"
        if self.solver == "pc":
            return repaint
        return f"{repaint} {self.solver} s{self.steps or 'all'} c{self.churn:g}"


@dataclass
class SampleResult:
    frac_coords: Tensor            # [N, 3] final positions; host atoms equal the input exactly
    trajectory: list[Tensor] | None  # positions after every step, when asked for


def _checked_score(model: ScoreModel, batch: CrystalBatch, level: int, step: int) -> Tensor:
    score = model.score(batch, level)
    if not isinstance(score, Tensor) or not score.is_floating_point():
        kind = f"a {score.dtype} tensor" if isinstance(score, Tensor) else f"a {type(score).__name__}"
        raise ChggenError(f"{type(model).__name__}.score returned {kind}; it must return a floating-point "
                          f"torch.Tensor of shape [N, 3]")
    if score.shape != batch.frac_coords.shape:
        raise ChggenError(f"{type(model).__name__}.score returned shape {tuple(score.shape)}, "
                          f"expected {tuple(batch.frac_coords.shape)} (one 3-vector per atom)")
    bad = ~torch.isfinite(score).all(dim=1)
    if bad.any():
        raise ScoreNotFinite(type(model).__name__, step, level, sorted(set(batch.batch[bad].tolist())))
    return score


class ScoreNotFinite(ChggenError):
    """The model's score turned NaN or inf: the sampler stops (nothing sensible can follow).

    Carries the batch indices of the crystals concerned, so a caller that knows what they are (the
    API knows its tasks) can name them; a campaign stores it as that shard's error and goes on.
    """

    def __init__(self, model: str, step: int, level: int, crystals: list[int], where: str | None = None) -> None:
        self.model, self.step, self.level, self.crystals = model, step, level, crystals
        where = where or f"crystal(s) {crystals[:10]} of the batch"
        super().__init__(f"{model}: score turned NaN/inf at step {step} (noise level {level}) in {where}: "
                         "check the model and the input structure")


def start_level_of(model: ScoreModel, sigma: float) -> int:
    """The highest level of the model's ladder whose noise is at most `sigma` (process units: A for
    a Cartesian process): where a partial regeneration from a placement `sigma` off starts."""
    process = model.noise_process
    levels = [level for level in range(process.num_levels) if process.sigma(level) <= sigma * (1 + 1e-9)]
    if not levels:
        raise ChggenError(f"start sigma {sigma:g} is below the model's smallest noise level "
                          f"{process.sigma(0):.4g}: nothing would be regenerated")
    return max(levels)


def proposal_level(model: ScoreModel) -> int:
    """The level symmetric inpainting refines a model-proposed placement from (`orbits="model"`): the
    middle of the model's ladder (the geometric mean of its sigmas). Why refine, not redraw: the free
    pass already found where the guests go and the proposal fitted its orbits to that; the symmetric
    pass has only to settle them on the orbits, in half the walk. Why not lower: a placement the free
    pass got slightly wrong must still be able to move."""
    return model.noise_process.num_levels // 2


def sample(model: ScoreModel, batch: CrystalBatch, settings: SamplerSettings = SamplerSettings(),
           generator: torch.Generator | None = None, trajectory: bool = False,
           progress: bool = False, orbits: OrbitConstraint | None = None,
           start_level: int | None = None) -> SampleResult:
    """Generate the free atoms of every crystal in `batch` in one walk, one score call per move.

    `batch.frac_coords` holds the true positions of the fixed atoms; those of free atoms are ignored,
    unless `start_level` is given: then they are a placement to refine, noised to that level, and the
    walk descends from there. `orbits` ties free atoms into symmetry orbits (symmetric inpainting);
    None leaves them free. With both, the placement must lie on the orbits (a proposal fitted onto
    them: `wyckoff.propose_plan`).
    `settings.solver` picks the move down the ladder; "heun" and "ode" need the process's optional
    `sigma` and `displace` (one line refuses a process without them).
    """
    process = model.noise_process
    settings = settings.for_model(model)
    if settings.solver != "pc":
        check_ode_capable(process, settings.solver)
    generator = generator if generator is not None else torch.Generator(device=batch.device)
    host = batch.fixed.unsqueeze(1)
    truth = batch.frac_coords.to(torch.float64)
    batch = batch.with_frac_coords(truth)
    tied = (orbits if orbits is not None else OrbitConstraint.none(batch)).bind(batch, process)
    clean_host = is_host_conditioned(model)

    def put_host(frac: Tensor, level: int) -> Tensor:
        return torch.where(host, process.marginal(truth, -1 if clean_host else level, batch, generator), frac)

    def score_at(frac: Tensor, level: int, step: int) -> Tensor:
        return tied.score(_checked_score(model, batch.with_frac_coords(frac), level, step))

    top = process.num_levels - 1
    if start_level is None:
        frac = put_host(tied.prior(process.prior(batch, generator)), top)
    else:
        if isinstance(start_level, bool) or not isinstance(start_level, int) or not 0 <= start_level <= top:
            raise ChggenError(f"start level {start_level!r} is outside the model's ladder 0..{top}")
        # with orbits the placement is on them (a fitted proposal): its representatives are noised
        frac = put_host(tied.follow(truth, process.marginal(truth, start_level, batch, generator)), start_level)
    walk = walk_of(process, settings, top if start_level is None else start_level, start_level is not None)
    frame = Frame(process, batch, generator, host, put_host, score_at, tied, clean_host)
    up, down = Renoise(frame), (PredictorCorrector if settings.solver == "pc" else Heun)(frame)
    path = [] if trajectory else None
    jumps = sum(to > start for start, to in walk)
    desc = f"sampling ({len(walk) - jumps} reverse + {jumps} re-noise steps)"
    for step, (level, next_level) in enumerate(tqdm(walk, desc=desc, disable=not progress, unit="step")):
        frac = (up if next_level > level else down)(frac, level, next_level, step)
        if path is not None:
            path.append(frac.clone())
    return SampleResult(frac_coords=frac, trajectory=path)


def walk_of(process: NoiseProcess, settings: SamplerSettings, top: int, partial: bool = False) -> list[tuple[int, int]]:
    """The (from, to) level pairs of a run from `top` down to -1 for `settings`' solver; up pairs
    re-noise, down pairs are the solver's moves. One function, so the loop and `score_calls` (what
    benchmarks count) cannot disagree.

    Args:
        process: the model's noise process (its sigmas place heun's churn targets).
        settings: the sampler settings, resamples filled in (`SamplerSettings.for_model`).
        top: the level the walk starts from.
        partial: a partial regeneration's walk: when too short to jump back it takes no
            resampling (rather than warn that resampling would do nothing).

    Returns:
        The (from, to) pairs.
    """
    if settings.solver == "pc":
        room = not partial or settings.jump_length < top + 1
        return repaint_schedule(top + 1, settings.jump_length, settings.resamples if room else 1)
    sigmas = [process.sigma(level) for level in range(process.num_levels)]
    rungs = top + 1 if settings.steps is None else min(settings.steps, top + 1)
    room = not partial or settings.jump_length < rungs
    return solver_schedule(sigmas, top, settings.steps, settings.jump_length, settings.resamples if room else 1,
                           settings.churn)


def score_calls(model: ScoreModel, settings: SamplerSettings, start_level: int | None = None) -> int:
    """Score calls one sample costs (what a sampler's budget is measured in): per move down, pc makes
    one predictor call and one per corrector step (none at the clean level), heun and ode two (one
    for the Euler step to the clean level); re-noising (RePaint jumps, churn) costs none.

    Args:
        model: the model (its ladder and corrector steps; its default resamples).
        settings: the sampler settings.
        start_level: a partial regeneration's start (None: the top).

    Returns:
        Network calls per sample.
    """
    process, settings = model.noise_process, settings.for_model(model)
    top = process.num_levels - 1 if start_level is None else start_level
    per_move = 1 + (process.corrector_steps if settings.solver == "pc" else 1)
    return sum(1 if to < 0 else per_move
               for start, to in walk_of(process, settings, top, start_level is not None) if to < start)
