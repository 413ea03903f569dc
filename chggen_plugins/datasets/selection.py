"""Which structures of a dataset to train on.

Relaxed random starts are mostly high in energy: about half of a dataset built by `chggen dataset
build` lies within 0.2 eV/atom of the lowest structure found for its formula. A score model learns
where atoms sit in what it is shown, so training on the low-energy part of each formula teaches it
where a chemist would put the guests; on held-out low-energy structures the window put more guests
on their true sites than training on everything (the measured figures: docs/benchmarks.md, native
model).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from chggen_plugins.datasets.readers import Record
from chggen_plugins.errors import ChggenError


def energy_above_lowest(records: Sequence[Record]) -> list[float]:
    """Per record, eV/atom above the lowest energy per atom among records of its reduced formula."""
    missing = [record.source for record in records if record.energy is None]
    if missing:
        raise ChggenError(f"{missing[0]}: no energy (and {len(missing) - 1} more records); an energy "
                          f"window needs every structure's energy")
    per_atom = [record.energy / len(record.structure) for record in records]
    lowest: dict[str, float] = defaultdict(lambda: float("inf"))
    for record, energy in zip(records, per_atom):
        formula = record.structure.composition.reduced_formula
        lowest[formula] = min(lowest[formula], energy)
    return [energy - lowest[record.structure.composition.reduced_formula]
            for record, energy in zip(records, per_atom)]


def within_energy_window(records: Sequence[Record], window: float) -> list[Record]:
    """The records at most `window` eV/atom above the lowest of their reduced formula."""
    if not window >= 0:
        raise ChggenError(f"energy window {window}: must be a number of eV/atom >= 0")
    return [record for record, above in zip(records, energy_above_lowest(records)) if above <= window]
