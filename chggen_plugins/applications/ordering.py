"""Ordering a partially occupied crystal: candidate orderings proposed, relaxed with CHGNet, ranked.

A disordered CIF (pymatgen keeps its occupancies) is made a supercell in which every species on the
partially occupied sites has an integer count (the smallest such cell, or the one given). Fully
occupied sites are the host; the partially occupied sites are where the guests go, a site listing
two species (Li/Na) may take either, and sites left empty are the vacancies. Candidates come from
up to four methods, the same number from each:

    inpainting        CHGGen inpainting of the guests into the fixed host, anywhere (the paper's way)
    inpainting-sites  the model's inpainted guests assigned to distinct listed sites by least total
                      distance (`site_guidance.py`): a true ordering of those sites, chosen by the
                      model. Optionally (`site_pull` > 0) the guests are also pulled towards the
                      listed sites while they are sampled (the docs' ordering benchmark says when
                      that helps)
    pymatgen          pymatgen's OrderDisorderedStructureTransformation, its best by Ewald energy
                      (oxidation states given, or from BVAnalyzer)
    random            uniformly random orderings of the same sites

Every candidate is relaxed and measured as a campaign does (`runs/shards.run_shard`) and written to
OUT/results.db the moment it is done (a rerun resumes; changed settings are refused by `claim`).
Everything reported comes from the store:

    orderings.csv           one row per candidate: method, energy (the relaxer's), space group, Ewald energy,
                            distance of its guests from the listed sites, rank among the distinct lowest
    methods.csv (+ printed) per method: lowest and median energy, distinct structures, symmetric rate,
                            CPU seconds per candidate (generation and relaxation)
    energies.png            histogram of relaxed energies per method
    structures/*.cif        the KEEP lowest distinct orderings (StructureMatcher), energy, space group
                            and Ewald energy in the file's header comment
"""

from __future__ import annotations

import hashlib
import math
import re
import statistics
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from pymatgen.core import Composition, Element, Structure
from pymatgen.io.cif import CifWriter
from tqdm import tqdm

from chggen_plugins.api import ModelLike, sample_tasks
from chggen_plugins.applications.site_guidance import (
    WIDTH,
    AllowedSites,
    SiteGuidedModel,
    assign_to_sites,
    random_orderings,
)
from chggen_plugins.contract.registry import DEFAULT_RELAXER
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import DEFAULT_STAGES, FMAX, MAX_STEPS, Relaxer
from chggen_plugins.files import replacing
from chggen_plugins.runs.config import DEFAULT_SYMMETRY
from chggen_plugins.runs.methods import INPAINTING, INPAINTING_SITES, ORDERING, PYMATGEN, RANDOM, check_methods
from chggen_plugins.runs.figures import count_histogram, empty_note, method_style, new_figure, save_figure
from chggen_plugins.runs.schema import METHODS, ORDERINGS, legend, write_table
from chggen_plugins.runs.setup import announce_seed, claim_store, model_run, resolve_seed
from chggen_plugins.runs.shards import Shard, lowest_distinct, run_shard
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.structures.batch import InpaintTask
from chggen_plugins.structures.cells import parse_supercell
from chggen_plugins.structures.io import StructureLike, check_lattice, check_structure, read_structure

MODEL_METHODS = (INPAINTING, INPAINTING_SITES)  # the methods that need a score model
COUNT_TOLERANCE = 0.05  # atoms: CIF occupancies are rounded (7/12 -> 0.583)
MAX_CELLS = 64  # unit cells in the largest supercell searched for integer counts
_RELAXED = ("relaxed", "unconverged")


@dataclass(frozen=True)
class OrderingProblem:
    """The supercell of a disordered crystal cut into what stays (host) and what is ordered."""

    disordered: Structure  # the supercell, partial occupancies (and any oxidation states) kept
    host: Structure        # its fully occupied sites
    sites: AllowedSites    # its partially occupied sites and the species each lists
    guests: dict[str, int]
    supercell: tuple[int, int, int]

    @property
    def vacancies(self) -> int:
        return len(self.sites.species) - sum(self.guests.values())

    @property
    def cell(self) -> str:
        return "x".join(map(str, self.supercell))


