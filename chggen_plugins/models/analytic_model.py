"""An exact score model for sanity checks: independent wrapped Gaussians around a reference crystal.

The "data" density puts each atom of a crystal in a Gaussian of std `width` around its site in a
reference structure, wrapped by the periodic cell of the noise process. Convolved with the VE kernel
at level l this stays a wrapped Gaussian of std sqrt(width^2 + sigma_l^2), whose score is computed
exactly: by a sum over lattice images when the std is small against the cell, and by its Fourier
series (Jacobi's other form of the same theta function) when it is large. A correct sampler driven
by this model must return guests distributed as that Gaussian; a sampler with wrong maths does not.

Atoms map to reference sites element by element: the k-th atom of element Z in a crystal targets the
k-th site of element Z in the reference, so the reference may list its species in any order.
Registered as the models `analytic` and `analytic-fractional` by `analytic.py`.
"""

from __future__ import annotations

import math

import torch
from pymatgen.core import Structure
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.noise import WrappedVE

_TAIL = 6.0  # standard deviations kept in either sum: relative truncation error ~exp(-18)


def _integer_grid(extent: int, like: Tensor) -> Tensor:
    """[(2*extent+1)^3, 3] all integer triples in [-extent, extent]^3."""
    axis = torch.arange(-extent, extent + 1, dtype=like.dtype, device=like.device)
    return torch.cartesian_prod(axis, axis, axis)


def wrapped_gaussian_score(diff_frac: Tensor, cell: Tensor, std: float) -> Tensor:
    """[N, 3] exact score of an isotropic Gaussian of `std`, wrapped by `cell`, at offset `diff_frac`.

    diff_frac  [N, 3] position minus centre, fractional (any image)
    cell       [N, 3, 3] rows are the periodic translations, in the coordinates the std is given in
    Returns the gradient of the log density in those coordinates.
    """
    diff_frac = diff_frac - torch.round(diff_frac)
    heights = torch.linalg.det(cell).abs() / torch.linalg.cross(cell[:, [1, 2, 0]], cell[:, [2, 0, 1]]).norm(dim=2).max(dim=1).values
    longest = cell.norm(dim=2).max()
    images = math.ceil(_TAIL * std / float(heights.min()))
    harmonics = math.ceil(_TAIL * float(longest) / (2 * math.pi * std))
    if images <= harmonics:
        offsets = diff_frac.unsqueeze(1) + _integer_grid(images, diff_frac)  # [N, I, 3]
        vectors = torch.einsum("nki,nij->nkj", offsets, cell)
        weights = torch.softmax(-vectors.pow(2).sum(dim=2) / (2 * std ** 2), dim=1)
        return -(weights.unsqueeze(2) * vectors).sum(dim=1) / std ** 2
    reciprocal = 2 * math.pi * torch.linalg.inv(cell).transpose(1, 2)  # rows b_j, a_i . b_j = 2 pi
    waves = torch.einsum("ki,nij->nkj", _integer_grid(harmonics, diff_frac), reciprocal)  # [N, K, 3]
    damping = torch.exp(-0.5 * std ** 2 * waves.pow(2).sum(dim=2))
    phase = 2 * math.pi * torch.einsum("ki,ni->nk", _integer_grid(harmonics, diff_frac), diff_frac)
    density = (damping * torch.cos(phase)).sum(dim=1)
    gradient = -(damping * torch.sin(phase)).unsqueeze(2).mul(waves).sum(dim=1)
    return gradient / density.unsqueeze(1)


class AnalyticSiteModel:
    """Exact score of Gaussians of std `width` around the sites of `reference` (see module doc)."""

    def __init__(self, reference: Structure, width: float, noise_process: WrappedVE) -> None:
        if width <= 0:
            raise ChggenError(f"analytic model width must be > 0, got {width}")
        if not reference.is_ordered:
            raise ChggenError("analytic model reference must be an ordered structure")
        self.noise_process = noise_process
        self.width = width
        numbers = torch.tensor(reference.atomic_numbers, dtype=torch.long)
        self.elements = frozenset(numbers.tolist())
        rank = _rank_within_element(numbers, torch.zeros_like(numbers))
        self._sites = torch.full((119, int(rank.max()) + 1, 3), float("nan"), dtype=torch.float64)
        self._sites[numbers, rank] = torch.tensor(reference.frac_coords, dtype=torch.float64)
        self._counts = torch.bincount(numbers, minlength=119)
        # an exact score, nothing learned: reported as trained so tables do not call it random
        self.trained = True
        self.provenance = (f"exact score of Gaussians (width {width:g}) around the "
                           f"{reference.composition.reduced_formula} reference sites")

    def with_levels(self, num_levels: int) -> "AnalyticSiteModel":
        """The same Gaussians on another ladder over the same sigma range (the score is exact at
        any sigma)."""
        process = self.noise_process
        ladder = type(process)(float(process.sigmas[-1]), float(process.sigmas[0]), num_levels,
                               process.corrector_steps, process.snr)
        model = AnalyticSiteModel.__new__(AnalyticSiteModel)
        model.__dict__.update(self.__dict__, noise_process=ladder)
        return model

    def to(self, device: torch.device | str) -> "AnalyticSiteModel":
        self._sites = self._sites.to(device)
        self._counts = self._counts.to(device)
        return self

    def targets(self, batch: CrystalBatch) -> Tensor:
        """[N, 3] the reference site (fractional) each atom of the batch is drawn towards."""
        numbers = batch.atomic_numbers
        rank = _rank_within_element(numbers, batch.batch)
        over = rank >= self._counts[numbers]
        if over.any():
            atom = int(over.nonzero()[0])
            raise ChggenError(f"crystal {int(batch.batch[atom])} has more atoms of Z={int(numbers[atom])} "
                              f"than the analytic model's reference ({int(self._counts[numbers[atom]])})")
        return self._sites[numbers, rank]

    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        std = math.sqrt(self.width ** 2 + self.noise_process.sigma(level) ** 2)
        cell = self.noise_process.cell(batch)[batch.batch]
        return wrapped_gaussian_score(batch.frac_coords - self.targets(batch), cell, std)


def _rank_within_element(numbers: Tensor, crystal: Tensor) -> Tensor:
    """[N] how many earlier atoms of the same crystal have the same element."""
    key = crystal * 128 + numbers
    order = torch.sort(key, stable=True).indices
    sorted_key = key[order]
    starts = torch.searchsorted(sorted_key, sorted_key, right=False)
    rank = torch.empty_like(numbers)
    rank[order] = torch.arange(len(numbers), device=numbers.device) - starts
    return rank

