"""Decomposition energy Ed of CHGNet energies against a convex hull, and the Ed screen.

Ed here is the energy per atom above the hull at the structure's composition, negative when the
structure lies below it (a new ground state against that reference): pymatgen's
`get_e_above_hull(..., allow_negative=True)`. Where the hull comes from, in order:

1. Materials Project entries through mp-api when `MP_API_KEY` is set: GGA/GGA+U mixed entries only,
   cached on disk per chemical system (a cached system needs neither the key's network nor mp-api).
2. An entries file the user gives: a JSON list of ComputedEntry / ComputedStructureEntry as pymatgen
   (monty `dumpfn`) writes them.
3. Otherwise a reference hull built here with CHGNet from the elements and the simple compounds of
   the system (the AFLOW prototypes shipped with pymatgen, decorated as the dataset builder does).
   It is labelled *approximate* everywhere: its phases are few and CHGNet's, not DFT's.

No energy correction is applied to anything: CHGNet 0.3.0 was trained on MP2020-corrected energies,
so its raw predictions sit on the same scale as MP's corrected GGA/GGA+U entries (correcting again
would add ~0.07 eV per Si atom). An entries file must already be on that scale.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from monty.serialization import dumpfn, loadfn
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Element, Structure
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry
from tqdm import tqdm

from chggen_plugins.contract.registry import DEFAULT_RELAXER
from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.evaluation.relax import Relaxer

DEFAULT_THRESHOLD = 0.1  # eV/atom: the campaign's screen
DFT_THRESHOLD = 0.03  # eV/atom: suggested before handing structures to DFT
MP_THERMO_TYPES = ("GGA_GGA+U",)  # the only MP hull on CHGNet 0.3.0's energy scale

SOURCE_MP = "materials-project"
SOURCE_FILE = "entries-file"
SOURCE_REFERENCE = "chgnet-reference"


@dataclass(frozen=True)
class Hull:
    """A phase diagram with where it came from; `approximate` marks the CHGNet reference hull."""

    diagram: PhaseDiagram
    source: str  # SOURCE_MP, SOURCE_FILE or SOURCE_REFERENCE
    detail: str  # file path, cache file, or how the reference was built
    approximate: bool

    @property
    def label(self) -> str:
        """One line for every table, plot and row: which hull, and whether it is approximate."""
        chemsys = "-".join(sorted(e.symbol for e in self.diagram.elements))
        names = {SOURCE_MP: "Materials Project GGA/GGA+U", SOURCE_FILE: "entries file",
                 SOURCE_REFERENCE: "CHGNet reference hull"}
        prefix = "APPROXIMATE " if self.approximate else ""
        return f"{prefix}{names[self.source]} {chemsys} ({self.detail})"

    def decomposition_energy(self, composition: Composition | str, energy_per_atom: float) -> float:
        """Ed (eV/atom) of a structure of `composition` with CHGNet energy `energy_per_atom`."""
        composition = Composition(composition)
        missing = sorted({e.symbol for e in composition.elements} - {e.symbol for e in self.diagram.elements})
        if missing:
            raise ChggenError(f"{composition.reduced_formula}: element(s) {', '.join(missing)} are not in "
                              f"the hull ({self.label})")
        entry = PDEntry(composition, energy_per_atom * composition.num_atoms)
        return float(self.diagram.get_e_above_hull(entry, allow_negative=True))


def passes_screen(ed: float | None, threshold: float = DEFAULT_THRESHOLD) -> bool:
    """True if Ed is known and below `threshold` (0.1 eV/atom by default, 0.03 for DFT hand-off)."""
    return ed is not None and ed < threshold


def _elements(elements: Iterable[str]) -> tuple[str, ...]:
    symbols = []
    for name in elements:
        if not Element.is_valid_symbol(name):
            raise ChggenError(f"{name!r} is not an element symbol")
        symbols.append(name)
    if not symbols:
        raise ChggenError("a hull needs at least one element")
    return tuple(sorted(set(symbols)))


def _diagram(entries: Sequence[PDEntry], elements: tuple[str, ...], where: str) -> PhaseDiagram:
    """Phase diagram of the entries inside the chemical system; a missing element is one clear line."""
    inside = [e for e in entries if {el.symbol for el in e.composition.elements} <= set(elements)]
    present = {e.composition.elements[0].symbol for e in inside if e.composition.is_element}
    absent = [el for el in elements if el not in present]
    if absent:
        raise ChggenError(f"{where}: no entry for element(s) {', '.join(absent)}; a hull of "
                          f"{'-'.join(elements)} needs every element")
    return PhaseDiagram(inside, elements=[Element(el) for el in elements])


def load_entries(path: str | Path) -> list[ComputedEntry]:
    """Entries from a JSON list of ComputedEntry / ComputedStructureEntry (monty `dumpfn` format)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ChggenError(f"{path}: no such entries file")
    try:
        entries = loadfn(path)
    except Exception as error:  # json and monty raise several kinds for a file that is not entries
        raise ChggenError(f"{path}: cannot read entries ({first_line(error)})") from None
    if not isinstance(entries, list) or not entries:
        raise ChggenError(f"{path}: expected a non-empty JSON list of ComputedEntry objects")
    bad = next((i for i, e in enumerate(entries) if not isinstance(e, ComputedEntry)), None)
    if bad is not None:
        raise ChggenError(f"{path}: item {bad} is {type(entries[bad]).__name__}, not a ComputedEntry "
                          "(write the list with monty.serialization.dumpfn)")
    return entries


