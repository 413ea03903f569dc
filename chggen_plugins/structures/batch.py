"""Inpainting tasks <-> one CrystalBatch: pymatgen on one side, flat tensors on the other."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np
import torch
from pymatgen.core import Element, Structure

from chggen_plugins.contract.protocol import CrystalBatch
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling.orbits import OrbitConstraint
from chggen_plugins.structures.io import close_pairs
from chggen_plugins.structures.room import check_room
from chggen_plugins.structures.wyckoff import ORBIT_CHOICES, GuestPlan, Orbit, plan_guests


def parse_guests(guests: Mapping[str, int], where: str = "guests") -> dict[str, int]:
    """{"Li": 4} checked: known element symbols, positive integer counts."""
    if not guests:
        raise ChggenError(f"{where}: no guest atoms given (e.g. {{'Li': 4}} or --guest Li:4)")
    checked = {}
    for symbol, count in guests.items():
        if not Element.is_valid_symbol(symbol):
            raise ChggenError(f"{where}: {symbol!r} is not an element symbol")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ChggenError(f"{where}: count for {symbol} must be a positive integer, got {count!r}")
        checked[symbol] = count
    return checked


@dataclass(frozen=True)
class InpaintTask:
    """Generate `guests` into a fixed `host`, `n_samples` times. An empty host is unconditional.

    `symmetric=True` puts the guests on Wyckoff orbits of the host's space group (or of its largest
    subgroup that fits the counts, or of `space_group`), drawn afresh for every sample unless
    `wyckoff` names them ({"Li": ["4b"]}). `orbits="model"` asks the model instead: a free
    inpainting pass places the guests, and each sample takes the orbit combination nearest to that
    placement, over the host's group and its subgroups (`wyckoff.propose_plan`; the API sets
    `proposed`, one plan per sample, and `proposed_at`, the placement fitted onto its orbits, which
    the symmetric pass refines from the middle of the ladder instead of drawing anew).
    `start`: a placement of the guests to refine (partial regeneration, `sample(start_level=)`): a
    structure in the host's cell whose sites of the guest species, apart from the host's own, are
    the guests, as many of each as `guests` asks.
    """

    host: Structure
    guests: dict[str, int]
    n_samples: int = 1
    label: str = ""
    symmetric: bool = False
    space_group: int | None = None
    wyckoff: Mapping[str, Sequence[str]] | None = None
    start: Structure | None = None
    orbits: str = "uniform"
    proposed: GuestPlan | None = field(default=None, repr=False, compare=False)
    proposed_at: np.ndarray | None = field(default=None, repr=False, compare=False)
    guest_numbers: list[int] = field(init=False, repr=False)
    plan: GuestPlan | None = field(init=False, repr=False)
    start_coords: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        where = self.label or "task"
        guests = parse_guests(self.guests, f"{self.label}: guests" if self.label else "guests")
        check_room(self.host, guests, self.label or "host")
        if isinstance(self.n_samples, bool) or not isinstance(self.n_samples, int) or self.n_samples < 1:
            raise ChggenError(f"{where}: n_samples must be a positive integer, got {self.n_samples!r}")
        if (self.space_group is not None or self.wyckoff is not None) and not self.symmetric:
            raise ChggenError(f"{where}: space_group and wyckoff are only used with symmetric=True")
        if self.symmetric and len(self.host) == 0:
            raise ChggenError(f"{where}: symmetric inpainting needs a host whose group the guests keep")
        if self.orbits not in ORBIT_CHOICES:
            raise ChggenError(f"{where}: orbits {self.orbits!r} is not one of {', '.join(ORBIT_CHOICES)}")
        if self.orbits == "model" and (not self.symmetric or self.space_group is not None or self.wyckoff is not None):
            raise ChggenError(f"{where}: orbits=\"model\" chooses the group and orbits of a symmetric task itself "
                              "(symmetric=True, without space_group or wyckoff)")
        numbers = [Element(symbol).Z for symbol, count in guests.items() for _ in range(count)]
        object.__setattr__(self, "guests", guests)
        object.__setattr__(self, "guest_numbers", numbers)
        plan = self.proposed or (plan_guests(self.host, guests, self.space_group, wyckoff=self.wyckoff)
                                 if self.symmetric else None)
        object.__setattr__(self, "plan", plan)
        if self.start is not None and self.symmetric:
            raise ChggenError(f"{where}: a start placement and symmetric inpainting do not go together")
        if self.proposed_at is not None and (self.proposed is None or np.shape(self.proposed_at) != (len(numbers), 3)):
            raise ChggenError(f"{where}: proposed_at needs a proposed plan and one position per guest")
        object.__setattr__(self, "start_coords", self.proposed_at if self.proposed_at is not None else None
                           if self.start is None else guest_placement(self.start, self.host, numbers, f"{where}: start"))

    @property
    def atomic_numbers(self) -> list[int]:
        return list(self.host.atomic_numbers) + self.guest_numbers


def guest_placement(start: Structure, host: Structure, guest_numbers: list[int], where: str) -> np.ndarray:
    """[n_guests, 3] fractional coordinates of the guests in `start`, in the order of `guest_numbers`.

    `start` must share the host's cell; its sites of the guest species that do not sit on a host site
    of the same species (within 0.01 A) are the guests, taken in the order they appear.
    """
    if not np.allclose(start.lattice.matrix, host.lattice.matrix, atol=1e-4):
        raise ChggenError(f"{where}: its cell {np.round(start.lattice.abc, 4).tolist()} A is not the host's "
                          f"{np.round(host.lattice.abc, 4).tolist()} A")
    wanted = {z: guest_numbers.count(z) for z in dict.fromkeys(guest_numbers)}
    found: dict[int, list[np.ndarray]] = {z: [] for z in wanted}
    for site in start:
        z = site.specie.Z
        if z not in wanted:
            continue
        same = [s.frac_coords for s in host if s.specie.Z == z]
        if same and host.lattice.get_all_distances([site.frac_coords], same).min() < 0.01:
            continue
        found[z].append(site.frac_coords)
    for z, count in wanted.items():
        if len(found[z]) != count:
            raise ChggenError(f"{where}: has {len(found[z])} {Element.from_Z(z).symbol} guest site(s), "
                              f"the task asks for {count}")
    taken = {z: iter(coords) for z, coords in found.items()}
    return np.array([next(taken[z]) for z in guest_numbers], dtype=np.float64).reshape(-1, 3)


def _assemble(crystals: list[tuple[torch.Tensor, torch.Tensor, list[int], int]]) -> CrystalBatch:
    """(frac [n, 3], lattice [3, 3], atomic numbers, number of fixed leading atoms) per crystal."""
    if not crystals:
        raise ChggenError("no crystals to batch")
    sizes = torch.tensor([len(numbers) for _, _, numbers, _ in crystals])
    return CrystalBatch(
        frac_coords=torch.cat([frac for frac, _, _, _ in crystals]),
        lattice=torch.stack([lattice for _, lattice, _, _ in crystals]),
        atomic_numbers=torch.tensor([z for _, _, numbers, _ in crystals for z in numbers], dtype=torch.long),
        batch=torch.repeat_interleave(torch.arange(len(crystals)), sizes),
        fixed=torch.cat([torch.arange(len(numbers)) < n_fixed for _, _, numbers, n_fixed in crystals]))


def _frac(structure: Structure) -> torch.Tensor:
    return torch.tensor(structure.frac_coords, dtype=torch.float64).reshape(-1, 3)


def _lattice(structure: Structure) -> torch.Tensor:
    return torch.tensor(structure.lattice.matrix, dtype=torch.float64)


def tasks_to_batch(tasks: list[InpaintTask]) -> CrystalBatch:
    """Every sample of every task as one crystal: host atoms first (fixed), then guests (free)."""
    crystals = []
    for task in tasks:
        guests = torch.zeros(len(task.guest_numbers), 3, dtype=torch.float64) if task.start_coords is None \
            else torch.from_numpy(task.start_coords)
        frac = torch.cat([_frac(task.host), guests])
        crystals += [(frac, _lattice(task.host), task.atomic_numbers, len(task.host))] * task.n_samples
    return _assemble(crystals)


def structures_to_batch(structures: list[Structure]) -> CrystalBatch:
    """Complete crystals as one batch, every atom free (training data, scoring known structures)."""
    return _assemble([(_frac(s), _lattice(s), list(s.atomic_numbers), 0) for s in structures])


Assignment = list[tuple[str, Orbit]]  # one sample's guests: (species, Wyckoff orbit), in atom order


def tasks_to_orbits(tasks: list[InpaintTask], rng: np.random.Generator
                    ) -> tuple[OrbitConstraint | None, list[list[Assignment | None]]]:
    """The sampler's orbit constraint for the symmetric tasks (None if there are none), and per task
    and sample the Wyckoff assignment drawn for it, laid out in the batch order of `tasks_to_batch`."""
    sizes = [(len(task.host), len(task.guest_numbers)) for task in tasks for _ in range(task.n_samples)]
    n = sum(a + b for a, b in sizes)
    representative = np.arange(n)
    rotation = np.tile(np.eye(3), (n, 1, 1))
    translation, origin = np.zeros((n, 3)), np.zeros((n, 3))
    free = rotation.copy()
    in_orbit = np.zeros(n, dtype=bool)
    assignments: list[list[Assignment | None]] = []
    start = 0
    for task in tasks:
        drawn = []
        for _ in range(task.n_samples):
            assignment = task.plan.draw(rng) if task.plan is not None else None
            atom = start + len(task.host)
            for _, orbit in assignment or []:
                block = slice(atom, atom + orbit.multiplicity)
                representative[block], rotation[block], translation[block] = atom, orbit.rotations, orbit.translations
                origin[block], free[block], in_orbit[block] = orbit.origin, orbit.free, True
                atom += orbit.multiplicity
            drawn.append(assignment)
            start += len(task.host) + len(task.guest_numbers)
        assignments.append(drawn)
    if not in_orbit.any():
        return None, assignments
    return OrbitConstraint(*map(torch.from_numpy, (representative, rotation, translation, origin, free,
                                                   in_orbit))), assignments


def batch_to_structures(tasks: list[InpaintTask], frac_coords: torch.Tensor,
                        assignments: list[list[Assignment | None]] | None = None) -> list[list[Structure]]:
    """Per task, its samples as Structures: the host's own sites, then the generated guests.

    Every sample carries in `properties` `close_pairs`, its pairs of atoms under MIN_DISTANCE (1 A;
    0 for a physical structure); a symmetric one also the group its guests keep and their orbits.
    """
    frac = frac_coords.detach().to("cpu", torch.float64).numpy()
    out, start = [], 0
    for number, task in enumerate(tasks):
        samples = []
        n_host, n_guest = len(task.host), len(task.guest_numbers)
        guest_species = [Element.from_Z(z) for z in task.guest_numbers]
        for index in range(task.n_samples):
            block = frac[start:start + n_host + n_guest]
            structure = task.host.copy()
            for site, coords in zip(structure, block[:n_host]):
                site.frac_coords = coords
            for species, coords in zip(guest_species, block[n_host:]):
                structure.append(species, coords)
            structure.properties["close_pairs"] = close_pairs(structure)
            assignment = assignments[number][index] if assignments else None
            if task.plan is not None and assignment is not None:
                structure.properties.update(
                    guest_space_group=task.plan.group.number, guest_space_group_symbol=task.plan.group.symbol,
                    guest_wyckoff=" ".join(f"{symbol}:{orbit.label}" for symbol, orbit in assignment))
            samples.append(structure)
            start += n_host + n_guest
        out.append(samples)
    return out
