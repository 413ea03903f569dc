"""Inpainting quality against network calls for the native model (issue 16, item 4).

One run sweeps the sampler: noise levels (50, 100, 200), Langevin corrector steps per level
(0, 1, 2, 5), the correctors' signal-to-noise ratio (the weights' own unless --snr lists others) and
RePaint resamples (1, 3), j = 10, on the held-out structures of
`native_inpainting_quality.py` (same cases, same guest rule). Per setting it prints the score calls
per structure (counted), the wall time, and the before-relaxation quality over k samples: guests
within 0.5 A of a true site, samples with every guest there, guest RMSD. Sorted by calls, with the
settings that no cheaper setting beats on guests within 0.5 A marked '*' (the Pareto front).

Run: python benchmarks/native_sampler_calls.py data/dataset --weights runs/x/best.pt --limit 40
Writes benchmarks/results/native_sampler_calls.json and .csv: one row per sampler setting, by calls,
`pareto` true on the front.
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import itertools  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.plugin import DEFAULT_WEIGHTS  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402
from native_inpainting_quality import WITHIN, guest_distances, held_out_cases, inpainted  # noqa: E402
from timed_model import TimedModel  # noqa: E402


def main() -> None:
    parser = common.argument_parser(__doc__, "native_sampler_calls")
    parser.add_argument("data", type=Path)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--levels", type=int, nargs="+", default=[50, 100, 200])
    parser.add_argument("--correctors", type=int, nargs="+", default=[0, 1, 2, 5])
    parser.add_argument("--snr", type=float, nargs="+", default=None, help="corrector snr (default: the weights')")
    parser.add_argument("--resamples", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--samples", type=int, default=2, help="k: samples per held-out structure")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--energy-window", type=float, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = common.start(args)

    model = NativeScoreModel.load(args.weights)
    val_fraction = model.metadata.get("train_settings", {}).get("val_fraction", 0.1)
    cases = held_out_cases(args.data, val_fraction, args.limit, args.energy_window)
    print(f"{len(cases)} held-out structures, k = {args.samples}, j = 10; weights {args.weights}", flush=True)
    rows = []
    snrs = args.snr or [model.noise_process.snr]
    for levels, correctors, snr, resamples in itertools.product(args.levels, args.correctors, snrs, args.resamples):
        timed = TimedModel(model.with_levels(levels, correctors, snr))
        start = time.perf_counter()
        samples = inpainted(cases, timed, args.samples, SamplerSettings(10, resamples), args.seed)
        seconds = time.perf_counter() - start
        distances = [guest_distances(s, c.truth, c.guest) for c, group in zip(cases, samples) for s in group]
        flat = np.concatenate(distances)
        rows.append((timed.calls, levels, correctors, snr, resamples, np.mean(flat < WITHIN),
                     np.mean([d.max() < WITHIN for d in distances]), np.sqrt(np.mean(flat ** 2)), seconds))
        print(f"  {levels} levels, {correctors} correctors at snr {snr}, r = {resamples}: {timed.calls} calls, "
              f"{rows[-1][5]:.3f} within 0.5 A, {seconds:.0f} s", flush=True)
    print(f"\n{'calls':>6} {'levels':>6} {'corr':>4} {'snr':>5} {'r':>2} {'guests<.5':>9} {'all<.5':>7} {'RMSD':>6} "
          f"{'seconds':>8}")
    best = -1.0
    results = []
    for calls, levels, correctors, snr, resamples, within, every, rmsd, seconds in sorted(rows):
        front = within > best
        best = max(best, within)
        results.append({"calls": calls, "levels": levels, "correctors": correctors, "snr": snr, "resamples": resamples,
                        "guests_within": float(within), "all_within": float(every), "rmsd_A": float(rmsd),
                        "seconds": round(seconds, 2), "pareto": front})
        print(f"{calls:>6} {levels:>6} {correctors:>4} {snr:>5.2f} {resamples:>2} {within:>9.3f} {every:>7.3f} "
              f"{rmsd:>6.2f} {seconds:>8.1f} {'*' if front else ' '}")
    common.write_results(args.name, {**settings, "cases": len(cases)}, results, args.results_dir)


if __name__ == "__main__":
    main()
