"""The contract between the core sampler and a score model: read this file to write an adapter.

Three things cross the boundary:

* `CrystalBatch` -- many crystals as flat tensors (one graph), with a `fixed` mask marking host atoms.
* `NoiseProcess` -- the forward diffusion a model was trained with, and the reverse moves it allows.
* `ScoreModel` -- a network (or formula) giving the score of the noisy positions at a noise level.

Conventions every implementation follows:

* Positions live in the batch as fractional coordinates, float64, shape [N, 3]. Lattice rows are the
  cell vectors, so Cartesian = frac @ lattice[batch]. Lattice and species are never changed.
* Noise levels are integers. Level `num_levels - 1` is the noisiest (the prior), level 0 the least
  noisy, and level -1 means clean data. A reverse (predictor) step goes from level `l` to `l - 1`.
* `ScoreModel.score(batch, level)` returns the score (gradient of log density of the noisy positions)
  *in the coordinates of its noise process*: Angstrom^-1 for a Cartesian process, per unit fractional
  coordinate for a fractional one. An adapter converts its network's raw output into that before
  returning; the core's processes give the noise scale as `noise_process.sigma(level)`, so a network
  that predicts sigma x score returns `output / sigma`, one that predicts the noise epsilon
  (x = x0 + sigma * epsilon) returns `-epsilon / sigma`. It may compute in float32 and return any
  float dtype; the sampler keeps its state in float64.
* The sampler alone owns the `fixed` mask: a model scores every atom, and a noise process moves
  every atom; neither needs to look at the mask. Hence `ScoreModel.elements` must cover the host's
  elements as well as the guests'.

A noise process is usually the core's: `CartesianVE(sigma_max, sigma_min, num_levels, corrector_steps,
snr)` (Angstrom; defaults 10, 0.01, 200, 5, 0.4, the paper's) or `FractionalVE(...)` (per unit
fractional coordinate; defaults 0.5, 0.005, 200, 5, 0.4) from `chggen_plugins.sampling.noise`, built
with the ladder the network was trained on. A backend whose forward process differs brings its own
class with the methods below (the DiffCSP and MatterGen adapters do). docs/guides/adapters.md is the guide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from chggen_plugins.errors import ChggenError


@dataclass(frozen=True)
class CrystalBatch:
    """Several crystals as one flat graph.

    frac_coords     [N, 3] float64  fractional coordinates (noisy during sampling)
    lattice         [B, 3, 3] float64  rows are the cell vectors a, b, c in Angstrom
    atomic_numbers  [N] int64
    batch           [N] int64  index of the crystal each atom belongs to, sorted, 0..B-1
    fixed           [N] bool  True for host atoms (known, kept), False for guests (generated)
    """

    frac_coords: Tensor
    lattice: Tensor
    atomic_numbers: Tensor
    batch: Tensor
    fixed: Tensor

    @property
    def num_crystals(self) -> int:
        return int(self.lattice.shape[0])

    @property
    def num_atoms(self) -> Tensor:
        """[B] atoms per crystal."""
        return torch.bincount(self.batch, minlength=self.num_crystals)

    @property
    def device(self) -> torch.device:
        return self.frac_coords.device

    def atom_lattice(self) -> Tensor:
        """[N, 3, 3] the cell of each atom's crystal."""
        return self.lattice[self.batch]

    def cart_coords(self) -> Tensor:
        """[N, 3] Cartesian positions in Angstrom."""
        return torch.einsum("ni,nij->nj", self.frac_coords, self.atom_lattice())

    def with_frac_coords(self, frac_coords: Tensor) -> "CrystalBatch":
        return replace(self, frac_coords=frac_coords)

    def to(self, device: torch.device | str) -> "CrystalBatch":
        return CrystalBatch(*(t.to(device) for t in (self.frac_coords, self.lattice,
                                                      self.atomic_numbers, self.batch, self.fixed)))


