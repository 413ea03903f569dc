"""Coordination-number statistics per species: do generated crystals have the training set's motifs?

The paper compares coordination numbers of generated and training structures (its Fig. 2e,f). The
count is pymatgen's CrystalNN (Voronoi solid angles weighed by electronegativity and distance): on
251 sites of CHGNet-relaxed Li-Si/Zn-P-S crystals it took ~7 ms per site, while a bond-length cutoff
(1.2 x sum of atomic radii) took ~0.01 ms but disagreed on 39% of the sites, mostly by counting
Li-Li contacts as bonds (Li in Li2S: 14 instead of 4-5). A few thousand structures take minutes, so
callers cap the count (`max_structures`). dE and RMSD live with the relaxation (`evaluation/relax.py`).
"""

from __future__ import annotations

import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.local_env import CrystalNN
from pymatgen.core import Structure


@dataclass(frozen=True)
class CoordinationStats:
    """Coordination numbers of one species in one group of structures (e.g. 'training')."""

    group: str
    species: str
    sites: int
    mean: float
    std: float
    counts: dict[int, int]  # coordination number -> number of sites
    failed_structures: int  # structures CrystalNN could not analyse (left out of `sites`)


def coordination_numbers(structure: Structure, method: CrystalNN | None = None) -> list[tuple[str, int]]:
    """(species, coordination number) of every site, by CrystalNN."""
    method = method or CrystalNN()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CrystalNN warns about missing oxidation states
        return [(site.specie.symbol, int(method.get_cn(structure, i))) for i, site in enumerate(structure)]


def coordination_stats(groups: Mapping[str, Iterable[Structure]]) -> list[CoordinationStats]:
    """Per group and species, the distribution of coordination numbers (groups in the given order)."""
    method = CrystalNN()
    rows = []
    for group, structures in groups.items():
        per_species: dict[str, list[int]] = defaultdict(list)
        failed = 0
        for structure in structures:
            try:
                pairs = coordination_numbers(structure, method)
            except Exception:  # CrystalNN fails on some pathological cells; count them, go on
                failed += 1
                continue
            for species, cn in pairs:
                per_species[species].append(cn)
        for species in sorted(per_species):
            values = np.array(per_species[species])
            rows.append(CoordinationStats(group, species, len(values), float(values.mean()),
                                          float(values.std()), dict(sorted(Counter(values.tolist()).items())),
                                          failed))
    return rows