def partial_counts(structure: Structure) -> dict[str, float]:
    """Atoms of each species on the partially occupied sites of one cell (sum of occupancies)."""
    counts: dict[str, float] = {}
    for site in structure:
        if not site.is_ordered:
            for species, amount in site.species.items():
                counts[species.symbol] = counts.get(species.symbol, 0.0) + amount
    return counts


def _integral(counts: dict[str, float], cells: int) -> bool:
    return all(abs(cells * n - round(cells * n)) <= COUNT_TOLERANCE for n in counts.values())


def _compact(structure: Structure, cells: int) -> tuple[int, int, int]:
    """The diagonal supercell of `cells` unit cells with the largest heights, thinnest first."""
    options = [(a, b, cells // (a * b)) for a in range(1, cells + 1) for b in range(1, cells + 1)
               if cells % (a * b) == 0]

    def heights(option: tuple[int, int, int]) -> list[float]:
        matrix = structure.lattice.matrix * np.array(option)[:, None]
        faces = np.linalg.norm(np.cross(matrix[[1, 2, 0]], matrix[[2, 0, 1]]), axis=1)
        return sorted(np.round(abs(np.linalg.det(matrix)) / faces, 6).tolist())

    return max(options, key=lambda option: (heights(option), option))


def smallest_supercell(structure: Structure, where: str = "structure") -> tuple[int, int, int]:
    """The fewest unit cells in which every partially occupied species has an integer count, as the
    most compact diagonal supercell."""
    counts = partial_counts(structure)
    for cells in range(1, MAX_CELLS + 1):
        if _integral(counts, cells):
            return _compact(structure, cells)
    shown = ", ".join(f"{symbol} {n:.4g}" for symbol, n in counts.items())
    raise ChggenError(f"{where}: partial occupancies give {shown} per cell; no supercell of up to {MAX_CELLS} "
                      "cells makes them integers (check the CIF occupancies)")


def _read(source: StructureLike | str | Path) -> tuple[Structure, str]:
    if isinstance(source, Structure):
        check_lattice(source.lattice, "structure")
        return source.copy(), "structure"
    if isinstance(source, (str, Path)):
        try:
            return read_structure(Path(source), ordered=False), str(source)
        except ChggenError as error:
            over = re.search(r"occupancies \(\[([^\]]*)\]\) sum to > 1", str(error))
            if over:
                raise ChggenError(f"{source}: occupancies on one site sum to {over.group(1)} > 1; fix the "
                                  "CIF's _atom_site_occupancy values (at most 1 per site)") from None
            raise
    raise ChggenError(f"disordered structure: expected a CIF path or a pymatgen Structure, got {type(source).__name__}")


def ordering_problem(source: StructureLike | str | Path,
                     supercell: str | Sequence[int] | None = None) -> OrderingProblem:
    """Read `source` with its occupancies, pick the supercell and split host from sites to order."""
    structure, where = _read(source)
    if structure.is_ordered:
        raise ChggenError(f"{where}: every site of {structure.composition.reduced_formula} is fully occupied: "
                          "nothing to order (use `chggen inpaint` to add guests to a host)")
    smallest = smallest_supercell(structure, where)
    if supercell is None:
        cells = smallest
    else:
        cells = parse_supercell(supercell)
        counts = partial_counts(structure)
        if not _integral(counts, math.prod(cells)):
            shown = ", ".join(f"{symbol} {n * math.prod(cells):.4g}" for symbol, n in counts.items())
            raise ChggenError(f"{where}: supercell {'x'.join(map(str, cells))} holds {shown} on the partially "
                              f"occupied sites, not integers; the smallest that works is "
                              f"{'x'.join(map(str, smallest))} ({math.prod(smallest)} cells)")
    big = structure.make_supercell(cells, in_place=False)
    host = Structure.from_sites([site for site in big if site.is_ordered]) if any(
        site.is_ordered for site in big) else Structure(big.lattice, [], [])
    host.remove_oxidation_states()
    if len(host):
        check_structure(host, f"{where}: host (fully occupied sites)")
    partial = [site for site in big if not site.is_ordered]
    sites = AllowedSites(big.lattice, np.array([site.frac_coords for site in partial]),
                         tuple(frozenset(sp.symbol for sp in site.species) for site in partial))
    totals = partial_counts(big)
    guests = {symbol: int(round(n)) for symbol, n in totals.items() if round(n) > 0}
    sites.check_counts(guests, where)
    return OrderingProblem(big, host, sites, guests, cells)


def parse_oxidation_states(text: str) -> dict[str, float]:
    """'Li:1,P:5,S:-2' -> {'Li': 1.0, 'P': 5.0, 'S': -2.0} (--oxidation-states)."""
    states = {}
    for item in text.split(","):
        symbol, _, value = item.strip().partition(":")
        try:
            states[symbol] = float(value)
        except ValueError:
            raise ChggenError(f"--oxidation-states {text!r}: write ELEMENT:CHARGE pairs, e.g. Li:1,P:5,S:-2") from None
        if not Element.is_valid_symbol(symbol):
            raise ChggenError(f"--oxidation-states: {symbol!r} is not an element symbol")
    return states


def suggested_states(structure: Structure) -> str:
    """An --oxidation-states value for this composition: pymatgen's most likely charge-balanced
    guess, or ELEMENT:CHARGE placeholders naming its elements when it has none."""
    amounts = structure.composition.get_el_amt_dict()
    whole = {symbol: round(amount) for symbol, amount in amounts.items()}
    try:  # pymatgen balances charges on whole numbers of atoms only (the supercell has them)
        guesses = Composition(whole).oxi_state_guesses(max_sites=-50) if all(
            abs(amount - whole[symbol]) < 1e-6 for symbol, amount in amounts.items()) else ()
    except ValueError:
        guesses = ()
    if guesses:
        return ",".join(f"{symbol}:{charge:g}" for symbol, charge in guesses[0].items())
    return ",".join(f"{element.symbol}:CHARGE" for element in structure.composition.elements)


def bv_oxidation_states(structure: Structure) -> dict[str, float] | None:
    """One oxidation state per element from pymatgen's BVAnalyzer on an ordered structure; None when
    it finds none or gives one element two states."""
    from pymatgen.analysis.bond_valence import BVAnalyzer

    try:
        valences = BVAnalyzer().get_valences(structure)
    except ValueError:
        return None
    states: dict[str, set[float]] = {}
    for site, valence in zip(structure, valences):
        states.setdefault(site.specie.symbol, set()).add(float(valence))
    return {symbol: values.pop() for symbol, values in states.items()} if all(
        len(values) == 1 for values in states.values()) else None


def ewald_per_atom(structure: Structure, states: dict[str, float] | None) -> float | None:
    """pymatgen's Ewald energy (eV/atom) of the structure with `states`; None without them."""
    if states is None or any(site.specie.symbol not in states for site in structure):
        return None
    from pymatgen.analysis.ewald import EwaldSummation

    decorated = structure.copy()
    decorated.remove_oxidation_states()
    decorated.add_oxidation_state_by_element(states)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a charged cell gets a background, with a warning
        return float(EwaldSummation(decorated).total_energy) / len(structure)


def pymatgen_orderings(problem: OrderingProblem, states: dict[str, float], count: int) -> list[Structure]:
    """The `count` best orderings by Ewald energy from OrderDisorderedStructureTransformation."""
    from pymatgen.transformations.standard_transformations import OrderDisorderedStructureTransformation

    decorated = problem.disordered.copy()
    decorated.remove_oxidation_states()
    decorated.add_oxidation_state_by_element(states)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ranked = OrderDisorderedStructureTransformation().apply_transformation(decorated, return_ranked_list=count)
    structures = []
    for item in ranked[:count]:
        structure = item["structure"].copy()
        structure.remove_oxidation_states()
        structures.append(structure)
    return structures


@dataclass
class OrderingResult:
    """What a finished ordering run left: the problem, its store, per-method rows and the files."""

    problem: OrderingProblem
    store: ResultStore
    methods: list[dict[str, Any]]
    files: dict[str, Path] = field(default_factory=dict)


class Ordering:
    """One ordering run: inputs checked and the store claimed on construction (bad input is refused
    before anything slow), candidates made and stored by `run`. Arguments as for `order`."""

    def __init__(self, source: StructureLike | str | Path, model: ModelLike | None, out: str | Path,
                 samples: int = 8, supercell: str | Sequence[int] | None = None, *,
                 methods: Sequence[str] = MODEL_METHODS, keep: int | None = None, model_source: str | None = None,
                 levels: int | None = None, seed: int | None = None, jump_length: int = 10, resamples: int | None = None,
                 sampler: str = "pc", steps: int | None = None, churn: float = 0.0,
                 width: float = WIDTH, site_pull: float = 0.0, oxidation_states: dict[str, float] | None = None, fmax: float = FMAX,
                 max_steps: int = MAX_STEPS, relaxer: str | Relaxer = DEFAULT_RELAXER,
                 stages: Sequence[str] = DEFAULT_STAGES, device: str = "cpu",
                 progress: bool = True, on_result: Callable[[StoredResult], None] | None = None) -> None:
        self.problem = ordering_problem(source, supercell)
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise ChggenError(f"samples: {samples!r} must be a positive integer")
        chosen = check_methods(list(methods), ORDERING, "methods")
        self.methods = tuple(m for m in ORDERING if m in chosen)
        if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or keep < 1):
            raise ChggenError(f"keep: {keep!r} must be a positive integer")
        seed, drawn = resolve_seed(seed, Path(out))
        self.samples, self.keep, self.seed, self.device = samples, keep or samples, seed, device
        self.progress, self.on_result, self.width, self.site_pull = progress, on_result, width, site_pull
        if not site_pull >= 0:
            raise ChggenError(f"site_pull: {site_pull!r} must be >= 0 (0: no pull, assignment only)")
        self.states = oxidation_states
        label = f"{','.join(f'{s}{n}' for s, n in self.problem.guests.items())} on " \
                f"{len(self.problem.sites.species)} sites of {self.problem.disordered.composition.reduced_formula}"
        self.task = InpaintTask(self.problem.host, self.problem.guests, samples, label=label)
        needs_model = any(m in MODEL_METHODS for m in self.methods)
        if needs_model and model is None:
            raise ChggenError(f"methods {', '.join(m for m in self.methods if m in MODEL_METHODS)} need a score "
                              "model (--model)")
        self.run_model = model_run(model if needs_model else None, model_source, levels, device,
                                   SamplerSettings(jump_length, resamples, sampler, steps, churn), [self.task])
        self.model, self.settings = self.run_model.model, self.run_model.settings
        self.relaxer = relaxer if isinstance(relaxer, Relaxer) else Relaxer(fmax, max_steps, relaxer=relaxer,
                                                                            stages=stages)
        states = ",".join(f"{s}:{v:g}" for s, v in sorted((oxidation_states or {}).items())) or "bv"
        self.fingerprint = {
            "kind": "ordering", "structure": _occupancy_digest(self.problem.disordered), "supercell": self.problem.cell,
            "samples": str(samples), "methods": ",".join(self.methods), **self.run_model.fingerprint(),
            "seed": str(seed),
            "width": f"{width:g}", "site_pull": f"{site_pull:g}", "oxidation_states": states,
            **self.relaxer.fingerprint()}
        self.common = {"source_formula": self.problem.disordered.composition.reduced_formula, "supercell": self.problem.cell,
                       **self.run_model.fields(), "seed": seed, "relax_fmax": self.relaxer.fmax,
                       "relax_max_steps": self.relaxer.max_steps}
        self.out = Path(out)
        if PYMATGEN in self.methods and self.oxidation_states() is None:  # before any work, not after the other methods
            raise ChggenError(f"{self.problem.disordered.composition.reduced_formula}: pymatgen's ordering needs "
                              "oxidation states and BVAnalyzer found none; give them, e.g. --oxidation-states "
                              f"{suggested_states(self.problem.disordered)}")
        self.store = claim_store(self.out, self.fingerprint, "an ordering run")
        announce_seed(seed, drawn)

    def oxidation_states(self) -> dict[str, float] | None:
        """The given states, else BVAnalyzer's on one random ordering of the sites (None if it fails)."""
        if self.states is None:
            sample = random_orderings(self.problem.host, self.problem.guests, self.problem.sites, 1,
                                      np.random.default_rng(self.seed))[0]
            self.states = bv_oxidation_states(sample) or {}
        return self.states or None

    def _uids(self, method: str) -> list[str]:
        return [f"{method}/{k}" for k in range(self.samples)]

    def generate(self, method: str) -> tuple[list[Structure], list[float | None]]:
        """The method's candidates (unrelaxed) and, per candidate, the largest distance (A) from a
        guest to the listed site it was assigned (None for orderings of the sites themselves)."""
        problem = self.problem
        if method in MODEL_METHODS:
            pulled = method == INPAINTING_SITES and self.site_pull > 0
            model = SiteGuidedModel(self.model, problem.sites, self.width, self.site_pull) if pulled else self.model
            made = sample_tasks([self.task], model, self.seed, self.settings, self.device, self.progress)[0]
            assigned = [assign_to_sites(s, len(problem.host), problem.sites) for s in made]
            structures = made if method == INPAINTING else [ordered for ordered, _ in assigned]
            return structures, [distance for _, distance in assigned]
        if method == RANDOM:
            return random_orderings(problem.host, problem.guests, problem.sites, self.samples,
                                    np.random.default_rng(self.seed)), [None] * self.samples
        structures = pymatgen_orderings(problem, self.oxidation_states(), self.samples)  # checked in __init__
        return structures, [None] * len(structures)

    def candidates(self, method: str) -> None:
        """Make, relax and store what is missing of one method; CPU seconds go to the store's metadata."""
        if all(uid in self.store for uid in self._uids(method)):
            return
        start = time.process_time()
        structures, distances = self.generate(method)
        generated = time.process_time() - start
        jobs = tuple((f"{method}/{k}", {"sample": k, "site_distance": None if d is None else round(d, 4)})
                     for k, d in enumerate(distances))
        shard = Shard(method, self.problem.host, self.problem.guests, jobs, {**self.common, "method": method},
                      self.seed, self.settings, self.device, None, DEFAULT_SYMMETRY)
        missing = sum(uid not in self.store for uid, _ in jobs)
        start = time.process_time()
        run_shard(shard, self.store, None, self.relaxer, on_write=self.on_result, structures=structures)
        metadata = self.store.metadata
        cpu = metadata.setdefault("cpu", {}).setdefault(method, {"generate": 0.0, "relax": 0.0, "made": 0,
                                                                 "relaxed": 0})
        cpu["generate"] += generated
        cpu["made"] += len(structures)
        cpu["relax"] += time.process_time() - start
        cpu["relaxed"] += missing
        self.store.metadata = metadata

    def run(self, echo: bool = True) -> OrderingResult:
        """Make and store what is missing, then every output from the store."""
        with self.store.writing():
            for method in tqdm(self.methods, desc="ordering methods", unit="method", disable=not self.progress):
                self.candidates(method)
        rows, methods, files = write_outputs(self.store, self.out, self.methods, self.keep, self.oxidation_states())
        if echo:
            written = sum(row["cif"] is not None for row in rows)
            fewer = "" if written == self.keep else f" (of {self.keep} asked: the other candidates were duplicates or failed)"
            p = self.problem
            print(f"{p.disordered.composition.reduced_formula}: supercell {p.cell}, host "
                  f"{p.host.composition.formula if len(p.host) else '(none)'}, guests "
                  f"{', '.join(f'{s} {n}' for s, n in p.guests.items())} on {len(p.sites.species)} sites "
                  f"({p.vacancies} vacancies)")
            print(format_methods(methods))
            print(f"results: {self.store.path}; orderings.csv, methods.csv, energies.png and the {written} "
                  f"lowest distinct orderings{fewer} in {self.out}")
        return OrderingResult(self.problem, self.store, methods, files)


