"""A MatterGen checkpoint as a chggen ScoreModel: positions scored, lattice and species held fixed.

Each call builds MatterGen's own batch (`ChemGraph`s collated by MatterGen) with the clean lattice,
the real species of host and guests (never the mask token) and the noisy positions, asks
`DiffusionModule.score_fn` (network output "score x std" divided by the pos SDE's std) at the
level's time t, and returns the position score in the noise process's stretched coordinates.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from pymatgen.core import Element
from torch import Tensor

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError

from .checkpoint import load_module, resolve_source
from .noise import MatterGenPositionVE
from .runtime import mattergen_module

# All published MatterGen checkpoints were trained on mp_20 / alex_mp_20: cells of at most 20 atoms.
TRAINED_MAX_ATOMS = 20


def vocabulary() -> frozenset[int]:
    """Atomic numbers MatterGen generates and was trained on (its SELECTED_ATOMIC_NUMBERS)."""
    return frozenset(mattergen_module("common.utils.globals").SELECTED_ATOMIC_NUMBERS)


def check_species(numbers: Tensor, where: str = "structure") -> None:
    unknown = sorted(set(numbers.unique().tolist()) - vocabulary())
    if unknown:
        symbols = ", ".join(Element.from_Z(z).symbol if 0 < z < 119 else f"Z={z}" for z in unknown)
        raise ChggenError(f"{where}: element(s) {symbols} outside MatterGen's vocabulary (it was trained "
                          f"on {len(vocabulary())} elements from H to Bi, without noble gases, Tc, Pm)")


def warn_if_large(num_atoms: Tensor) -> None:
    largest = int(num_atoms.max())
    if largest > TRAINED_MAX_ATOMS:
        warnings.warn(f"MatterGen: crystals of up to {largest} atoms, but the published checkpoints were "
                      f"trained on cells of at most {TRAINED_MAX_ATOMS}; expect poorer scores",
                      stacklevel=3)


def neighbour_counts(frac: Tensor, lattice: Tensor, cutoff: float, max_images: int) -> Tensor:
    """[n] neighbours of each atom of one crystal within `cutoff` (periodic images included), with
    the image range MatterGen's radius graph uses (ceil(cutoff / plane spacing), capped)."""
    reciprocal = torch.linalg.inv(lattice).T
    reps = [min(int(torch.ceil(cutoff * reciprocal[i].norm())), max_images) for i in range(3)]
    ranges = [torch.arange(-r, r + 1, dtype=lattice.dtype, device=lattice.device) for r in reps]
    shifts = torch.cartesian_prod(*ranges) @ lattice  # [images, 3]
    cart = frac @ lattice
    delta = cart[None, :, None, :] - cart[:, None, None, :] + shifts[None, None, :, :]
    squared = (delta ** 2).sum(-1)
    return ((squared <= cutoff ** 2) & (squared > 1e-4)).sum(dim=(1, 2))


def check_neighbours(batch: CrystalBatch, frac: Tensor, cutoff: float, max_images: int,
                     level: int) -> None:
    """GemNet needs, in every crystal, an atom with two neighbours (a bond pair for its triplets);
    without any it fails with an IndexError deep inside. A lattice row shorter than the cutoff
    gives every atom its two images as neighbours, so only sparse cells are counted."""
    short_row = (batch.lattice.norm(dim=2) < cutoff).any(dim=1)
    for crystal in torch.nonzero(~short_row).flatten().tolist():
        atoms = batch.batch == crystal
        counts = neighbour_counts(frac[atoms], batch.lattice[crystal], cutoff, max_images)
        if int(counts.max()) < 2:
            raise ChggenError(f"crystal {crystal} (noise level {level}): no atom has two neighbours "
                              f"within MatterGen's {cutoff:g} A cutoff, which its GemNet needs; the "
                              "cell is too sparse for this model")