def mp_entries(elements: Iterable[str], cache_dir: str | Path, api_key: str) -> tuple[list[ComputedEntry], Path]:
    """GGA/GGA+U entries of the chemical system from the Materials Project, cached in `cache_dir`."""
    symbols = _elements(elements)
    cache = Path(cache_dir).expanduser() / f"mp-{'-'.join(symbols)}-{'_'.join(MP_THERMO_TYPES)}.json"
    if cache.is_file():
        return load_entries(cache), cache
    try:
        from mp_api.client import MPRester
    except ImportError:
        raise ChggenError("MP_API_KEY is set but mp-api is not installed: pip install mp-api "
                          "(or unset MP_API_KEY to use an entries file or the CHGNet reference hull)") from None
    try:
        with MPRester(api_key) as rester:
            entries = rester.get_entries_in_chemsys(
                list(symbols), additional_criteria={"thermo_types": list(MP_THERMO_TYPES)})
    except Exception as error:  # network, authentication and server errors all end the same way
        raise ChggenError(f"Materials Project query for {'-'.join(symbols)} failed ({first_line(error)})") from None
    cache.parent.mkdir(parents=True, exist_ok=True)
    dumpfn(list(entries), cache)
    return list(entries), cache


def _static_energy(relaxer: Relaxer, structure) -> float | None:
    """The relaxer's energy per atom without relaxing (4-5x cheaper): ranks prototype candidates."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return relaxer.energy(structure)
    except Exception:  # a candidate the relaxer cannot evaluate is just not a candidate
        return None


def reference_candidates(elements: Iterable[str], relaxer: Relaxer, max_atoms: int = 8,
                         per_formula: int = 2, progress: bool = False) -> list[tuple[str, Structure]]:
    """(AFLOW label, unrelaxed structure) of the `per_formula` prototype decorations of each reduced
    formula of the system (elements included) with the lowest single CHGNet energy, up to `max_atoms`."""
    # The dataset builder's decoration rules are the project's definition of "simple known compounds".
    from chggen_plugins.structures.prototypes import decorate, decorations
    from chggen_plugins.structures.systems import parse_system

    symbols = _elements(elements)
    if max_atoms < 1 or per_formula < 1:
        raise ChggenError(f"reference hull: max_atoms ({max_atoms}) and per_formula ({per_formula}) must be >= 1")
    system = parse_system("-".join(symbols), max_atoms)
    ranked: dict[str, list[tuple[float, str, Structure]]] = {}
    for decoration in tqdm(decorations(system, max_atoms), desc="reference hull: score", disable=not progress):
        structure = decorate(decoration)
        energy = _static_energy(relaxer, structure)
        if energy is not None:
            ranked.setdefault(decoration.formula, []).append((energy, decoration.label, structure))
    return [(label, structure) for items in ranked.values()
            for _, label, structure in sorted(items, key=lambda x: x[0])[:per_formula]]


def reference_entries(elements: Iterable[str], relaxer: Relaxer, max_atoms: int = 8,
                      per_formula: int = 2, progress: bool = False) -> list[ComputedStructureEntry]:
    """CHGNet-relaxed entries of the system's elements and prototype compounds (an approximate hull):
    the `reference_candidates`, relaxed."""
    chosen = reference_candidates(elements, relaxer, max_atoms, per_formula, progress)
    entries = []
    for label, structure in tqdm(chosen, desc="reference hull: relax", disable=not progress):
        result = relaxer.relax(structure)
        if result.structure is None:
            continue
        entries.append(ComputedStructureEntry(
            result.structure, result.final_energy * len(result.structure),
            entry_id=f"chgnet-reference:aflow:{label}:{result.structure.composition.reduced_formula}",
            data={"source": f"aflow:{label}", "converged": result.converged, "steps": result.steps}))
    return entries


def build_hull(elements: Iterable[str], entries_file: str | Path | None = None,
               cache_dir: str | Path = "~/.cache/chggen", relaxer: Relaxer | None = None,
               reference_max_atoms: int = 8, reference_per_formula: int = 2, progress: bool = False,
               api_key: str | None = None) -> Hull:
    """The hull for a chemical system: MP (if MP_API_KEY), else `entries_file`, else the CHGNet reference.

    `api_key` defaults to the MP_API_KEY environment variable. The reference hull is built with
    `relaxer` and cached in `cache_dir` too, keyed by the system and the settings that made it.
    """
    symbols = _elements(elements)
    cache_dir = Path(cache_dir).expanduser()
    api_key = os.environ.get("MP_API_KEY") if api_key is None else api_key
    if api_key:
        entries, cache = mp_entries(symbols, cache_dir, api_key)
        return Hull(_diagram(entries, symbols, str(cache)), SOURCE_MP, f"cache {cache}", False)
    if entries_file is not None:
        entries = load_entries(entries_file)
        return Hull(_diagram(entries, symbols, str(entries_file)), SOURCE_FILE, str(entries_file), False)
    settings = {"elements": symbols, "max_atoms": reference_max_atoms, "per_formula": reference_per_formula,
                "fmax": relaxer.fmax if relaxer else None, "max_steps": relaxer.max_steps if relaxer else None}
    if relaxer is not None and relaxer.name != DEFAULT_RELAXER:  # CHGNet's caches keep the key they had
        settings["relaxer"] = relaxer.version
    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:10]
    cache = cache_dir / f"chgnet-reference-{'-'.join(symbols)}-{key}.json"
    if cache.is_file():
        entries = load_entries(cache)
    else:
        if relaxer is None:
            raise ChggenError(f"no MP_API_KEY and no entries file for {'-'.join(symbols)}: the CHGNet "
                              "reference hull needs a relaxer")
        entries = reference_entries(symbols, relaxer, reference_max_atoms, reference_per_formula, progress)
        cache.parent.mkdir(parents=True, exist_ok=True)
        dumpfn(entries, cache)
    made_with = "CHGNet" if relaxer is None or relaxer.name == DEFAULT_RELAXER else relaxer.name
    detail = (f"{len(entries)} {made_with}-relaxed prototype phases up to {reference_max_atoms} atoms, "
              f"not DFT; cache {cache.name}")
    return Hull(_diagram(entries, symbols, str(cache)), SOURCE_REFERENCE, detail, True)