def _occupancy_digest(structure: Structure) -> str:
    """The disordered supercell as text (species with occupancies, positions) for the fingerprint."""
    text = repr([structure.lattice.matrix.round(6).tolist(), [site.species_string for site in structure],
                 structure.frac_coords.round(6).tolist()])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def order(source: StructureLike | str | Path, model: ModelLike | None, out: str | Path, samples: int = 8,
          supercell: str | Sequence[int] | None = None, *, echo: bool = True, **options: Any) -> OrderingResult:
    """Order the partially occupied crystal `source`: candidates per method in the smallest supercell
    with integer counts, relaxed, stored in `out` (resumable), ranked; the lowest distinct written as CIF.

    Why several methods side by side: inpainting proposes orderings from what the model learned;
    pymatgen's Ewald ordering and random orderings are the baselines it is judged against, on the
    same relaxation and the same table.

    Args:
        source: a CIF path (occupancies kept) or a disordered Structure.
        model: a registered model name (with `model_source`) or a ScoreModel; None when only
            `pymatgen` and `random` are run.
        out: the output folder (new, or one this command wrote before).
        samples: candidates per method.
        supercell: "2x1x1" or (2, 1, 1); None: the smallest with integer counts.
        echo: print the tables and where the files are.
        **options: `methods` (any of inpainting, inpainting-sites, pymatgen, random),
            `oxidation_states` ({"Li": 1, ...}; default: BVAnalyzer, checked before any work when
            `pymatgen` is asked), `keep` (lowest distinct orderings written; default `samples`),
            `site_pull` (default 0: none) and `width` (A) of inpainting-sites' optional pull,
            `model_source`, `levels`, `seed`, `jump_length`, `resamples`, `sampler`, `steps`, `churn`
            (as for `inpaint`), `fmax`, `max_steps`,
            `relaxer`, `stages` (as for `intercalate`), `device`, `progress`, `on_result`.

    Returns:
        An OrderingResult: the problem (host, guests, sites), the store, one row per method
        (methods.csv) and the files written (orderings.csv, energies.png, structures/).

    Raises:
        ChggenError: an ordered or over-occupied CIF, an unknown element, missing oxidation
            states, an output of another run, in one line.

    Example:
        ```python
        import chggen_plugins as cg
        result = cg.order("benchmarks/data/beta_li3ps4_homma2011.cif", "native", "li3ps4", samples=4,
                          methods=("inpainting", "random"))
        [(row["method"], row["lowest_e_per_atom"]) for row in result.methods]
        ```
    """
    return Ordering(source, model, out, samples, supercell, **options).run(echo)


