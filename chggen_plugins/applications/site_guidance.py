"""Site-restricted inpainting: guests confined to a list of allowed sites (ordering a disordered crystal).

Why a score-model wrapper: the sampler stays the one loop for every backend and option; a restriction is a change of
the density the guests are drawn from, and a density change is a score change. `SiteGuidedModel`
returns the model's score plus a pull of every guest towards the sites that list its species.

The pull is a soft assignment, not an independent pull per guest. An independent mixture (each guest
drawn to the nearest allowed site, the first design) let several guests settle in one site basin
wherever the model's score is weak (tested: with a score-free model 5 of 8 Li shared 2 sites), so
the final assignment then had to move them by a bond length. Here, at every score call, the
Gaussian affinities exp(-d_ik^2 / 2 s^2) of guest i to site k (minimum image; forbidden
species-site pairs excluded) are made doubly stochastic by Sinkhorn iterations, with one flat row
per vacancy so each site is claimed once in total; guest i is pulled by sum_k P_ik (site_k - x_i) / s^2,
the score of a Gaussian of std s around its (soft) site. s = sqrt(width^2 + sigma_l^2), the site
Gaussian noised to the current level, as a model's own score is: at high noise P is nearly uniform
and the pull, of size cell / s^2, is negligible (the model alone places the guests); at middle noise
it is as stiff as the model's score (meant to leave the model the choice of basin; on Li2S with
the native model it overrode it: docs/guides/ordering.md);
once sigma is below `width` it is stiffer than any model broader than `width` (1/width^2) and holds
each guest at its site. Stable on any ladder: the predictor's step gap x 1/s^2 is below one
displacement (gap = sigma_l^2 - sigma_(l-1)^2 < s^2), the corrector's eps / s^2 below 2 snr^2.
(A pull four times stiffer than the model at middle noise, tried first, overrode it more.)

`assign_to_sites` ends every sample with a true ordering: each guest moved onto a distinct allowed
site by a minimum-total-distance assignment (scipy's linear_sum_assignment on minimum-image
distances). The largest distance a guest moved there (`site_distance`) says how much the pull did:
a few tenths of an A with it, about a bond length without it (tests/test_ordering.py).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import torch
from pymatgen.core import Element, Lattice, Structure
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch, ScoreModel
from chggen_plugins.errors import ChggenError

WIDTH = 0.1  # A: std of the site Gaussians at the end: guests finish within ~2 width of a site
SINKHORN_ITERATIONS = 50
_FORBIDDEN = 1e6  # cost of a species on a site that does not list it


@dataclass(frozen=True)
class AllowedSites:
    """Sites guests may occupy in one cell: fractional coordinates [S, 3] and, per site, the element
    symbols allowed there (a mixed Li/Na site lists both; a vacancy is a site left empty)."""

    lattice: Lattice
    frac_coords: np.ndarray
    species: tuple[frozenset[str], ...]

    def __post_init__(self) -> None:
        if len(self.frac_coords) != len(self.species) or len(self.species) == 0:
            raise ChggenError(f"allowed sites: {len(self.frac_coords)} positions for {len(self.species)} "
                              "species lists; give one list per site, at least one site")

    def check_counts(self, guests: Mapping[str, int], where: str) -> None:
        """Refuse counts no ordering of these sites can hold (per species, and all together)."""
        for symbol, count in guests.items():
            room = sum(symbol in allowed for allowed in self.species)
            if count > room:
                raise ChggenError(f"{where}: {count} {symbol} but only {room} allowed site(s) list {symbol}")
        if sum(guests.values()) > len(self.species):
            raise ChggenError(f"{where}: {sum(guests.values())} guests for {len(self.species)} allowed sites")

    def mask(self) -> Tensor:
        """[119, S] bool: which sites each atomic number may use."""
        table = torch.zeros(119, len(self.species), dtype=torch.bool)
        for k, allowed in enumerate(self.species):
            for symbol in allowed:
                table[Element(symbol).Z, k] = True
        return table


class SiteGuidedModel:
    """A ScoreModel: the wrapped model's score plus `strength` x the exact score of the noised site
    mixture for every free (guest) atom (see the module doc). Host atoms get the model's score only."""

    def __init__(self, model: ScoreModel, sites: AllowedSites, width: float = WIDTH,
                 strength: float = 1.0) -> None:
        if not width > 0 or not strength >= 0:
            raise ChggenError(f"site guidance: width {width} must be > 0 A and strength {strength} >= 0")
        self.model, self.sites, self.width, self.strength = model, sites, width, strength
        self.noise_process = model.noise_process
        self.elements = model.elements
        self.trained = getattr(model, "trained", None)
        self.provenance = getattr(model, "provenance", None)
        self._centres = torch.tensor(sites.frac_coords, dtype=torch.float64)
        self._mask = sites.mask()
        self._lattice = torch.tensor(sites.lattice.matrix, dtype=torch.float64)

    def to(self, device: torch.device | str) -> "SiteGuidedModel":
        self.model = self.model.to(device)
        self._centres, self._mask, self._lattice = (t.to(device) for t in (self._centres, self._mask, self._lattice))
        return self

    def with_levels(self, num_levels: int) -> "SiteGuidedModel":
        return SiteGuidedModel(self.model.with_levels(num_levels), self.sites, self.width, self.strength)

    def pull(self, batch: CrystalBatch, level: int) -> Tensor:
        """[N, 3] the soft-assignment pull at `level` for guests (zero for host atoms); every crystal
        of the batch is one sample of the same task (same cell, same guests in the same order)."""
        if not torch.allclose(batch.lattice, self._lattice.expand_as(batch.lattice), atol=1e-6):
            raise ChggenError("site guidance: every crystal of the batch must have the cell the allowed sites "
                              "were given in")
        guests = ~batch.fixed
        pull = torch.zeros_like(batch.frac_coords)
        if not guests.any():
            return pull
        crystals, n_sites = batch.num_crystals, len(self._centres)
        numbers = batch.atomic_numbers[guests].view(crystals, -1)  # [B, G]; view fails if counts differ
        period = self.noise_process.cell(batch)[0]  # rows: the periods in the process's coordinates
        # 1 A in process units: 1 for a Cartesian process, 1 / V^(1/3) for a fractional one
        scale = float((torch.linalg.det(period).abs() / torch.linalg.det(self._lattice).abs()) ** (1 / 3))
        std = math.sqrt((self.width * scale) ** 2 + self.noise_process.sigma(level) ** 2)
        delta = self._centres - batch.frac_coords[guests].view(crystals, -1, 1, 3)  # [B, G, S, 3]
        vectors = (delta - torch.round(delta)) @ period  # guest -> site, minimum image (fractional)
        logits = (-vectors.pow(2).sum(dim=3) / (2 * std ** 2)).masked_fill(~self._mask[numbers], -math.inf)
        vacancies = torch.zeros(crystals, n_sites - numbers.shape[1], n_sites, dtype=logits.dtype,
                                device=logits.device)
        weights = sinkhorn(torch.cat([logits, vacancies], dim=1))[:, :numbers.shape[1]]
        pull[guests] = ((weights.unsqueeze(3) * vectors).sum(dim=2) / std ** 2).reshape(-1, 3)
        return pull

    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        base = self.model.score(batch, level).to(torch.float64)
        return base + self.strength * self.pull(batch, level)


