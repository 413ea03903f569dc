"""Six ways to start a crystal structure search, side by side in one run, all relaxed the same way:

(a) random        random Bravais cell at N * V0 (lattice.py) + uniformly random fractional positions
(b) pyxtal        PyXtal random symmetric crystal: a random space group compatible with the atom counts
(c) uncond        CHGGen unconditional generation in the campaign's random cells (lattice_grid)
(d) inpaint       CHGGen inpainting: hosts from the lowest-energy distinct relaxed (c) structures
                  (guests stripped, framework symmetrized), guests generated into them freely
(e) inpaint-snap  the structures of (d), each snapped to the symmetric structure spglib finds within
                  --snap-symprec before relaxing (XtalPaint's cheap route to symmetry)
(f) inpaint-sym   the hosts of (d), guests generated on Wyckoff orbits of the host's group (or of its
                  largest subgroup that fits the counts), drawn uniformly: symmetric inpainting
(g) inpaint-sym-model  the same with the orbits the model proposes (a free pass first; `orbits="model"`)

Every structure goes through `workflow.evaluate`: CHGNet relaxation (FIRE, fmax 0.1, cell relaxed,
pairs < 1 A set aside), space group with spglib and moyopy (symprec 0.1 A, 10 deg), Ed against the
hull `post/stability.py` picks (MP if MP_API_KEY, else --entries, else an APPROXIMATE CHGNet
reference hull). Per composition and method: symmetry success with counts over all structures of the
method (failures stay in the denominator), distinct structures, match-or-lower for the inpainting
methods (against the relaxed unconditional structure each host was stripped from: XtalPaint's rule),
median FIRE steps, lowest energy and Ed, and CPU time (process time) per stage and per "good"
structure: symmetric (spglib) and within 25 meV/atom of the lowest energy any method found. Inpainting's structure count is the same as the others'; its host cells
may differ in size from N (the conventional cell of the symmetrized framework).

Every evaluated structure is written to OUT/benchmark.db (ase.db, one row per structure) as it is
finished, with the CPU time its relaxation and analysis took; rerunning the same command resumes:
stored structures are read back, not relaxed again. Changed settings are refused for the same OUT.

Run: python benchmarks/campaign_methods.py --model native --count 20
     python benchmarks/campaign_methods.py --model analytic --model-source examples/li4si8_reference.cif \\
         --compositions LiSi2:6 --count 2 --max-steps 100 --reference-max-atoms 2 --host-cell primitive
Writes benchmarks/results/campaign_methods.json and .csv: the summary table (`table` = summary, one
row per composition, method and cell size) and the CPU times (`table` = cpu, per composition and method).
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import argparse
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element, Structure
from pyxtal import pyxtal

from chggen_plugins.api import sample_tasks
from chggen_plugins.contract.registry import load_model
from chggen_plugins.datasets.build import compatible_groups
from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.evaluation.stability import build_hull
from chggen_plugins.evaluation.symmetry import LIBRARIES, is_symmetric, snap_to_symmetry
from chggen_plugins.runs.config import SymmetryConfig
from chggen_plugins.runs.methods import HOST
from chggen_plugins.runs.report import format_table, summary_rows
from chggen_plugins.runs.shards import derived_seed, evaluate, lowest_distinct
from chggen_plugins.runs.store import ResultStore, StoredResult
from chggen_plugins.sampling.inpaint import SamplerSettings
from chggen_plugins.structures.batch import InpaintTask
from chggen_plugins.structures.cells import AXIS_RATIOS, DEFAULT_V0, LATTICE_SYSTEMS, lattice_grid, random_lattice
from chggen_plugins.structures.host import host_from_structure
from chggen_plugins.structures.systems import formula as reduced_formula
from chggen_plugins.structures.wyckoff import NoSymmetricPlacement

METHODS = ("random", "pyxtal", "uncond", "inpaint", "inpaint-snap", "inpaint-sym", "inpaint-sym-model")
GOOD_WINDOW = 0.025  # eV/atom above the lowest energy found that still counts as a good structure
PAPER_SET = "ZnP2S6:9,Zn2P2S7:11,Li5Si2:14,Li2Si:12,Li13Si4:17"


def cell_counts(spec: str) -> tuple[str, dict[str, int]]:
    """'Li5Si2:14' -> ('Li5Si2', {'Li': 10, 'Si': 4})."""
    formula, _, atoms = spec.partition(":")
    composition = Composition(formula)
    units = int(atoms) / composition.num_atoms if atoms else 1
    if units != int(units):
        raise ChggenError(f"{spec}: {atoms} atoms is not a whole number of {formula} formula units")
    return reduced_formula(composition), {el.symbol: int(n * units) for el, n in composition.items()}


def random_uniform(counts: dict[str, int], n: int, v0: float, rng: np.random.Generator) -> list[Structure]:
    species = [s for s, c in counts.items() for _ in range(c)]
    out = []
    for _ in range(n):
        lattice = random_lattice(str(rng.choice(LATTICE_SYSTEMS)), float(rng.choice(AXIS_RATIOS)),
                                 len(species), v0, rng)
        out.append(Structure(lattice, species, rng.random((len(species), 3))))
    return out


def pyxtal_random(counts: dict[str, int], n: int, rng: np.random.Generator) -> list[Structure]:
    """Random symmetric crystals with exactly these atom counts (group drawn anew on PyXtal failure)."""
    groups = compatible_groups(tuple(counts.values()))
    if not groups:
        raise ChggenError(f"no space group 2-230 fits counts {counts}")
    out = []
    while len(out) < n:
        crystal = pyxtal()
        try:
            crystal.from_random(3, int(rng.choice(groups)), list(counts), list(counts.values()),
                                random_state=int(rng.integers(2**31)))
        except Exception:  # PyXtal gives up on some groups (no room for the Wyckoff sites)
            continue
        if crystal.valid:
            out.append(crystal.to_pymatgen())
    return out


def chggen_unconditional(counts, n, model, seed, v0, device) -> list[Structure]:
    grid = list(lattice_grid(sum(counts.values()), v0, seed))
    tasks = [InpaintTask(Structure(grid[i % len(grid)][2], [], []), counts, 1, label=f"cell {i}") for i in range(n)]
    return [s for samples in sample_tasks(tasks, model, seed, SamplerSettings(1, 1), device) for s in samples]


def chggen_inpainting(relaxed: list[tuple[Structure, float, str]], guests: list[str], n: int, max_hosts: int,
                      cell: str, model, seed, settings, device, symmetric: bool = False,
                      orbits: str = "uniform") -> tuple[list[Structure], list[str], list[tuple[str, Structure]]]:
    """n structures over up to max_hosts hosts from the best distinct relaxed (structure, energy, uid)
    (guests on Wyckoff orbits with `symmetric`; a host whose guest counts no orbit combination gives
    is skipped). Returns the structures, notes, and per structure (uid of the structure its host was
    stripped from, the host)."""
    hosts, notes = [], []
    for index in lowest_distinct([(structure, energy) for structure, energy, _ in relaxed]):
        if len(hosts) == max_hosts:
            break
        try:
            hosts.append((relaxed[index][2], host_from_structure(relaxed[index][0], guests, cell=cell)))
        except ChggenError as error:  # P1 at every tolerance, or guests that do not fit the new cell
            notes.append(str(error))
    if not hosts:
        return [], notes + ["no usable host: inpainting skipped"], []
    if symmetric:  # plan the Wyckoff placements first: a host that cannot take the guests drops out
        planned = []
        for parent, h in hosts:
            try:
                planned.append((parent, h, InpaintTask(h.structure, h.guests, 1, symmetric=True).plan.group.describe()))
            except NoSymmetricPlacement as error:
                notes.append(f"host {h.spacegroup_symbol} skipped: {error}")
        hosts = [(parent, h) for parent, h, _ in planned]
        how = "orbits drawn uniformly" if orbits == "uniform" else "the largest that fits; each sample's orbits proposed by the model"
        notes += [f"host {h.spacegroup_symbol}: guests keep {group} ({how})" for _, h, group in planned]
        if not hosts:
            return [], notes + ["no host takes the guests symmetrically: symmetric inpainting skipped"], []
    shares = [n // len(hosts) + (i < n % len(hosts)) for i in range(len(hosts))]
    tasks = [InpaintTask(h.structure, h.guests, k, label=h.spacegroup_symbol, symmetric=symmetric, orbits=orbits)
             for (_, h), k in zip(hosts, shares) if k]
    origins = [(parent, h.structure) for (parent, h), k in zip(hosts, shares) for _ in range(k)]
    notes += [f"host {h.structure.composition.formula} {h.spacegroup_symbol} (symprec {h.symprec})" for _, h in hosts]
    return [s for samples in sample_tasks(tasks, model, seed, settings, device) for s in samples], notes, origins


def host_row(store: ResultStore, formula: str, parent: str, host: Structure) -> str:
    """The uid of the stored host row (method `host`, parent: the structure it was stripped from),
    stored now if new: the campaign's layout, so the summary finds each sample's reference."""
    uid = f"{parent}/{HOST}"
    if uid not in store:
        store.add(uid, {"composition": formula, "method": HOST, "status": "host", "parent": parent,
                        "n_atoms": len(host)}, None, host, None)
    return uid


def good_structures(rows: list[StoredResult], lowest: float) -> int:
    """Relaxed structures that are symmetric (spglib, 0.1 A, 10 deg) and within GOOD_WINDOW of `lowest`."""
    return sum(r.get("status") == "relaxed" and r.get("e_per_atom") <= lowest + GOOD_WINDOW
               and is_symmetric(r.structure, 0.1, 10.0, "spglib") for r in rows)


def open_store(args: argparse.Namespace) -> ResultStore:
    """OUT/benchmark.db; a store made with other generation settings is refused, not mixed. --methods
    is not a setting: it picks which rows to make (each uid names its method), so methods can be run
    in several passes into one store."""
    ignored = ("threads", "out", "device", "hull_cache", "methods", "results_dir", "name")
    settings = {k: str(v) for k, v in vars(args).items() if k not in ignored}
    store = ResultStore(args.out / "benchmark.db")
    store.claim(settings, "benchmark rows", "use the old settings or another --out")
    print(f"results: {store.path} ({len(store)} structures already there)")
    return store


def stored_or_evaluated(store: ResultStore, uid: str, structure: Structure, relaxer: Relaxer, hull,
                        symmetry: SymmetryConfig, fields: dict) -> StoredResult:
    """The stored row of `uid`, or relax and analyse `structure` now and store it (with its CPU time)."""
    if uid in store:
        return next(store.results(uid=uid))
    start = time.process_time()
    result, measured = evaluate(structure, relaxer, hull, symmetry)
    energy = result.final_energy * len(result.structure) if result.structure is not None else None
    return store.add(uid, {**fields, **measured, "cpu_seconds": time.process_time() - start},
                     result.structure, structure, energy)


def main() -> None:
    parser = common.argument_parser(__doc__, "campaign_methods")
    parser.add_argument("--model", required=True, help="score model name (see `chggen models`)")
    parser.add_argument("--model-source", default=None, help="checkpoint / file for the model")
    parser.add_argument("--compositions", default=PAPER_SET,
                        help=f"FORMULA:ATOMS list (default: the paper's {PAPER_SET})")
    parser.add_argument("--guest", default=None,
                        help="guest species for inpainting (default: the least electronegative element)")
    parser.add_argument("--count", type=int, default=20, help="structures per composition and method")
    parser.add_argument("--methods", default=",".join(METHODS), help=f"subset of {','.join(METHODS)}")
    parser.add_argument("--hosts", type=int, default=3, help="hosts per composition for inpainting")
    parser.add_argument("--host-cell", choices=("conventional", "primitive"), default="conventional",
                        help="cell of the symmetrized host (default conventional, as the campaign)")
    parser.add_argument("--v0", type=float, default=DEFAULT_V0, help="A^3 per atom of random cells")
    parser.add_argument("--jump-length", type=int, default=10)
    parser.add_argument("--resamples", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=500, help="FIRE step budget")
    parser.add_argument("--snap-symprec", type=float, default=0.5, help="A, for inpaint-snap (default 0.5)")
    parser.add_argument("--entries", default=None, help="entries file for Ed (default: MP or CHGNet hull)")
    parser.add_argument("--hull-cache", default="~/.cache/chggen", help="MP / reference hull cache")
    parser.add_argument("--reference-max-atoms", type=int, default=8)
    parser.add_argument("--threshold", type=float, default=0.1, help="Ed screen (eV/atom)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", type=Path, default=Path("runs/campaign_methods"),
                        help="folder of benchmark.db, written as it goes (rerun to resume)")
    args = parser.parse_args()

    run_settings = common.start(args)
    methods = [m for m in args.methods.split(",") if m]
    if set(methods) - set(METHODS):
        parser.error(f"--methods: choose from {', '.join(METHODS)}")
    model = load_model(args.model, args.model_source, args.device)
    relaxer = Relaxer(max_steps=args.max_steps)
    symmetry = SymmetryConfig(0.1, 10.0, tuple(LIBRARIES))
    settings = SamplerSettings(args.jump_length, args.resamples)
    print(f"model {args.model}: {model.noise_process.describe()}")

    store = open_store(args)
    results: list[StoredResult] = []
    cpu: dict[tuple[str, str], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for spec in args.compositions.split(","):
        formula, counts = cell_counts(spec)
        guest = args.guest or min(counts, key=lambda s: (Element(s).X, s))
        hull = build_hull(counts, args.entries, Path(args.hull_cache), relaxer,
                          args.reference_max_atoms, 2, progress=True)
        print(f"\n{formula} ({sum(counts.values())} atoms), guest {guest}; Ed against {hull.label}")
        rng = np.random.default_rng(derived_seed(args.seed, formula))
        relaxed_uncond: list[tuple[Structure, float, str]] = []
        inpainted: list[Structure] = []
        inpainted_hosts: list[str | None] = []  # per inpainted structure, the uid of its host row
        for method in sorted(methods, key=METHODS.index):  # uncond before the inpaintings, inpaint before snap
            start = time.process_time()
            notes: list[str] = []
            hosts: list[str | None] = []  # per structure, its host row (inpainting methods)
            done = [f"{formula}/{method}/{index}" for index in range(args.count)]
            if all(uid in store for uid in done):  # a later pass (e.g. with more --methods): no resampling
                starts = [next(store.results(uid=uid)).generated for uid in done]
                notes.append("read back from the store")
            elif method == "random":
                starts = random_uniform(counts, args.count, args.v0, rng)
            elif method == "pyxtal":
                starts = pyxtal_random(counts, args.count, rng)
            elif method == "uncond":
                starts = chggen_unconditional(counts, args.count, model, derived_seed(args.seed, formula, method),
                                              args.v0, args.device)
            elif method == "inpaint-snap":
                if not inpainted:
                    stored = [row for row in results if row.get("composition") == formula and row.get("method") == "inpaint"]
                    inpainted, inpainted_hosts = [row.generated for row in stored], [row.get("parent") for row in stored]
                if not inpainted:
                    inpainted, notes, origins = chggen_inpainting(
                        relaxed_uncond, [guest], args.count, args.hosts, args.host_cell, model,
                        derived_seed(args.seed, formula, "inpaint"), settings, args.device)
                    inpainted_hosts = [host_row(store, formula, *origin) for origin in origins]
                starts, hosts = [snap_to_symmetry(s, args.snap_symprec) for s in inpainted], inpainted_hosts
            else:
                starts, notes, origins = chggen_inpainting(
                    relaxed_uncond, [guest], args.count, args.hosts, args.host_cell, model,
                    derived_seed(args.seed, formula, method), settings, args.device,
                    symmetric=method.startswith("inpaint-sym"), orbits="model" if method.endswith("-model") else "uniform")
                hosts = [host_row(store, formula, *origin) for origin in origins]
            cpu[(formula, method)]["generate"] = time.process_time() - start
            for note in notes:
                print(f"  {method}: {note}")
            if method == "inpaint":
                inpainted, inpainted_hosts = starts, hosts
            for index, structure in enumerate(starts):
                uid = f"{formula}/{method}/{index}"
                fields = {"composition": formula, "method": method, "n_atoms": len(structure)}
                if index < len(hosts):
                    fields["parent"] = hosts[index]
                row = stored_or_evaluated(store, uid, structure, relaxer, hull, symmetry, fields)
                results.append(row)
                if method == "uncond" and row.get("status") == "relaxed":
                    relaxed_uncond.append((row.structure, row.get("e_per_atom"), uid))
            cpu[(formula, method)]["relax+analyse"] = sum(r.get("cpu_seconds") for r in results
                                                          if r.get("composition") == formula and r.get("method") == method)
            cpu[(formula, method)]["structures"] = len(starts)

    print()
    results += list(store.results(method=HOST))  # each sample's host row: the way to its reference
    summary = summary_rows(results, symmetry, args.threshold, methods=METHODS)
    print(format_table(summary, LIBRARIES))
    rows = [{"table": "summary", **row} for row in summary]
    print("\nCPU time (process time, s): generate | relax + space groups + Ed (per structure) | per good structure "
          f"(symmetric, within {GOOD_WINDOW * 1000:.0f} meV/atom of the lowest found)")
    for (formula, method), times in cpu.items():
        n = max(int(times["structures"]), 1)
        mine = [r for r in results if r.get("composition") == formula and r.get("method") == method]
        energies = [r.get("e_per_atom") for r in results if r.get("composition") == formula
                    and r.get("method") in METHODS and r.get("status") == "relaxed"]
        good = good_structures(mine, min(energies)) if energies else 0
        total = times["generate"] + times["relax+analyse"]
        print(f"  {formula:10s} {method:17s} {times['generate']:8.1f} | {times['relax+analyse']:8.1f} "
              f"({times['relax+analyse'] / n:.1f} per structure, {int(times['structures'])} structures) | "
              + (f"{total / good:.1f} ({good} good)" if good else "no good structure"))
        rows.append({"table": "cpu", "composition": formula, "method": method, "structures": int(times["structures"]),
                     "cpu_generate_s": round(times["generate"], 2), "cpu_relax_analyse_s": round(times["relax+analyse"], 2),
                     "good": good, "cpu_per_good_s": round(total / good, 2) if good else None})
    common.write_results(args.name, run_settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