def _cif_header(row: dict[str, Any]) -> str:
    ewald = "-" if row["ewald_per_atom"] is None else f"{row['ewald_per_atom']:.4f} eV/atom"
    return (f"# chggen order: rank {row['rank']}, method {row['method']} ({row['uid']})\n"
            f"# {row['relaxer']} energy {row['e_per_atom']:.5f} eV/atom ({row['status']}), space group "
            f"{row['space_group']} (spglib symprec {DEFAULT_SYMMETRY.symprec} A), Ewald energy {ewald}\n")


def write_outputs(store: ResultStore, out: Path, methods: Sequence[str], keep: int,
                  states: dict[str, float] | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict[str, Path]]:
    """orderings.csv, methods.csv, energies.png and structures/*.cif from the store."""
    results = [r for r in store.results() if r.get("method") in methods]
    relaxed = [r for r in results if r.get("status") in _RELAXED]
    ranked = lowest_distinct([(r.structure, r.get("e_per_atom")) for r in relaxed], keep)
    rank_of = {relaxed[i].uid: rank for rank, i in enumerate(ranked, start=1)}
    structures = out / "structures"
    structures.mkdir(parents=True, exist_ok=True)
    rows = []
    for r in results:
        ok = r.get("status") in _RELAXED
        row = {"uid": r.uid, "method": r.get("method"), "sample": r.get("sample"), "status": r.get("status"),
               "e_per_atom": r.get("e_per_atom"), "space_group": r.get("sg_spglib_symbol"),
               "sg_number": r.get("sg_spglib"), "ewald_per_atom": ewald_per_atom(r.structure, states) if ok else None,
               "site_distance": r.get("site_distance"), "steps": r.get("steps"), "rank": rank_of.get(r.uid),
               "cif": None, "error": r.get("error"), "relaxer": r.get("relaxer"),
               "relaxer_version": r.get("relaxer_version")}
        if row["rank"] is not None:
            name = f"{row['rank']:02d}_{row['method']}_{str(row['space_group']).replace('/', '_')}.cif"
            row["cif"] = f"structures/{name}"
            with replacing(out / row["cif"]) as temporary:
                temporary.write_text(_cif_header(row) + str(CifWriter(r.structure)))
        rows.append(row)
    summary = method_rows(store, results, methods)
    files = {"store": store.path, "orderings": write_table(sorted(rows, key=lambda x: (x["rank"] is None, x["rank"] or 0)),
                                                            out / "orderings.csv", ORDERINGS),
             "methods": write_table(summary, out / "methods.csv", METHODS),
             "histogram": save_figure(plot_energies(relaxed, methods), out / "energies.png"), "structures": structures}
    return rows, summary, files


