"""Free atoms tied into symmetry orbits: the sampler's constraint for symmetric inpainting, as tensors.

An orbit is a representative atom r on a Wyckoff position (origin o, free directions D) and copies
x_i = R_i x_r + t_i (fractional). The sampler moves every atom as usual and then asks the constraint
to put the orbit back together (DiffCSP++'s recipe, applied to inpainting):

* score: each copy's score is taken back to the representative by the inverse operation, averaged
  over the orbit, projected onto the free directions and sent out again to every copy;
* move: the representative keeps its own step (drift plus its own noise, drawn once, not averaged
  over its m copies, which would shrink the spread by sqrt(m)) projected onto the free directions;
  every copy is then rebuilt from it. A position with no free direction never moves.

Projections are orthogonal in the metric of the noise process (its `cell`: Cartesian for
`CartesianVE`, fractional for `FractionalVE`; fractional for a process without one), because that is
the metric its Gaussian noise is isotropic in. Atoms in no orbit (hosts, free guests) are passed
through untouched, so no constraint is the identity and the loop has one code path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.sampling.noise import wrap_unit


@dataclass(frozen=True)
class OrbitConstraint:
    """Per atom of a batch (N atoms); atoms outside any orbit have `in_orbit` False.

    representative  [N] long     index of the atom carrying the orbit's representative (itself if none)
    rotation        [N, 3, 3]    R_i, fractional: x_i = R_i x_rep + t_i
    translation     [N, 3]       t_i
    origin          [N, 3]       the Wyckoff position's point at zero free parameters (rows of reps)
    free            [N, 3, 3]    rows span its free directions (fractional); zero rows where fixed
    in_orbit        [N] bool
    """

    representative: Tensor
    rotation: Tensor
    translation: Tensor
    origin: Tensor
    free: Tensor
    in_orbit: Tensor

    @classmethod
    def none(cls, batch: CrystalBatch) -> "OrbitConstraint":
        """No atom in any orbit: every method returns its input."""
        n = len(batch.atomic_numbers)
        eye = torch.eye(3, dtype=torch.float64, device=batch.device).expand(n, 3, 3)
        zeros = torch.zeros(n, 3, dtype=torch.float64, device=batch.device)
        return cls(torch.arange(n, device=batch.device), eye, zeros, zeros, eye,
                   torch.zeros(n, dtype=torch.bool, device=batch.device))

    @property
    def active(self) -> bool:
        return bool(self.in_orbit.any())

    def to(self, device: torch.device | str) -> "OrbitConstraint":
        return OrbitConstraint(*(t.to(device) for t in (self.representative, self.rotation, self.translation,
                                                         self.origin, self.free, self.in_orbit)))

    def bind(self, batch: CrystalBatch, process: object) -> "BoundOrbits":
        """Precompute the maps in the process's metric for this batch (its lattice is fixed)."""
        cell_of = getattr(process, "cell", None)
        cell = cell_of(batch) if cell_of is not None else \
            torch.eye(3, dtype=torch.float64, device=batch.device).expand(batch.num_crystals, 3, 3)
        cell = cell.to(torch.float64)[batch.batch]                        # [N, 3, 3] rows: periods
        inverse = torch.linalg.inv(cell)
        # a displacement row v (process coordinates) of the representative moves copy i by v @ out_i
        out = inverse @ self.rotation.transpose(1, 2) @ cell
        directions = self.free @ cell                                     # rows, process coordinates
        projector = torch.linalg.pinv(directions, atol=1e-9) @ directions  # onto their row space
        return BoundOrbits(self, cell, inverse, out, torch.linalg.inv(out), projector)


@dataclass(frozen=True)
class BoundOrbits:
    """An `OrbitConstraint` with its maps in the metric of one process on one batch."""

    orbits: OrbitConstraint
    cell: Tensor        # [N, 3, 3] process cell per atom
    inverse: Tensor     # [N, 3, 3]
    out: Tensor         # [N, 3, 3] representative -> copy, process coordinates (row vectors)
    back: Tensor        # [N, 3, 3] copy -> representative
    projector: Tensor   # [N, 3, 3] onto the representative's free directions (row vectors)

    def prior(self, frac: Tensor) -> Tensor:
        """Uniform on each orbit's Wyckoff position: the process's uniform draw of the representative
        is read as its free parameters."""
        if not self.orbits.active:
            return frac
        o = self.orbits
        rep = wrap_unit(o.origin + torch.einsum("ni,nij->nj", frac, o.free))
        return self._rebuild(torch.where(self._is_rep().unsqueeze(1), rep, frac), frac)

    def score(self, score: Tensor) -> Tensor:
        """The orbit-mean score of each representative in its free directions, sent to every copy."""
        if not self.orbits.active:
            return score
        o = self.orbits
        score = score.to(torch.float64)
        taken_back = torch.einsum("ni,nij->nj", score, self.back)
        total = torch.zeros_like(score).index_add_(0, o.representative, taken_back)
        members = torch.zeros(len(score), dtype=score.dtype, device=score.device).index_add_(
            0, o.representative, torch.ones_like(score[:, 0]))
        mean = total / members.clamp(min=1).unsqueeze(1)
        projected = torch.einsum("ni,nij->nj", mean, self.projector)[o.representative]
        symmetric = torch.einsum("ni,nij->nj", projected, self.out)
        return torch.where(o.in_orbit.unsqueeze(1), symmetric, score)

    def follow(self, before: Tensor, after: Tensor) -> Tensor:
        """Positions after a move of every atom, with each orbit put back together."""
        if not self.orbits.active:
            return after
        step = after - before
        step = step - torch.round(step)                                   # the move, minimum image
        along = torch.einsum("ni,nij->nj", torch.einsum("ni,nij->nj", step, self.cell), self.projector)
        rep = wrap_unit(before + torch.einsum("ni,nij->nj", along, self.inverse))
        return self._rebuild(torch.where(self._is_rep().unsqueeze(1), rep, after), after)

    def _is_rep(self) -> Tensor:
        o = self.orbits
        return o.in_orbit & (o.representative == torch.arange(len(o.representative), device=o.representative.device))

    def _rebuild(self, reps: Tensor, others: Tensor) -> Tensor:
        """Every orbit atom from its representative's row in `reps`; other atoms from `others`."""
        o = self.orbits
        copies = wrap_unit(torch.einsum("nij,nj->ni", o.rotation, reps[o.representative]) + o.translation)
        return torch.where(o.in_orbit.unsqueeze(1), copies, others)
