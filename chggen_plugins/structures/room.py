"""How many guests a fixed cell can hold: one rule for every command that inpaints into a host.

Why a rule at all: the sampler places any number of guests into any cell. Thirty Li in an 8-atom
Si cell came back with pairs 0.009 A apart and exit 0; a thousand ran for minutes at gigabytes
before anything said so. A request that cannot fit is refused before the work, the same way by
`chggen inpaint`, `inpaint()`, intercalation sweeps and campaigns (InpaintTask checks it).

The measure: every atom (host and guests) is a sphere of its tabulated atomic radius, and the
spheres' total volume over the cell volume is the cell's *filling*. Atomic radii are neutral-atom
sizes, so ionic crystals overshoot 1 (Li2O, Na2O and Li-rich oxides relaxed by CHGNet reach 1.40
in the project's dataset of 4,579 structures; CsF is near 1.37). The limit, 1.5, lies above every
real crystal seen so that a legitimate request is never refused; what the limit lets through but
the model cannot place well is flagged afterwards (`close_pairs` on every sample).

The other way a cell has no room for guests that make sense: a slab of vacuum (a 1000 A axis took
guests into empty space). A host with an atom-free slab thicker than twice ISOLATION (the 7 A the
models see) is no bulk crystal, and is refused the same way.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
from pymatgen.core import Element, Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.structures.io import ISOLATION, atomic_radius

FILLING_LIMIT = 1.5  # atomic-radius sphere volume over cell volume; real crystals reach about 1.4


def _sphere(element: Element) -> float:
    return 4 / 3 * math.pi * atomic_radius(element) ** 3


def filling(host: Structure, guests: Mapping[str, int]) -> float:
    """The cell's filling once `guests` are added: total atomic-radius sphere volume over cell volume.

    Args:
        host: the fixed structure.
        guests: guest counts, e.g. {"Li": 4}.

    Returns:
        A ratio (1.0: the spheres' volume equals the cell's; real crystals stay below about 1.4).
    """
    spheres = sum(_sphere(site.specie) for site in host)
    spheres += sum(count * _sphere(Element(symbol)) for symbol, count in guests.items())
    return spheres / host.volume


def guest_room(host: Structure, guest: str) -> int:
    """The most atoms of `guest` the fixed cell of `host` can take under FILLING_LIMIT.

    Args:
        host: the fixed structure.
        guest: an element symbol.

    Returns:
        The largest count that `check_room` accepts (0 when the host alone is at the limit).
    """
    free = FILLING_LIMIT * host.volume - sum(_sphere(site.specie) for site in host)
    return max(0, math.floor(free / _sphere(Element(guest)) + 1e-9))


def vacuum_gap(host: Structure) -> tuple[float, str]:
    """The thickest atom-free slab of the cell, parallel to a pair of axes.

    Args:
        host: a structure with at least one atom.

    Returns:
        (thickness in A, the axis it lies along: "a", "b" or "c").
    """
    frac = np.mod(host.frac_coords, 1.0)
    matrix = host.lattice.matrix
    widest = (0.0, "a")
    for axis, name in enumerate("abc"):
        others = [matrix[i] for i in range(3) if i != axis]
        spacing = host.volume / np.linalg.norm(np.cross(*others))  # distance between the (axis) lattice planes
        positions = np.sort(frac[:, axis])
        gaps = np.diff(np.append(positions, positions[0] + 1.0))
        widest = max(widest, (float(gaps.max() * spacing), name))
    return widest


def check_room(host: Structure, guests: Mapping[str, int], where: str) -> None:
    """Refuse, in one line, guests that cannot fit the host's fixed cell.

    Args:
        host: the fixed structure (an empty one is an unconditional cell: not checked, its volume is
            the caller's choice).
        guests: guest counts.
        where: what to name in the message (a file, a task label).

    Raises:
        ChggenError: a slab of vacuum thicker than 2 x ISOLATION (naming its thickness and axis), or
            guests that overfill the cell (naming the counts, the filling and the most that fit).
    """
    if len(host) == 0 or not guests:
        return
    gap, axis = vacuum_gap(host)
    if gap > 2 * ISOLATION:
        raise ChggenError(f"{where}: the {host.composition.formula} cell has {gap:.1f} A of vacuum along {axis} "
                          f"(no atom in a slab that thick): guests would be generated in empty space, beyond the "
                          f"{ISOLATION:g} A a model sees; give a bulk cell (without the vacuum)")
    fill = filling(host, guests)
    if fill <= FILLING_LIMIT:
        return
    counts = ", ".join(f"{symbol}:{count}" for symbol, count in guests.items())
    rooms = ", ".join(f"{guest_room(host, symbol)} {symbol}" for symbol in guests)
    raise ChggenError(f"{where}: guests {counts} do not fit the {host.composition.formula} cell "
                      f"({host.volume:.1f} A^3): its atoms' spheres would fill {fill:.2f} times its volume, "
                      f"above the limit {FILLING_LIMIT} that real crystals stay under (at most {rooms} alone); "
                      "use fewer guests or a larger cell (a supercell)")