@runtime_checkable
class NoiseProcess(Protocol):
    """The forward process a model was trained with, and one reverse move of each kind.

    Every method takes and returns fractional coordinates [N, 3] (wrapped into [0, 1) where noise was
    added) and draws randomness only from `generator`, so a seeded run is reproducible.

    Optional: `cell(batch) -> [B, 3, 3]`, the periods the noise wraps by in the process's own
    coordinates (rows; the lattice for a Cartesian process, the unit cube for a fractional one).
    Symmetric inpainting projects orbit moves orthogonally in that metric; without it, fractional.
    `prior` must be uniform in the cell: symmetric inpainting reads its draw as Wyckoff parameters.

    Optional, for the few-step solvers ("heun", "ode": steps of the probability-flow ODE
    dx/dsigma = -sigma * score): `sigma(level) -> float`, the noise std at `level` in the process's
    units (0 at level -1), and `displace(frac, delta, batch) -> [N, 3]`, positions moved by `delta`
    given in the process's coordinates and wrapped into the cell. The core's `WrappedVE` processes
    (and so DiffCSP's and MatterGen's) have both; a process without them samples with "pc" only and
    is refused for the others in one line naming it. Partial regeneration (`start_sigma`) uses
    `sigma` too.
    """

    num_levels: int
    corrector_steps: int

    def prior(self, batch: CrystalBatch, generator: torch.Generator) -> Tensor:
        """A sample of every atom from the noisiest level (positions in `batch` are ignored)."""

    def marginal(self, frac0: Tensor, level: int, batch: CrystalBatch,
                 generator: torch.Generator) -> Tensor:
        """x_level ~ q(x_level | x_0 = frac0). Level -1 returns `frac0` itself, bit for bit."""

    def renoise(self, frac: Tensor, from_level: int, to_level: int, batch: CrystalBatch,
                generator: torch.Generator) -> Tensor:
        """x_to ~ q(x_to | x_from) for to_level > from_level (the RePaint jump back)."""

    def predictor_step(self, frac: Tensor, score: Tensor, level: int, batch: CrystalBatch,
                       generator: torch.Generator) -> Tensor:
        """One reverse step from `level` to `level - 1` given the score at `level`."""

    def corrector_step(self, frac: Tensor, score: Tensor, level: int, batch: CrystalBatch,
                       generator: torch.Generator) -> Tensor:
        """One Langevin step that leaves the marginal at `level` invariant."""

    def describe(self) -> str:
        """One line for listings, e.g. 'VE cartesian, sigma 10 -> 0.01 A, 200 levels'."""


@runtime_checkable
class ScoreModel(Protocol):
    """What the sampler asks of a backend. Loading is the adapter's business (see hookspecs).

    `elements`: every atomic number the model can score, host elements included (every atom of the
    crystal is scored); a task with any other element is refused before sampling starts.
    Optional attributes (chggen_plugins.contract.provenance): `trained` (bool) says whether the scores carry
    knowledge, learned or exact (True: trained weights, or a formula such as the analytic model's
    exact score, which has nothing to learn) or come from random initial weights (False, shown as
    UNTRAINED in every table); `provenance` is one line on where the weights or the formula come from.
    `host_conditioned` (bool, default False) says the model was trained to score guests around a
    clean host: the sampler then keeps host atoms at their true positions at every level (instead
    of drawing them from the marginal) and RePaint resamples default to 1; such a model must read
    `batch.fixed` (True: a clean host atom) in `score`. The native model's `--conditional` weights
    are the example.
    """

    noise_process: NoiseProcess
    elements: frozenset[int]  # atomic numbers the model can score: host and guest elements

    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        """[N, 3] score of the noisy positions at `level`, in the noise process's coordinates."""

    def to(self, device: torch.device | str) -> "ScoreModel":
        """Move the model's parameters; the sampler moves the batch."""


def check_score_model(model: object, who: str) -> ScoreModel:
    """The model, if it meets the protocol; otherwise one line naming what is missing or wrong.

    Why: an adapter author's mistake (a missing `noise_process`, `elements` as symbols) used to
    surface as an AttributeError deep in the sampler or an error inside pymatgen. Both `load_model`
    and a model object handed to the API pass here.

    Args:
        model: what a plugin's loader returned, or what a user passed as `model`.
        who: what to name in the message (the plugin and model name, or the object's type).

    Returns:
        `model`, unchanged.

    Raises:
        ChggenError: a missing attribute or method, a noise process that is no NoiseProcess, or
            `elements` that are not atomic numbers.
    """
    missing = [name for name in ("noise_process", "elements", "score", "to") if not hasattr(model, name)]
    if missing:
        raise ChggenError(f"{who}: {type(model).__name__} has no {', '.join(missing)}; a score model implements "
                          "chggen_plugins.contract.protocol.ScoreModel (noise_process, elements, score, to)")
    process = model.noise_process
    absent = [name for name in ("num_levels", "corrector_steps", "prior", "marginal", "renoise", "predictor_step",
                                "corrector_step", "describe") if not hasattr(process, name)]
    if absent:
        raise ChggenError(f"{who}: its noise_process ({type(process).__name__}) has no {', '.join(absent)}; see "
                          "chggen_plugins.contract.protocol.NoiseProcess")
    try:
        elements = list(model.elements)
    except TypeError:
        raise ChggenError(f"{who}: elements must be a set of atomic numbers, got {model.elements!r}") from None
    wrong = [e for e in elements if isinstance(e, bool) or not isinstance(e, int) or not 1 <= e <= 118]
    if wrong or not elements:
        example = f" (e.g. {wrong[0]!r}: use its atomic number, pymatgen's Element({wrong[0]!r}).Z)" \
            if wrong and isinstance(wrong[0], str) else ""
        raise ChggenError(f"{who}: elements must be a non-empty set of atomic numbers 1..118, got "
                          f"{sorted(map(str, wrong or elements))[:5]}{example}")
    return model
