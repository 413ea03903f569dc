"""The Python API: structures in, structures out, one batched sampler run in between."""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import numpy as np
import torch
from ase import Atoms
from pymatgen.core import Element, Lattice, Structure

from chggen_plugins.contract.devices import check_device
from chggen_plugins.contract.protocol import ScoreModel
from chggen_plugins.contract.registry import load_model
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.inpaint import SamplerSettings, sample, start_level_of
from chggen_plugins.structures.batch import InpaintTask, batch_to_structures, tasks_to_batch, tasks_to_orbits
from chggen_plugins.structures.host import select_guests
from chggen_plugins.structures.io import StructureLike, check_lattice, to_atoms, to_structure

ModelLike = Union[ScoreModel, str]


def _resolve_model(model: ModelLike, device: str) -> ScoreModel:
    check_device(device)
    if isinstance(model, str):
        return load_model(model, device=device)
    return model.to(device)


def with_levels(model: ScoreModel, levels: int | None) -> ScoreModel:
    """The model on a ladder of `levels` noise levels over its own sigma range, where its network is
    conditioned on sigma (or t) and so offers one (`with_levels`: native, MatterGen, analytic);
    DiffCSP's network knows only its own integer steps, so its ladder is fixed. None: as it is."""
    if levels is None:
        return model
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
        raise ChggenError(f"levels: {levels!r} must be an integer >= 2")
    if not hasattr(model, "with_levels"):
        raise ChggenError(f"levels: {type(model).__name__} has a fixed ladder of "
                          f"{model.noise_process.num_levels} noise levels; leave --levels out")
    return model.with_levels(levels)


def check_elements(model: ScoreModel, tasks: Sequence[InpaintTask]) -> None:
    for task in tasks:
        unknown = sorted(set(task.atomic_numbers) - set(model.elements))
        if unknown:
            symbols = ", ".join(Element.from_Z(z).symbol for z in unknown)
            known = ", ".join(Element.from_Z(z).symbol for z in sorted(model.elements))
            raise ChggenError(f"{task.label or 'task'}: element(s) {symbols} unknown to "
                              f"{type(model).__name__}, which knows {known}")


def sample_tasks(tasks: Sequence[InpaintTask], model: ModelLike, seed: int | None = None,
                 settings: SamplerSettings = SamplerSettings(), device: str = "cpu",
                 progress: bool = False, levels: int | None = None,
                 start_sigma: float | None = None) -> list[list[Structure]]:
    """All samples of all tasks in one batch (one score call per step); a list of samples per task.

    Symmetric and free tasks share the batch. The same seed, tasks and model give bit-identical
    structures on CPU (the seed also draws the Wyckoff assignments of symmetric tasks).
    `start_sigma`: every task has a `start` placement, noised by this much (the model's noise units,
    A for native) and refined from there (partial regeneration).
    """
    model = with_levels(_resolve_model(model, device), levels)
    tasks = list(tasks)
    check_elements(model, tasks)
    without = [task.label or f"task {i}" for i, task in enumerate(tasks) if task.start is None]
    if start_sigma is not None and without:
        raise ChggenError(f"start sigma {start_sigma:g} given, but {', '.join(without[:3])} has no start placement")
    if start_sigma is None and len(without) < len(tasks):
        raise ChggenError("a start placement needs a start sigma: how far the placement may move (e.g. 0.5 A)")
    start_level = None if start_sigma is None else start_level_of(model, start_sigma)
    batch = tasks_to_batch(tasks).to(device)
    generator = torch.Generator(device=device)
    if seed is None:
        seed = generator.seed()
    else:
        generator.manual_seed(seed)
    orbits, assignments = tasks_to_orbits(tasks, np.random.default_rng(seed))
    result = sample(model, batch, settings, generator, progress=progress,
                    orbits=orbits.to(device) if orbits is not None else None, start_level=start_level)
    return batch_to_structures(tasks, result.frac_coords, assignments)


def inpaint(host: StructureLike, guests: Mapping[str, int], model: ModelLike, n_samples: int = 1,
            seed: int | None = None, jump_length: int = 10, resamples: int | None = None, device: str = "cpu",
            progress: bool = False, symmetric: bool = False, space_group: int | None = None,
            levels: int | None = None, start: StructureLike | None = None,
            start_sigma: float | None = None, regenerate_existing: bool = False) -> list[Structure] | list[Atoms]:
    """Generate `guests` (e.g. {"Li": 4}) into a fixed `host`; returns `n_samples` structures.

    The host comes back bit for bit; lattice and species are untouched. Given ASE Atoms, returns Atoms.
    `symmetric=True` keeps the host's space group (or the largest subgroup that fits the guest counts,
    or `space_group`): each sample's guests sit on Wyckoff orbits, recorded in its `properties`.
    `levels` resamples the model's noise ladder (see `with_levels`). `resamples=None`: RePaint's r
    is the model's default (3; 1 for a host-conditioned model). `start` (a structure in the host's
    cell holding a placement of the guests) with `start_sigma` (model noise units, A for native)
    refines that placement instead of sampling from nothing: it is noised by `start_sigma` and the
    walk descends from the level of that noise. `regenerate_existing=True`: the host's own atoms of
    the guest elements are taken out and generated again with the new ones (a host with 2 Li and
    guests {"Li": 2} gives 4 new Li); False keeps them as host. Other selections of atoms to
    regenerate (site indices, a sphere): `chggen_plugins.structures.host.select_guests`, then inpaint its host.
    """
    structure, was_atoms = to_structure(host)
    present = [symbol for symbol in guests if symbol in structure.composition] if regenerate_existing else []
    if present:
        structure, existing = select_guests(structure, species=present)
        guests = {symbol: count + existing.get(symbol, 0) for symbol, count in guests.items()}
    placement = None if start is None else to_structure(start, "start")[0]
    task = InpaintTask(structure, dict(guests), n_samples, symmetric=symmetric,
                       space_group=space_group, start=placement)
    samples = sample_tasks([task], model, seed, SamplerSettings(jump_length, resamples), device, progress,
                           levels, start_sigma)[0]
    return [to_atoms(s) for s in samples] if was_atoms else samples


def generate(lattice: Lattice | Structure | Atoms | np.ndarray, composition: Mapping[str, int],
             model: ModelLike, n_samples: int = 1, seed: int | None = None, jump_length: int = 10,
             resamples: int = 1, device: str = "cpu", progress: bool = False,
             levels: int | None = None) -> list[Structure]:
    """Unconditional generation of every atom of `composition` in a fixed cell: the inpainting loop
    with an empty host. RePaint jumps are off by default (nothing to harmonise with)."""
    if isinstance(lattice, Structure):
        lattice = lattice.lattice
    elif isinstance(lattice, Atoms):
        lattice = Lattice(np.asarray(lattice.cell))
    elif not isinstance(lattice, Lattice):
        array = np.asarray(lattice, dtype=float)
        if array.shape != (3, 3):
            raise ChggenError(f"lattice: expected a 3x3 matrix, got shape {array.shape}")
        lattice = Lattice(array)
    check_lattice(lattice, "lattice")
    task = InpaintTask(Structure(lattice, [], []), dict(composition), n_samples, label="composition")
    return sample_tasks([task], model, seed, SamplerSettings(jump_length, resamples), device, progress,
                        levels)[0]
