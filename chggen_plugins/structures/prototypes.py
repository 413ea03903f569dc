"""Real structural motifs: the AFLOW prototype library shipped with pymatgen, decorated with a
system's elements.

The rule, kept simple: a prototype with k species is decorated with each k-element subset of the
system in every assignment of elements to the prototype's species, and an assignment is kept when
its composition is one of the system's targets or passes `charge_fits` (so charge decides: CaF2 with
Li and S can only become antifluorite Li2S). Elements always pass. When several assignments give the
same composition, the one closest to the prototype's electronegativity order is kept (cation sites
stay cation sites: NaCl-type LiSi once, not twice). The cell is scaled by the ratio of summed atomic
volumes (atomic radii cubed) so bond lengths start near the new elements' sizes.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cache

from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY
from pymatgen.core import Composition, Element, Structure

from chggen_plugins.structures.io import atomic_radius
from chggen_plugins.structures.systems import ChemicalSystem, charge_fits, formula


@dataclass(frozen=True)
class Decoration:
    """Prototype `index` in the library with species replaced by `mapping` (old -> new symbol)."""

    index: int
    label: str
    mapping: tuple[tuple[str, str], ...]
    formula: str


@cache
def _primitive(index: int) -> Structure:
    return AFLOW_PROTOTYPE_LIBRARY[index]["snl"].structure.get_primitive_structure()


def decorations(system: ChemicalSystem, max_atoms: int) -> list[Decoration]:
    """Every kept decoration for `system` with cells up to max_atoms: target compositions first,
    then other charge-fitting compounds, then the elements (library order within each group)."""
    targets = set(system.formulas)
    elements = [Element(e) for e in system.elements]  # already by electronegativity
    found = []
    for index, entry in enumerate(AFLOW_PROTOTYPE_LIBRARY):
        structure = entry["snl"].structure
        old = sorted(structure.composition.elements, key=lambda e: (e.X, e.symbol))
        if len(old) > len(elements) or len(_primitive(index)) > max_atoms:
            continue
        for subset in itertools.combinations(elements, len(old)):
            best: dict[str, tuple[int, dict[str, str]]] = {}
            for order in itertools.permutations(range(len(old))):
                mapping = {o.symbol: subset[i].symbol for o, i in zip(old, order)}
                composition = Composition({mapping[e.symbol]: a for e, a in structure.composition.items()})
                name = formula(composition)
                disorder = sum(abs(rank - i) for rank, i in enumerate(order))
                if (name in targets or charge_fits(composition)) and disorder < best.get(name, (99, {}))[0]:
                    best[name] = (disorder, mapping)
            found += [Decoration(index, entry["tags"]["aflow"], tuple(m.items()), name)
                      for name, (_, m) in best.items()]
    rank = {name: 0 if name in targets else 1 for name in (d.formula for d in found)}
    return sorted(found, key=lambda d: 2 if len(d.mapping) == 1 else rank[d.formula])


def decorate(decoration: Decoration) -> Structure:
    """The prototype's primitive cell with new species, volume scaled by the atomic-volume ratio."""
    structure = _primitive(decoration.index).copy()
    mapping = dict(decoration.mapping)
    old_volume = sum(atomic_radius(site.specie) ** 3 for site in structure)
    structure.replace_species({Element(o): Element(n) for o, n in mapping.items()})
    new_volume = sum(atomic_radius(site.specie) ** 3 for site in structure)
    structure.scale_lattice(structure.volume * new_volume / old_volume)
    return structure
