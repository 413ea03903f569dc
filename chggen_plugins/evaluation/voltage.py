"""Host - Guest_x pseudo-binary: formation energies, their lower convex hull and the voltage profile.

An intercalation sweep leaves energies of the empty host, of host + n guests for several n, and of
the guest's elemental solid, all from the same CHGNet. With x = guests per host formula unit (the
host's reduced formula, pymatgen's convention for an electrode's framework):

    Ef(x) = E(G_x H) - E(H) - x E(G)                          eV per host formula unit
    V(x1 -> x2) = -[E(G_x2 H) - E(G_x1 H) - (x2 - x1) E(G)] / ((x2 - x1) z e)

for neighbouring stable x1 < x2, with z the guest's charge (pymatgen's: the largest oxidation state,
1 for Li, Na, K; 2 for Mg, Zn, Ca). Which x are stable is decided by pymatgen's
`CompoundPhaseDiagram` with the host and the guest element as its two terminals, so a content above
the hull, or above host + guest metal (a negative voltage), never enters the voltage curve. The
voltage steps, capacities and energy densities are pymatgen's `InsertionElectrode` built from the
stable states. No energy correction is applied (CHGNet 0.3.0 already predicts MP2020-corrected
energies; see stability.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from pymatgen.analysis.phase_diagram import CompoundPhaseDiagram
from pymatgen.apps.battery.insertion_battery import InsertionElectrode
from pymatgen.core import Composition, Element
from pymatgen.entries.computed_entries import ComputedEntry

from chggen_plugins.errors import ChggenError


def guest_charge(guest: str) -> int:
    """z of the guest ion: pymatgen's `InsertionVoltagePair` rule (largest oxidation state)."""
    states = Element(guest).oxidation_states
    if not states or max(states) <= 0:
        raise ChggenError(f"guest {guest}: has no positive oxidation state, so no insertion voltage")
    return abs(max(states))


def host_units(composition: Composition, host: Composition, guest: str, where: str) -> float:
    """Formula units of the reduced `host` in `composition` once the guest is taken away."""
    framework = Composition({el: amount for el, amount in composition.items() if el.symbol != guest})
    reduced, units = framework.get_reduced_composition_and_factor()
    if reduced != host.reduced_composition:
        raise ChggenError(f"{where}: {composition.formula} is not {host.reduced_formula} + {guest}")
    return units


@dataclass(frozen=True)
class ContentPoint:
    """The lowest-energy state found at one guest content."""

    x: float                 # guests per host formula unit
    entry: ComputedEntry     # its entry (entry_id names the structure); the empty host at x = 0
    formation_energy: float  # Ef, eV per host formula unit against host + x guest reference
    e_above_hull: float      # eV per host formula unit above the lower hull (0 on it)
    on_hull: bool
    candidates: int          # entries found at this x (the lowest is kept)


@dataclass(frozen=True)
class VoltageStep:
    """One plateau between neighbouring stable contents, from pymatgen's InsertionVoltagePair."""

    x_charge: float
    x_discharge: float
    voltage: float            # V against the guest metal
    capacity: float           # mAh/g of this step, normalised like the electrode's total
    cumulative_capacity: float
    formula_charge: str
    formula_discharge: str


@dataclass(frozen=True)
class Intercalation:
    """The pseudo-binary of one host and one guest: points by rising x, voltage steps, electrode."""

    host: str               # reduced formula of the host
    guest: str
    charge: int             # z
    reference: ComputedEntry  # the guest's elemental reference
    points: tuple[ContentPoint, ...]
    samples: tuple[tuple[float, float, str], ...]  # (x, Ef, entry_id) of every state given
    steps: tuple[VoltageStep, ...]
    electrode: InsertionElectrode | None  # None with fewer than two stable contents

    @property
    def stable(self) -> list[ContentPoint]:
        return [p for p in self.points if p.on_hull]

    def electrode_summary(self) -> dict[str, float | str]:
        """pymatgen's figures of the whole insertion path, per mass (and volume) of its most
        guest-rich stable state; empty without a voltage step, no volumetric ones without structures."""
        e = self.electrode
        if e is None:
            return {}
        figures: dict[str, float | str] = {
            "average_voltage": e.get_average_voltage(), "capacity_grav": e.get_capacity_grav(),
            "specific_energy": e.get_specific_energy(),
            "normalised_by": e.fully_discharged_entry.composition.reduced_formula}
        if e.normalization_volume is not None:
            figures.update(capacity_vol=e.get_capacity_vol(), energy_density=e.get_energy_density(),
                           max_delta_volume=e.max_delta_volume)
        return figures


def pseudo_binary(host: ComputedEntry, reference: ComputedEntry,
                  states: Iterable[ComputedEntry]) -> Intercalation:
    """Hull and voltage profile of `host` + guest from `states` (any number per content; the lowest
    at each x counts) and the guest's elemental `reference`. Energies are total energies (eV) of
    each entry's composition."""
    if not reference.composition.is_element:
        raise ChggenError(f"guest reference {reference.composition.formula} is not an element")
    guest = reference.composition.elements[0].symbol
    if guest in {el.symbol for el in host.composition.elements}:
        raise ChggenError(f"host {host.composition.formula} already contains the guest {guest}")
    formula = host.composition.reduced_composition
    states = list(states)
    per_unit_host = host.energy / host_units(host.composition, formula, guest, "host")
    mu = reference.energy_per_atom

    contents: dict[float, list[tuple[float, ComputedEntry]]] = {0.0: [(0.0, host)]}
    for entry in states:
        units = host_units(entry.composition, formula, guest, entry.entry_id or "state")
        x = round(entry.composition[guest] / units, 10)
        if x == 0:
            raise ChggenError(f"{entry.entry_id or 'state'}: {entry.composition.formula} has no {guest}")
        contents.setdefault(x, []).append((entry.energy / units - per_unit_host - x * mu, entry))

    diagram = CompoundPhaseDiagram([host, reference, *states], [formula, Composition(guest)],
                                   normalize_terminal_compositions=False)
    transformed = {id(t.original_entry): t for t in diagram.all_entries}
    stable = {id(t.original_entry) for t in diagram.stable_entries}
    points = []
    for x in sorted(contents):
        formation, entry = min(contents[x], key=lambda item: item[0])
        # per dummy atom (one per host formula unit, one per guest) -> per host formula unit
        above = diagram.get_e_above_hull(transformed[id(entry)]) * (1 + x)
        points.append(ContentPoint(x, entry, float(formation), float(above), id(entry) in stable,
                                   len(contents[x])))

    electrode = None
    steps: list[VoltageStep] = []
    stable_entries = [p.entry for p in points if p.on_hull]
    if len(stable_entries) >= 2:
        electrode = InsertionElectrode.from_entries(stable_entries, reference)
        cumulative = np.cumsum([pair.mAh for pair in electrode.voltage_pairs]) / electrode.normalization_mass
        for pair, total in zip(electrode.voltage_pairs, cumulative):
            steps.append(VoltageStep(float(pair.x_charge), float(pair.x_discharge), float(pair.voltage),
                                     float(pair.mAh / electrode.normalization_mass), float(total),
                                     pair.entry_charge.composition.reduced_formula,
                                     pair.entry_discharge.composition.reduced_formula))
    samples = tuple((x, float(ef), entry.entry_id) for x in sorted(contents) if x > 0 for ef, entry in contents[x])
    return Intercalation(formula.reduced_formula, guest, guest_charge(guest), reference, tuple(points),
                         samples, tuple(steps), electrode)

