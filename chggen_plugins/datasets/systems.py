"""Chemical systems and the compositions the dataset builder samples in each.

A system is written "Li-Si". The three systems of the project have hand-picked composition lists
(known phases and near neighbours); any other system gets every composition that passes the charge
rule below, and a user can always give the list explicitly: "Na-Sn:NaSn,Na15Sn4".
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from pymatgen.core import Composition, Element

from ..errors import ChggenError

DEFAULT_SYSTEMS: dict[str, tuple[str, ...]] = {
    # Li-rich silicides LixSiy, x >= y (Li21Si5 has 26 atoms per formula unit: needs max_atoms >= 26).
    "Li-Si": ("LiSi", "Li2Si", "Li5Si2", "Li3Si", "Li13Si4", "Li7Si3", "Li15Si4", "Li21Si5",
              "Li12Si7", "Li7Si2", "Li4Si"),
    "Zn-P-S": ("ZnP2S6", "Zn2P2S7", "ZnS", "P2S5", "P4S3", "P4S7", "Zn3P2S8", "ZnPS3", "Zn3P2",
               "ZnP2"),
    "Li-P-S": ("Li3PS4", "Li7P3S11", "Li4P2S6", "Li2S", "Li7PS6", "LiPS3", "Li4P2S7", "Li3P",
               "P2S5"),
    # The classic intercalation host: layered TiS2 and Li_x TiS2 (x = 1/4, 1/2, 3/4, 1), spinel-like
    # LiTi2S4 is x = 1/2 again, plus over-lithiated and Ti-rich neighbours for the hull.
    "Li-Ti-S": ("TiS2", "LiTiS2", "LiTi2S4", "Li3Ti4S8", "LiTi4S8", "Li2TiS3", "Li2S", "TiS3",
                "Ti2S3", "TiS"),
}

_MAX_COUNT = 6  # per element, when compositions are enumerated for a system without a list


@dataclass(frozen=True)
class ChemicalSystem:
    """A system: its name ("Li-P-S"), elements, and target reduced formulas that fit max_atoms."""

    name: str
    elements: tuple[str, ...]
    formulas: tuple[str, ...]


def formula(composition: Composition) -> str:
    """Reduced formula without brackets, elements by electronegativity: ZnP2S6, Li2PS3 (keys and ids)."""
    reduced = composition.reduced_composition
    ordered = sorted(reduced.items(), key=lambda item: (item[0].X, item[0].symbol))
    return "".join(f"{el.symbol}{'' if amount == 1 else int(amount)}" for el, amount in ordered)


def charge_fits(composition: Composition) -> bool:
    """True if the most electronegative element can be an anion at its most negative common
    oxidation state while every other element takes one of its common positive states, summing to 0.

    Deliberately stricter than pymatgen's oxi_state_guesses, where P and S take almost any state.
    """
    amounts = composition.get_el_amt_dict()
    if len(amounts) == 1:
        return True
    elements = sorted((Element(e) for e in amounts), key=lambda e: e.X)
    anion, cations = elements[-1], elements[:-1]
    negative = [s for s in anion.common_oxidation_states if s < 0]
    if not negative:
        return False
    charge = min(negative) * amounts[anion.symbol]
    options = [[s for s in e.common_oxidation_states if s > 0] for e in cations]
    return any(charge + sum(s * amounts[e.symbol] for s, e in zip(states, cations)) == 0
               for states in itertools.product(*options))


def _enumerate_formulas(elements: tuple[str, ...], max_atoms: int) -> list[str]:
    """Reduced compositions with every element present, counts up to 6, passing `charge_fits`
    (every one of them when none passes: intermetallic systems)."""
    every = []
    for counts in itertools.product(range(1, _MAX_COUNT + 1), repeat=len(elements)):
        if math.gcd(*counts) == 1 and sum(counts) <= max_atoms:
            every.append(Composition(dict(zip(elements, counts))))
    balanced = [c for c in every if charge_fits(c)]
    return sorted({formula(c) for c in (balanced or every)})


def parse_system(spec: str, max_atoms: int) -> ChemicalSystem:
    """"Li-Si" (preset or enumerated compositions) or "Li-Si:LiSi,Li3Si" (explicit) -> ChemicalSystem."""
    name, _, listed = spec.partition(":")
    symbols = [s.strip() for s in name.split("-") if s.strip()]
    for symbol in symbols:
        if not Element.is_valid_symbol(symbol):
            raise ChggenError(f"system {spec!r}: {symbol!r} is not an element symbol")
    if not symbols or len(set(symbols)) != len(symbols):
        raise ChggenError(f"system {spec!r}: expected distinct elements joined by '-', e.g. Li-Si")
    elements = tuple(sorted(symbols, key=lambda s: Element(s).X))
    name = "-".join(symbols)
    if listed.strip():
        formulas = [f.strip() for f in listed.split(",") if f.strip()]
    else:
        preset = {frozenset(k.split("-")): v for k, v in DEFAULT_SYSTEMS.items()}
        formulas = list(preset.get(frozenset(symbols), ())) or _enumerate_formulas(elements, max_atoms)
    kept = []
    for text in formulas:
        try:
            composition = Composition(text)
        except Exception:  # pymatgen raises several kinds for a bad formula
            raise ChggenError(f"system {spec!r}: cannot parse formula {text!r}") from None
        if not {e.symbol for e in composition.elements} <= set(symbols):
            raise ChggenError(f"system {spec!r}: formula {text!r} has elements outside {name}")
        if composition.reduced_composition.num_atoms <= max_atoms:
            kept.append(formula(composition))
    if not kept:
        raise ChggenError(f"system {spec!r}: no composition fits max_atoms={max_atoms}")
    return ChemicalSystem(name, elements, tuple(dict.fromkeys(kept)))