def sinkhorn(logits: Tensor, iterations: int = SINKHORN_ITERATIONS) -> Tensor:
    """[B, S, S] doubly stochastic matrices from log-affinities (rows and columns sum to 1; -inf
    entries stay 0), by alternating log-domain normalisation."""
    log = logits
    for _ in range(iterations):
        log = log - torch.logsumexp(log, dim=2, keepdim=True)
        log = log - torch.logsumexp(log, dim=1, keepdim=True)
    return log.exp()


def assign_to_sites(structure: Structure, n_host: int, sites: AllowedSites) -> tuple[Structure, float]:
    """The sample with each guest (sites after the first `n_host`) moved onto a distinct allowed site
    that lists its species, by the assignment of least total distance; and the largest distance (A) a
    guest moved (0 when the sampler already put them there)."""
    guests = list(range(n_host, len(structure)))
    if not guests:
        return structure.copy(), 0.0
    frac = structure.frac_coords[guests]
    delta = frac[:, None, :] - sites.frac_coords[None, :, :]
    delta -= np.round(delta)
    # minimum image for skewed cells: check the 27 neighbouring images
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)])
    cart = (delta[:, :, None, :] + shifts[None, None]) @ sites.lattice.matrix
    distance = np.linalg.norm(cart, axis=3).min(axis=2)
    symbols = [structure[i].specie.symbol for i in guests]
    allowed = np.array([[symbol in listed for listed in sites.species] for symbol in symbols])
    cost = np.where(allowed, distance, _FORBIDDEN)
    rows, cols = linear_sum_assignment(cost)
    if np.any(cost[rows, cols] >= _FORBIDDEN):
        raise ChggenError(f"{structure.composition.formula}: the guests cannot all sit on allowed sites "
                          "of their species")
    ordered = structure.copy()
    for row, col in zip(rows, cols):
        ordered[guests[row]] = ordered[guests[row]].species, sites.frac_coords[col]
    return ordered, float(distance[rows, cols].max())


def random_orderings(host: Structure, guests: Mapping[str, int], sites: AllowedSites, count: int,
                     rng: np.random.Generator) -> list[Structure]:
    """`count` orderings drawn uniformly: each species in turn on a uniformly random set of the
    still-empty sites that list it (uniform over orderings when every site lists every species)."""
    out = []
    for _ in range(count):
        structure, free = host.copy(), set(range(len(sites.species)))
        for symbol, n in guests.items():
            options = sorted(k for k in free if symbol in sites.species[k])
            chosen = rng.choice(options, size=n, replace=False)
            for k in chosen:
                structure.append(symbol, sites.frac_coords[k])
            free -= set(int(k) for k in chosen)
        out.append(structure)
    return out