def method_rows(store: ResultStore, results: Sequence[StoredResult], methods: Sequence[str]) -> list[dict[str, Any]]:
    """Per method: candidates, relaxed, lowest and median energy, distinct relaxed structures,
    symmetric rate (all candidates in the denominator) and CPU seconds per candidate."""
    cpu = store.metadata.get("cpu", {})
    rows = []
    for method in methods:
        items = [r for r in results if r.get("method") == method]
        done = [r for r in items if r.get("status") in _RELAXED]
        energies = [r.get("e_per_atom") for r in done]
        spent = cpu.get(method, {})
        generate = spent.get("generate", 0.0) / max(spent.get("made", 0), 1)
        relax = spent.get("relax", 0.0) / max(spent.get("relaxed", 0), 1)
        rows.append({"method": method, "candidates": len(items), "relaxed": len(done),
                     "lowest_e_per_atom": min(energies) if energies else None,
                     "median_e_per_atom": statistics.median(energies) if energies else None,
                     "distinct": len(lowest_distinct([(r.structure, r.get("e_per_atom")) for r in done])),
                     "symmetric": sum((r.get("sg_spglib") or 0) > 2 for r in done),
                     "symmetric_rate": sum((r.get("sg_spglib") or 0) > 2 for r in done) / len(items) if items else None,
                     "cpu_generate_s": round(generate, 3), "cpu_relax_s": round(relax, 3),
                     "cpu_per_candidate_s": round(generate + relax, 3)})
    return rows


