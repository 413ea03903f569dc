"""Chemical systems and the compositions the dataset builder samples in each.

A system is written "Li-Si". The project's systems (`DEFAULT_SYSTEMS`, the builder's default, and the
battery-cathode oxides `CATHODE_SYSTEMS`) have hand-picked composition lists (known phases and near
neighbours); any other system gets every composition that passes the charge rule below, and a user
can always give the list explicitly: "Na-Sn:NaSn,Na15Sn4". A group name stands for several systems:
"cathodes" is every system of `CATHODE_SYSTEMS` (`expand_systems`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from pymatgen.core import Composition, Element

from chggen_plugins.errors import ChggenError

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

# Battery-cathode chemistry: layered, spinel, olivine and rock-salt oxides and a phosphate, each with
# its end members and the binary oxides of the hull. Lists hold reduced formulas up to 24 atoms (the
# builder's default max_atoms); a polymorph shares its formula (lambda-MnO2, delithiated spinel Mn2O4,
# is MnO2). Several known structures need more atoms per cell than 24 (olivine LiFePO4 28, bixbyite
# Mn2O3 40, ordered spinel Li4Ti5O12 42): their formula is sampled, the cell only with a larger
# --max-atoms. Left out because the formula itself is too big: Na0.44MnO2 (Na4Mn9O18, 31 atoms, the
# tunnel cathode) and Na0.7CoO2 (Na7Co10O20, 37 atoms).
CATHODE_SYSTEMS: dict[str, tuple[str, ...]] = {
    # Layered O3 LiCoO2 (alpha-NaFeO2, R-3m; LT-LiCoO2 spinel-like), O1 CoO2 (CdI2-type, fully
    # delithiated), spinel LiCo2O4 (Li0.5CoO2) and Co3O4, rock-salt CoO, Immm Li2CoO2, Li6CoO4
    # (P4_2/nmc, antifluorite-derived), antifluorite Li2O.
    "Li-Co-O": ("LiCoO2", "CoO2", "LiCo2O4", "Co3O4", "CoO", "Li2CoO2", "Li6CoO4", "Li2O"),
    # Layered LiNiO2 (R-3m / Jahn-Teller C2/m), NiO2 (O1/O3 CdI2-type), spinel LiNi2O4, 1T-Li2NiO2
    # (P-3m1) and Immm Li2NiO2, Li2NiO3 (Li2MnO3-type), rock-salt NiO, Li2O.
    "Li-Ni-O": ("LiNiO2", "NiO2", "LiNi2O4", "Li2NiO2", "Li2NiO3", "NiO", "Li2O"),
    # Spinel LiMn2O4 and Li4Mn5O12, lambda-MnO2 (delithiated spinel), beta (rutile) and alpha
    # (hollandite) MnO2, layered Li2MnO3 (C2/m), orthorhombic (Pmmn) and monoclinic (C2/m) LiMnO2,
    # tetragonal Li2Mn2O4, hausmannite Mn3O4, bixbyite Mn2O3, rock-salt MnO, Li2O.
    "Li-Mn-O": ("LiMn2O4", "MnO2", "Li2MnO3", "LiMnO2", "Li4Mn5O12", "Mn3O4", "Mn2O3", "MnO", "Li2O"),
    # Rock-salt LiFeO2 (alpha disordered, gamma I4_1/amd, layered R-3m), spinel LiFe5O8, Li5FeO4
    # (Pbca, antifluorite-derived), hematite Fe2O3 (corundum), inverse-spinel Fe3O4, rock-salt FeO, Li2O.
    "Li-Fe-O": ("LiFeO2", "LiFe5O8", "Li5FeO4", "Fe2O3", "Fe3O4", "FeO", "Li2O"),
    # Olivine LiFePO4 (Pnma), heterosite FePO4 (Pnma) and berlinite-type FePO4 (P3_121), beta-Li3PO4
    # (Pmn2_1), NASICON Li3Fe2(PO4)3, pyrophosphate LiFeP2O7, sarcopside Fe3(PO4)2, LiPO3, Fe2O3, Li2O.
    "Li-Fe-P-O": ("LiFePO4", "FePO4", "Li3PO4", "Li3Fe2P3O12", "LiFeP2O7", "Fe3P2O8", "LiPO3",
                  "Fe2O3", "Li2O"),
    # Layered V2O5 (Pmmn) and LiV2O5 (epsilon/delta/gamma), layered LiVO2 (R-3m), spinel LiV2O4,
    # LiV3O8 (P2_1/m), beta-Li3VO4 (Pmn2_1), LiVO3 (C2/c), VO2 (rutile, monoclinic M1), corundum V2O3, Li2O.
    "Li-V-O": ("LiV2O5", "V2O5", "LiVO2", "LiV2O4", "LiV3O8", "Li3VO4", "LiVO3", "VO2", "V2O3", "Li2O"),
    # Spinel Li4Ti5O12 (zero-strain anode) and LiTi2O4 (also lithiated anatase Li0.5TiO2), layered
    # Li2TiO3 (C2/m), rock-salt LiTiO2, ramsdellite Li2Ti3O7, Li4TiO4 (Cmcm), TiO2 (anatase, rutile,
    # brookite, TiO2-B), corundum Ti2O3, Li2O.
    "Li-Ti-O": ("Li4Ti5O12", "LiTi2O4", "Li2TiO3", "LiTiO2", "Li2Ti3O7", "Li4TiO4", "TiO2", "Ti2O3",
                "Li2O"),
    # Layered Na_x CoO2: O3 NaCoO2, P2 Na2/3CoO2 (Na2Co3O6), Na3/4CoO2 (Na3Co4O8), Na1/2CoO2
    # (NaCo2O4, Pnmm), O1 CoO2; Na4CoO4 (P-1), spinel Co3O4, rock-salt CoO, antifluorite Na2O.
    "Na-Co-O": ("NaCoO2", "Na2Co3O6", "Na3Co4O8", "NaCo2O4", "CoO2", "Na4CoO4", "Co3O4", "CoO", "Na2O"),
    # alpha-NaMnO2 (O'3, C2/m) and beta-NaMnO2 (Pmnm), P2 Na2/3MnO2 (Na2Mn3O6), Na2Mn3O7 (P-1),
    # CaFe2O4-type NaMn2O4, MnO2, Mn3O4, Mn2O3, MnO, Na2O.
    "Na-Mn-O": ("NaMnO2", "Na2Mn3O6", "Na2Mn3O7", "NaMn2O4", "MnO2", "Mn3O4", "Mn2O3", "MnO", "Na2O"),
    # Layered alpha-NaFeO2 (R-3m, the type of LiCoO2) and beta-NaFeO2 (Pna2_1), Na3FeO3, Na4FeO3,
    # Na5FeO4 (Pbca), hematite Fe2O3, inverse-spinel Fe3O4, rock-salt FeO, Na2O.
    "Na-Fe-O": ("NaFeO2", "Na3FeO3", "Na4FeO3", "Na5FeO4", "Fe2O3", "Fe3O4", "FeO", "Na2O"),
    # Tetragonal spinel MgMn2O4 (Mg0.5MnO2 of the Mg-ion cathode), inverse-spinel Mg2MnO4, murdochite
    # Mg6MnO8 (Fm-3m rock-salt superstructure), MnO2, Mn3O4, Mn2O3, MnO, rock-salt MgO.
    "Mg-Mn-O": ("MgMn2O4", "Mg2MnO4", "Mg6MnO8", "MnO2", "Mn3O4", "Mn2O3", "MnO", "MgO"),
    # delta-MgV2O5 (Cmcm, Mg-intercalated V2O5), spinel MgV2O4, brannerite MgV2O6 (C2/m), Mg2V2O7,
    # Mg3V2O8 (Cmca), V2O5, VO2, V2O3, MgO.
    "Mg-V-O": ("MgV2O5", "MgV2O4", "MgV2O6", "Mg2V2O7", "Mg3V2O8", "V2O5", "VO2", "V2O3", "MgO"),
}

PRESET_SYSTEMS: dict[str, tuple[str, ...]] = {**DEFAULT_SYSTEMS, **CATHODE_SYSTEMS}

# Names that stand for several systems on the command line (`--systems cathodes`).
SYSTEM_GROUPS: dict[str, tuple[str, ...]] = {"cathodes": tuple(CATHODE_SYSTEMS)}

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


def expand_systems(specs: Sequence[str]) -> list[str]:
    """System specs with group names ("cathodes") replaced by their systems, repeats dropped."""
    expanded = [name for spec in specs for name in SYSTEM_GROUPS.get(spec.strip().lower(), (spec,))]
    return list(dict.fromkeys(expanded))


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
        preset = {frozenset(k.split("-")): v for k, v in PRESET_SYSTEMS.items()}
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