class MatterGenScoreModel:
    """Position score of a MatterGen DiffusionModule on MatterGen's own noise ladder."""

    def __init__(self, module: torch.nn.Module, noise_process: MatterGenPositionVE | None = None,
                 source: str = "") -> None:
        self.module = module.eval()
        self.diffusion = module.diffusion_module
        self.noise_process = noise_process or MatterGenPositionVE()
        self.elements = vocabulary()
        self.source = source
        gemnet = self.diffusion.model.gemnet
        self.cutoff = float(gemnet.cutoff)
        self.max_images = int(gemnet.max_cell_images_per_dim)
        self._static_for: tuple[Tensor, Tensor, Tensor] | None = None
        self._graph = None

    @classmethod
    def load(cls, source: str, device: str = "cpu") -> "MatterGenScoreModel":
        """From a checkpoint directory (or published name), on the checkpoint's own grid: as many
        levels as its species diffusion has steps, which MatterGen's sampler must use too (1000 in
        the published ones; 1000 when it has none)."""
        directory = resolve_source(source)
        module, _ = load_module(Path(directory), device)
        species = module.diffusion_module.corruption.discrete_corruptions.get("atomic_numbers")
        process = MatterGenPositionVE(int(species.N)) if species is not None else MatterGenPositionVE()
        return cls(module, process, source=str(directory))

    def with_levels(self, num_levels: int) -> "MatterGenScoreModel":
        """The same network on another grid over t in (0, 1] (it is conditioned on t itself)."""
        process = self.noise_process
        return MatterGenScoreModel(self.module, MatterGenPositionVE(num_levels, process.corrector_steps,
                                                                    process.snr), self.source)

    @property
    def device(self) -> torch.device:
        return next(self.module.parameters()).device

    def to(self, device: torch.device | str) -> "MatterGenScoreModel":
        self.module.to(device)
        self._static_for = None
        return self

    def chemgraph(self, batch: CrystalBatch):
        """MatterGen's batch for `batch` (float32 positions and cells, real atomic numbers)."""
        ChemGraph = mattergen_module("common.data.chemgraph").ChemGraph
        collate = mattergen_module("common.data.collate").collate
        graphs = []
        for crystal in range(batch.num_crystals):
            atoms = batch.batch == crystal
            count = int(atoms.sum())
            graphs.append(ChemGraph(pos=batch.frac_coords[atoms].float(),
                                    cell=batch.lattice[crystal:crystal + 1].float(),
                                    atomic_numbers=batch.atomic_numbers[atoms],
                                    num_atoms=torch.tensor([count], device=batch.device),
                                    num_nodes=count))
        return collate(graphs).to(self.device)

    def _graph_for(self, batch: CrystalBatch):
        """The collated graph, rebuilt (and the input checked) only when lattice, species or crystal
        index change: a sampling run changes positions only."""
        key = (batch.lattice, batch.atomic_numbers, batch.batch)
        if self._static_for is None or any(a is not b for a, b in zip(self._static_for, key)):
            check_species(batch.atomic_numbers)
            warn_if_large(batch.num_atoms)
            self._graph = self.chemgraph(batch)
            self._static_for = key
        return self._graph.replace(pos=batch.frac_coords.to(self.device, torch.float32))

    @torch.no_grad()
    def fractional_score(self, batch: CrystalBatch, level: int) -> Tensor:
        """[N, 3] MatterGen's own position score (per unit fractional coordinate) at `level`."""
        t = self.noise_process.time(level)
        check_neighbours(batch, batch.frac_coords, self.cutoff, self.max_images, level)
        graph = self._graph_for(batch)
        times = torch.full((batch.num_crystals,), t, device=self.device)
        return self.diffusion.score_fn(graph, times).pos

    def score(self, batch: CrystalBatch, level: int) -> Tensor:
        stretch = self.noise_process.stretch(batch)[batch.batch].unsqueeze(1)
        return self.fractional_score(batch, level).to(stretch.device, torch.float64) / stretch
