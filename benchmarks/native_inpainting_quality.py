"""Does the trained native model put guests back where they were? (issue: native backend, item 6)

Held-out relaxed structures (the training split's own hash, so none was trained on) lose their
guest species (Zn where present, else Li); each framework is inpainted back and the guests are
matched to the true sites one to one (Hungarian assignment on periodic distances). Printed side by
side in one run, for the trained weights, the same network untrained, and uniformly random guests:
the fraction of guest atoms within 0.5 A of a true site, the fraction of structures with every guest
within 0.5 A, and the guest RMSD (A), all before any relaxation.

Run: python benchmarks/native_inpainting_quality.py data/dataset [--weights best.pt] [--levels 50]
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pymatgen.core import Structure  # noqa: E402
from scipy.optimize import linear_sum_assignment  # noqa: E402

from chggen_native import NativeScoreModel  # noqa: E402
from chggen_native.plugin import DEFAULT_WEIGHTS  # noqa: E402
from chggen_native.train import held_out  # noqa: E402
from chggen_plugins import InpaintTask, sample_tasks  # noqa: E402
from chggen_plugins.datasets.readers import read_dataset  # noqa: E402
from chggen_plugins.host import strip_guests  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402

WITHIN = 0.5  # Angstrom


def guest_of(structure: Structure) -> str | None:
    symbols = {site.specie.symbol for site in structure}
    for guest in ("Zn", "Li"):
        if guest in symbols and len(symbols) > 1:
            return guest
    return None


def guest_distances(generated: Structure, truth: Structure, guest: str) -> np.ndarray:
    """Distances (A) of each true guest site to its generated guest, optimally paired."""
    made = [s.frac_coords for s in generated if s.specie.symbol == guest]
    true = [s.frac_coords for s in truth if s.specie.symbol == guest]
    distances = truth.lattice.get_all_distances(true, made)
    rows, cols = linear_sum_assignment(distances)
    return distances[rows, cols]


def summarize(name: str, per_structure: list[np.ndarray], seconds: float) -> None:
    flat = np.concatenate(per_structure)
    every = np.mean([d.max() < WITHIN for d in per_structure])
    rmsd = np.sqrt(np.mean(flat ** 2))
    print(f"{name:<22} {np.mean(flat < WITHIN):>9.3f} {every:>12.3f} {rmsd:>9.3f} {seconds:>9.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path)
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS)
    parser.add_argument("--levels", type=int, default=50, help="sampler ladder (network is sigma-conditioned)")
    parser.add_argument("--resamples", type=int, default=3)
    parser.add_argument("--limit", type=int, default=0, help="use at most this many held-out structures")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    trained = NativeScoreModel.load(args.weights)
    val_fraction = trained.metadata.get("train_settings", {}).get("val_fraction", 0.1)
    cases = []
    for record in read_dataset(args.data):
        guest = guest_of(record.structure)
        if guest and held_out(record.structure, val_fraction):
            host, guests = strip_guests(record.structure, guest)
            cases.append((record.structure, guest, InpaintTask(host, guests)))
    cases = cases[:args.limit] if args.limit else cases
    tasks = [task for _, _, task in cases]
    print(f"{len(cases)} held-out structures ({sum(len(t.guest_numbers) for t in tasks)} guests); "
          f"{args.levels} levels, j=10, r={args.resamples}, torch threads {args.threads}, "
          f"OPENBLAS_NUM_THREADS {os.environ['OPENBLAS_NUM_THREADS']}; weights {args.weights}")
    print(f"{'method':<22} {'guests<0.5A':>9} {'all<0.5A':>12} {'RMSD(A)':>9} {'seconds':>9}")

    settings = SamplerSettings(jump_length=10, resamples=args.resamples)
    untrained = NativeScoreModel.untrained(trained.elements, trained.network.config, seed=args.seed)
    for name, model in (("trained", trained), ("untrained", untrained)):
        start = time.perf_counter()
        results = sample_tasks(tasks, model.with_levels(args.levels), seed=args.seed, settings=settings,
                               progress=True)
        summarize(name, [guest_distances(samples[0], truth, guest)
                         for (truth, guest, _), samples in zip(cases, results)],
                  time.perf_counter() - start)

    rng = np.random.default_rng(args.seed)
    random_distances = []
    for truth, guest, task in cases:
        placed = task.host.copy()
        for _ in task.guest_numbers:
            placed.append(guest, rng.random(3))
        random_distances.append(guest_distances(placed, truth, guest))
    summarize("uniform random", random_distances, 0.0)


if __name__ == "__main__":
    main()
