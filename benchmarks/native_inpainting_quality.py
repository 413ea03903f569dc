"""Does the native model put guests back where a chemist would? (issue 16, item 1)

Held-out relaxed structures (optionally only those near their formula's lowest energy; the
training split's own content hash, so no weights compared here were
trained on them) lose their guest species (Zn where present, else Li); each framework gets k guest
sets back from every method, side by side in one run:
- each `--weights LABEL=PATH[:LEVELS/CORRECTORS/R][+SOLVER/STEPS[/CHURN]]` (default: the shipped
  weights, on their own ladder and r = 3, or r = 1 for host-conditioned weights, sampler pc),
  free inpainting; the same weights may be listed several times with different samplers (quality
  against network calls: `+heun/25/0.3` is the heun solver on 25 levels with churn 0.3);
- each `--backend LABEL=MODEL[:SOURCE]`: any registered score model (DiffCSP, MatterGen, ...) through
  the same sampler, on its own ladder and default RePaint r, so every backend meets the same
  held-out hosts (DiffCSP and MatterGen are trained on the same content-hash split);
- the first weights with symmetric (Wyckoff) inpainting, when `--symmetric` (a host whose counts
  fit no orbit combination counts as not recovered);
- the same network untrained;
- guests placed uniformly at random, at least 1 A from every atom placed before.
Before relaxation, over all k samples: the fraction of guests within 0.5 A of a true site (optimal
one-to-one pairing on periodic distances), of samples with every guest there, and the guest RMSD.
With `--relax`, every sample is relaxed as campaigns do (CHGNet, FIRE, fmax 0.1, cell and
positions) and a structure is *recovered* when one of its k samples matches the original
(StructureMatcher ltol 0.2, stol 0.3, angle 5) or relaxes to an energy at or below the original's
(the dataset's CHGNet energy after the same relaxation) plus 1 meV/atom: XtalPaint's success rule.

Run: python benchmarks/native_inpainting_quality.py data/dataset --relax --limit 30 \
         [--weights new=runs/x/best.pt --weights shipped=adapters/native/chggen_native/weights/native.pt]
         [--weights new-50=runs/x/best.pt:25/1/1] [--weights heun-49=runs/x/best.pt+heun/25/0.3]
         [--name quality_conditional_ladders] [--backend diffcsp=diffcsp:runs/diffcsp]
Writes benchmarks/results/native_inpainting_quality.json and .csv (or NAME.*): one row per method,
with the number of held-out cases in the settings; `--out` adds a CSV of per-structure recoveries.
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.plugin import DEFAULT_WEIGHTS  # noqa: E402
from chggen_native.train import supercell_of  # noqa: E402
from chggen_plugins.datasets.split import held_out  # noqa: E402
from chggen_plugins import InpaintTask, load_model, sample_tasks  # noqa: E402
from chggen_plugins.datasets import energy_above_lowest, read_dataset  # noqa: E402
from chggen_plugins.errors import ChggenError  # noqa: E402
from chggen_plugins.evaluation.relax import Relaxer  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings, score_calls  # noqa: E402
from chggen_plugins.structures.host import strip_guests  # noqa: E402

WITHIN = 0.5            # A
ENERGY_TOLERANCE = 1e-3  # eV/atom
MATCHER = StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5)


@dataclass
class Case:
    """One held-out structure: the truth, its energy per atom, the guest species and the host."""

    truth: Structure
    energy: float
    guest: str
    host: Structure
    guests: dict[str, int]


def guest_of(structure: Structure) -> str | None:
    symbols = {site.specie.symbol for site in structure}
    for guest in ("Zn", "Li"):
        if guest in symbols and len(symbols) > 1:
            return guest
    return None


def held_out_cases(data: Path, val_fraction: float, limit: int, window: float | None,
                   elements: frozenset[int] | None = None, supercell_atoms: int = 0) -> list[Case]:
    """Held-out structures with a guest species; with `window`, only those at most that many eV/atom
    above the lowest structure of their formula in the whole dataset (where "at or below the
    reference energy" is a hard bar: most relaxed random starts are far above their formula's best);
    with `elements`, only structures made of those atomic numbers; with `supercell_atoms`, each as
    its supercell of at least that many atoms (a large host, as campaigns build)."""
    records = read_dataset(data)
    above = energy_above_lowest(records) if window is not None else [0.0] * len(records)
    cases = []
    for record, excess in zip(records, above):
        guest = guest_of(record.structure)
        known = elements is None or set(record.structure.atomic_numbers) <= elements
        if guest and known and excess <= (window or 0.0) and held_out(record.structure, val_fraction):
            truth = supercell_of(record.structure, supercell_atoms)
            host, guests = strip_guests(truth, guest)
            cases.append(Case(truth, record.energy / len(record.structure), guest, host, guests))
    return cases[:limit] if limit else cases


def guest_distances(generated: Structure, truth: Structure, guest: str) -> np.ndarray:
    """Distances (A) of each true guest site to its generated guest, optimally paired."""
    made = [s.frac_coords for s in generated if s.specie.symbol == guest]
    true = [s.frac_coords for s in truth if s.specie.symbol == guest]
    distances = truth.lattice.get_all_distances(true, made)
    rows, cols = linear_sum_assignment(distances)
    return distances[rows, cols]


def random_guests(case: Case, k: int, rng: np.random.Generator) -> list[Structure]:
    """Guests uniformly at random, redrawn until at least 1 A from every atom already placed."""
    samples = []
    for _ in range(k):
        placed = case.host.copy()
        for _ in range(case.guests[case.guest]):
            for _ in range(1000):
                frac = rng.random(3)
                if len(placed) == 0 or placed.lattice.get_all_distances([frac], placed.frac_coords).min() >= 1.0:
                    break
            placed.append(case.guest, frac)
        samples.append(placed)
    return samples


def inpainted(cases: list[Case], model, k: int, settings: SamplerSettings, seed: int,
              symmetric: bool = False) -> list[list[Structure]]:
    """k samples per case; a case whose symmetric plan fails gets no samples (not recovered)."""
    tasks, where = [], []
    for index, case in enumerate(cases):
        try:
            tasks.append(InpaintTask(case.host, case.guests, n_samples=k, symmetric=symmetric))
            where.append(index)
        except ChggenError:
            pass
    results: list[list[Structure]] = [[] for _ in cases]
    for index, samples in zip(where, sample_tasks(tasks, model, seed=seed, settings=settings, progress=True)):
        results[index] = samples
    return results


def recovered(case: Case, samples: list[Structure], relaxer: Relaxer) -> tuple[bool, bool]:
    """(some sample matches the truth after relaxation, some sample is at or below its energy)."""
    match = lower = False
    for sample in samples:
        result = relaxer.relax(sample)
        if result.structure is None:
            continue
        match = match or MATCHER.fit(result.structure, case.truth)
        lower = lower or result.final_energy <= case.energy + ENERGY_TOLERANCE
    return match, lower


def calls_per_sample(model, settings: SamplerSettings) -> int:
    """Network calls one sample costs (the sampler's own count: pc, heun and ode alike)."""
    return score_calls(model, settings)


def report(name: str, cases: list[Case], samples: list[list[Structure]], sample_seconds: float,
           relaxer: Relaxer | None, rows: list[dict], calls: int = 0, sampler: str = "") -> dict:
    distances = [guest_distances(s, case.truth, case.guest) for case, group in zip(cases, samples) for s in group]
    flat = np.concatenate(distances) if distances else np.array([np.inf])
    figures = {"method": name, "sampler": sampler, "calls": calls, "guests_within": float(np.mean(flat < WITHIN)),
               "all_within": float(np.mean([d.max() < WITHIN for d in distances] or [0])),
               "rmsd_A": float(np.sqrt(np.mean(flat ** 2))), "sample_s": round(sample_seconds, 1)}
    line = (f"{name:<20} {calls:>6} {figures['guests_within']:>8.3f} {figures['all_within']:>8.3f} "
            f"{figures['rmsd_A']:>7.2f} {sample_seconds:>8.1f}")
    if relaxer is not None:
        start = time.perf_counter()
        outcomes = [recovered(case, group, relaxer) for case, group in zip(cases, samples)]
        for case, group, (match, lower) in zip(cases, samples, outcomes):
            rows.append({"method": name, "formula": case.truth.composition.formula.replace(" ", ""),
                         "samples": len(group), "match": match, "lower_energy": lower})
        figures.update(match=float(np.mean([m for m, _ in outcomes])), lower=float(np.mean([e for _, e in outcomes])),
                       recovered=float(np.mean([m or e for m, e in outcomes])),
                       relax_s=round(time.perf_counter() - start, 1))
        line += (f" {figures['match']:>7.3f} {figures['lower']:>7.3f} {figures['recovered']:>9.3f} "
                 f"{figures['relax_s']:>8.1f}")
    print(line, flush=True)
    return figures


def parse_weights(spec: str) -> tuple[str, str, tuple[int, int, int] | None, tuple[str, int | None, float]]:
    """LABEL=PATH[:LEVELS/CORRECTORS/R][+SOLVER/STEPS[/CHURN]] -> (label, path, ladder or None,
    (solver, steps, churn)); no +...: the pc sampler."""
    label, path = spec.split("=", 1) if "=" in spec else (Path(spec).stem, spec)
    path, _, solver = path.partition("+")
    path, _, sampler = path.partition(":")
    name, steps, churn = (solver.split("/") + ["", ""])[:3] if solver else ("pc", "", "")
    method = (name, int(steps) if steps else None, float(churn or 0))
    if not sampler:
        return label, path, None, method
    levels, correctors, resamples = (int(v) for v in sampler.split("/"))
    return label, path, (levels, correctors, resamples), method


def main() -> None:
    parser = common.argument_parser(__doc__, "native_inpainting_quality")
    parser.add_argument("data", type=Path)
    parser.add_argument("--weights", action="append", default=[], metavar="LABEL=PATH[:L/C/R][+SOLVER/S/G]",
                        help="weights to compare (repeat), optionally on L levels, C correctors, RePaint r, "
                             "and with solver heun or ode on S levels with churn G (default pc); "
                             "default: the shipped ones")
    parser.add_argument("--backend", action="append", default=[], metavar="LABEL=MODEL[:SOURCE]",
                        help="another registered score model to compare (repeat), e.g. diffcsp=diffcsp:runs/diffcsp")
    parser.add_argument("--levels", type=int, default=None, help="noise levels (default: each checkpoint's)")
    parser.add_argument("--correctors", type=int, default=None, help="Langevin steps per level (default: checkpoint's)")
    parser.add_argument("--snr", type=float, default=None, help="corrector signal-to-noise ratio (default: checkpoint's)")
    parser.add_argument("--resamples", type=int, default=None,
                        help="RePaint r where a --weights entry names none (default: each model's, 3 or 1)")
    parser.add_argument("--samples", type=int, default=4, help="k: samples per held-out structure")
    parser.add_argument("--limit", type=int, default=0, help="use at most this many held-out structures")
    parser.add_argument("--energy-window", type=float, default=None,
                        help="only held-out structures this close (eV/atom) to their formula's lowest")
    parser.add_argument("--supercell-atoms", type=int, default=0,
                        help="inpaint each held-out structure as its supercell of at least this many atoms")
    parser.add_argument("--relax", action="store_true", help="relax every sample and count recoveries")
    parser.add_argument("--symmetric", action="store_true", help="add symmetric inpainting (first weights)")
    parser.add_argument("--skip-baselines", action="store_true", help="leave out the untrained network and random guests")
    parser.add_argument("--out", type=Path, default=None, help="CSV of per-structure recoveries")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_settings = common.start(args)

    weights = [parse_weights(w) for w in args.weights] or [("shipped", str(DEFAULT_WEIGHTS), None, ("pc", None, 0.0))]
    models, samplers = [], {}
    for label, path, sampler, (solver, steps, churn) in weights:
        model = NativeScoreModel.load(Path(path))
        process = model.noise_process
        if sampler is None:
            models.append((label, model.with_levels(args.levels or process.num_levels, args.correctors, args.snr)))
            samplers[label] = SamplerSettings(10, args.resamples, solver, steps, churn)
        else:
            models.append((label, model.with_levels(sampler[0], sampler[1], args.snr)))
            samplers[label] = SamplerSettings(10, sampler[2], solver, steps, churn)
    for spec in args.backend:
        label, _, model_spec = spec.partition("=")
        name, _, source = model_spec.partition(":")
        models.append((label, load_model(name, source or None)))
        samplers[label] = SamplerSettings(10, args.resamples)
    first = models[0][1]
    val_fraction = first.metadata.get("train_settings", {}).get("val_fraction", 0.1)
    known = frozenset.intersection(*(model.elements for _, model in models))
    # only structures every compared model knows
    cases = held_out_cases(args.data, val_fraction, args.limit, args.energy_window, known, args.supercell_atoms)
    window = "" if args.energy_window is None else f" within {args.energy_window} eV/atom of their formula's lowest"
    ladders = "; ".join(f"{label} {m.noise_process.describe()}, {samplers[label].for_model(m).label()}"
                        for label, m in models)
    sizes = f", as supercells of >= {args.supercell_atoms} atoms" if args.supercell_atoms else ""
    print(f"{len(cases)} held-out structures{window}{sizes} ({sum(sum(c.guests.values()) for c in cases)} guests), "
          f"k = {args.samples}; {ladders} (untrained: as the first), j = 10")
    header = f"{'method':<20} {'calls':>6} {'guests<.5':>8} {'all<.5':>8} {'RMSD':>7} {'sample s':>8}"
    if args.relax:
        header += f" {'match':>7} {'E<=ref':>7} {'recovered':>9} {'relax s':>8}"
    print(header)
    relaxer = Relaxer() if args.relax else None
    rows: list[dict] = []
    untrained = NativeScoreModel.untrained(first.elements, first.network.config, seed=args.seed).with_levels(
        first.noise_process.num_levels, first.noise_process.corrector_steps, first.noise_process.snr)
    first_settings = samplers[models[0][0]]
    runs = [(label, model, False, samplers[label]) for label, model in models] + \
        ([(f"{models[0][0]} symmetric", first, True, first_settings)] if args.symmetric else []) + \
        ([] if args.skip_baselines else [("untrained", untrained, False, first_settings)])
    results = []
    for name, model, symmetric, settings in runs:
        start = time.perf_counter()
        samples = inpainted(cases, model, args.samples, settings, args.seed, symmetric)
        results.append(report(name, cases, samples, time.perf_counter() - start, relaxer, rows,
                              calls_per_sample(model, settings), settings.for_model(model).label()))
        # written after every method: a long comparison cut short keeps what it measured
        common.write_results(args.name, {**run_settings, "cases": len(cases)}, results, args.results_dir)
    if not args.skip_baselines:
        rng = np.random.default_rng(args.seed)
        results.append(report("uniform random", cases, [random_guests(c, args.samples, rng) for c in cases], 0.0,
                              relaxer, rows))
        common.write_results(args.name, {**run_settings, "cases": len(cases)}, results, args.results_dir)
    if args.out and rows:
        common.write_csv(args.out, rows)


if __name__ == "__main__":
    main()
