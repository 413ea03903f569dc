"""Three published cathodes rebuilt from their own hosts (issue 26, part 3).

LiCoO2 (R-3m, 12-atom hexagonal cell), LiFePO4 (Pnma, 28 atoms) and LiMn2O4 (Fd-3m, 14-atom primitive
cell), each built from its paper's refinement (`chggen_plugins/structures/known.py` cites them).
The published crystal loses every Li; each `--weights LABEL=PATH[:LEVELS/CORRECTORS/R]` (as in
native_inpainting_quality.py; default the bundled host-conditioned weights) puts k Li sets back.
Before relaxation: the share of Li within 0.5 A of a published Li site (optimal pairing). After
relaxation (CHGNet, FIRE, fmax 0.1, cell and positions, as campaigns do): a sample *matches* when
StructureMatcher (0.2, 0.3, 5) fits it to the published crystal relaxed the same way, and its
energy is given against that relaxed crystal's, in meV/atom. Weights that do not know an element
of a crystal get a row that says which, and no samples.

None of the three crystals was used to choose anything; the training data holds CHGNet-relaxed
decorated prototypes and random starts of these systems, which may include the same structure types.

Run: python benchmarks/known_cathodes.py --samples 4 [--weights cond=adapters/native/chggen_native/weights/native_conditional.pt]
Writes benchmarks/results/known_cathodes.json and .csv (or NAME.*): one row per weights and crystal.
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from native_inpainting_quality import MATCHER, WITHIN, calls_per_sample, guest_distances, parse_weights  # noqa: E402
from pymatgen.core import Element, Structure  # noqa: E402

from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.plugin import DEFAULT_WEIGHTS  # noqa: E402
from chggen_plugins import InpaintTask, sample_tasks  # noqa: E402
from chggen_plugins.evaluation.relax import Relaxer  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402
from chggen_plugins.structures.host import strip_guests  # noqa: E402
from chggen_plugins.structures.known import KNOWN  # noqa: E402

CONDITIONAL_WEIGHTS = DEFAULT_WEIGHTS.with_name("native_conditional.pt")


def relaxed_references(relaxer: Relaxer, names: list[str]) -> dict[str, tuple[Structure, float, float]]:
    """Each published crystal relaxed as the samples will be: (structure, eV/atom, CPU seconds)."""
    references = {}
    for name in names:
        start = time.process_time()
        result = relaxer.relax(KNOWN[name].structure())
        if result.structure is None:
            raise SystemExit(f"{name}: the CHGNet relaxation of the published crystal failed: {result.error}")
        references[name] = (result.structure, result.final_energy, time.process_time() - start)
    return references


def unknown_elements(model: NativeScoreModel, structure: Structure) -> list[str]:
    """Symbols of `structure` the weights were not trained on (sorted), empty when it knows them all."""
    return sorted({site.specie.symbol for site in structure if site.specie.Z not in model.elements},
                  key=lambda symbol: Element(symbol).Z)


def main() -> None:
    parser = common.argument_parser(__doc__, "known_cathodes")
    parser.add_argument("--weights", action="append", default=[], metavar="LABEL=PATH[:L/C/R]",
                        help=f"weights to compare (repeat); default: {CONDITIONAL_WEIGHTS.name}")
    parser.add_argument("--crystals", nargs="+", default=sorted(KNOWN), choices=sorted(KNOWN))
    parser.add_argument("--samples", type=int, default=4, help="k: samples per crystal")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    run_settings = common.start(args)
    relaxer = Relaxer()
    references = relaxed_references(relaxer, args.crystals)
    for name, (structure, energy, seconds) in references.items():
        print(f"{name}: {len(structure)} atoms, relaxed {energy:.4f} eV/atom ({seconds:.0f} CPU s); "
              f"{KNOWN[name].reference}")
    print(f"{'method':<12} {'calls':>6} {'crystal':<8} {'Li<.5':>6} {'match':>6} {'dE meV/atom (each sample)':<34} "
          f"{'sample s':>8} {'relax s':>8}")
    rows = []
    for label, path, sampler in map(parse_weights, args.weights or [f"conditional={CONDITIONAL_WEIGHTS}"]):
        model = NativeScoreModel.load(Path(path))
        settings = SamplerSettings(10, None)
        if sampler is not None:
            model, settings = model.with_levels(sampler[0], sampler[1]), SamplerSettings(10, sampler[2])
        for name in args.crystals:
            published = KNOWN[name].structure()
            row = {"method": label, "weights": path, "crystal": name, "atoms": len(published),
                   "reference": KNOWN[name].reference, "reference_eV_atom": round(references[name][1], 5)}
            missing = unknown_elements(model, published)
            if missing:
                rows.append({**row, "unknown_elements": missing})
                print(f"{label:<12} {'':>6} {name:<8} weights do not know {', '.join(missing)}: not sampled", flush=True)
                continue
            host, guests = strip_guests(published, "Li")
            start = time.process_time()
            samples = sample_tasks([InpaintTask(host, guests, n_samples=args.samples)], model, seed=args.seed,
                                   settings=settings)[0]
            sample_seconds = time.process_time() - start
            start = time.process_time()
            relaxed = [relaxer.relax(sample) for sample in samples]
            relax_seconds = time.process_time() - start
            reference, energy, _ = references[name]
            matches = [r.structure is not None and bool(MATCHER.fit(r.structure, reference)) for r in relaxed]
            excess = [None if r.final_energy is None else round(1000 * (r.final_energy - energy), 1) for r in relaxed]
            within = np.concatenate([guest_distances(s, published, "Li") for s in samples]) < WITHIN
            row.update(guests=guests["Li"], calls=calls_per_sample(model, settings.for_model(model)),
                       li_within=round(float(within.mean()), 3), matched=int(sum(matches)), samples=len(samples),
                       match_each=matches, de_meV_atom=excess, sample_cpu_s=round(sample_seconds, 1),
                       relax_cpu_s=round(relax_seconds, 1))
            rows.append(row)
            shown = ", ".join("-" if e is None else f"{e:+.1f}" for e in excess)
            print(f"{label:<12} {row['calls']:>6} {name:<8} {row['li_within']:>6.2f} {row['matched']:>3}/{len(samples):<2} "
                  f"{shown:<34} {row['sample_cpu_s']:>8.1f} {row['relax_cpu_s']:>8.1f}", flush=True)
    common.write_results(args.name, run_settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