def format_methods(rows: Sequence[dict[str, Any]]) -> str:
    """The per-method table as aligned text (energies in eV/atom, CHGNet)."""
    header = ["method", "candidates", "relaxed", "lowest E", "median E", "distinct", "symmetric", "CPU s/cand"]
    lines = [header]
    for row in rows:
        def energy(key: str) -> str:
            return "-" if row[key] is None else f"{row[key]:.4f}"

        lines.append([row["method"], str(row["candidates"]), str(row["relaxed"]), energy("lowest_e_per_atom"),
                      energy("median_e_per_atom"), str(row["distinct"]),
                      f"{row['symmetric']}/{row['candidates']}", f"{row['cpu_per_candidate_s']:.1f}"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    table = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join([*table, legend(METHODS, header)])


def plot_energies(relaxed: Sequence[StoredResult], methods: Sequence[str]) -> Figure:
    """Histogram of relaxed CHGNet energies (meV/atom above the lowest found), methods side by side
    in each bin, each in its own colour."""
    figure, (axes,) = new_figure(6.5, 4)
    energies = {m: [r.get("e_per_atom") for r in relaxed if r.get("method") == m] for m in methods}
    found = [e for values in energies.values() for e in values]
    if found:
        lowest = min(found)
        spread = max(1e-3, (max(found) - lowest) * 1000)
        count_histogram(axes, {f"{m} ({len(v)})": [(e - lowest) * 1000 for e in v] for m, v in energies.items()},
                        [method_style(m)["color"] for m in energies], np.linspace(0, spread, 21))
        axes.legend(fontsize=8)
    else:
        empty_note(axes, "no relaxed candidate")
    axes.set_xlabel("energy above the lowest ordering found (meV/atom)")
    axes.set_ylabel("candidates (count)")
    return figure
