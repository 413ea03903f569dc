"""The training / validation split every backend shares: decided by each structure's content.

A structure is held out when a hash of its formula, cell lengths and rounded fractional coordinates
falls below the validation fraction. The split therefore does not depend on the order of the data,
on which backend trains, or on structures added later: the native, DiffCSP and MatterGen models and
every benchmark hold out the same crystals.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from pymatgen.core import Structure

from chggen_plugins.errors import ChggenError


def held_out(structure: Structure, val_fraction: float) -> bool:
    """Whether `structure` belongs to the validation split at `val_fraction` (0..1)."""
    key = f"{structure.composition.formula}|{structure.lattice.abc}|{structure.frac_coords.round(4).tolist()}"
    digest = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16)
    return digest / 0xFFFFFFFF < val_fraction


def fingerprint(structures: Sequence[Structure]) -> str:
    """Identifies a set of structures regardless of order (to tell whether a validation set changed)."""
    keys = sorted(f"{s.composition.formula}|{s.lattice.abc}" for s in structures)
    return hashlib.sha256("\n".join(keys).encode()).hexdigest()[:16]


def split_dataset(structures: Sequence[Structure], val_fraction: float) -> tuple[list[Structure], list[Structure]]:
    """(training, validation) structures, each in the order given.

    Raises:
        ChggenError: one of the two would be empty.
    """
    train = [s for s in structures if not held_out(s, val_fraction)]
    val = [s for s in structures if held_out(s, val_fraction)]
    if not train or not val:
        raise ChggenError(f"dataset of {len(structures)} structures gives an empty training or "
                          f"validation split at val_fraction {val_fraction}")
    return train, val
