"""Sampler cost, measured side by side in one run (issue: core sampler).

1. Time inside ScoreModel.score vs total sampler time for one batch of 64 crystals: what the loop
   itself adds (noise draws, wrapping, host re-noising) on top of the model.
2. 64 crystals in one batch vs 64 sequential runs with the same model and schedule.

The model is the bundled analytic score (exact wrapped-Gaussian score, an image or Fourier sum per
atom), so the overhead share printed here is an upper bound for any real network, which costs more
per call. Run: python benchmarks/sampler_overhead.py [--levels 200] [--threads 1]
"""

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402

from chggen_plugins import InpaintTask, sample_tasks  # noqa: E402
from chggen_plugins.analytic import AnalyticSiteModel  # noqa: E402
from chggen_plugins.sampling.inpaint import SamplerSettings  # noqa: E402
from chggen_plugins.sampling.noise import CartesianVE  # noqa: E402


class TimedModel:
    """Adds up wall time spent inside the wrapped model's score."""

    def __init__(self, inner):
        self.inner, self.noise_process, self.elements = inner, inner.noise_process, inner.elements
        self.seconds, self.calls = 0.0, 0

    def score(self, batch, level):
        start = time.perf_counter()
        out = self.inner.score(batch, level)
        self.seconds += time.perf_counter() - start
        self.calls += 1
        return out

    def to(self, device):
        return self


def li_si_reference() -> Structure:
    """Diamond Si (8 atoms) with Li on the 4 empty tetrahedral sites: 12 atoms, 4 guests."""
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])
    for frac in ([0.5, 0.5, 0.5], [0.5, 0, 0], [0, 0.5, 0], [0, 0, 0.5]):
        si.append("Li", frac)
    return si


def run(model, tasks, settings, seed=0):
    start = time.perf_counter()
    sample_tasks(tasks, model, seed=seed, settings=settings)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", type=int, default=200)
    parser.add_argument("--crystals", type=int, default=64)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    reference = li_si_reference()
    host = reference.copy()
    host.remove_species(["Li"])
    process = CartesianVE(num_levels=args.levels)
    settings = SamplerSettings(jump_length=10, resamples=3)
    print(f"torch threads {args.threads}, OPENBLAS_NUM_THREADS {os.environ['OPENBLAS_NUM_THREADS']}, "
          f"{args.levels} levels, j=10, r=3, {process.corrector_steps} corrector steps; "
          f"host Si8 + 4 Li guests")

    batched = TimedModel(AnalyticSiteModel(reference, 0.1, process))
    total = run(batched, [InpaintTask(host, {"Li": 4}, n_samples=args.crystals)], settings)
    inside = batched.seconds
    print(f"\n1. one batch of {args.crystals} crystals: {total:.2f} s total, {inside:.2f} s inside score "
          f"({batched.calls} calls); the sampler adds {100 * (total - inside) / inside:.1f}% "
          f"on top of the model (target < 10%)")

    sequential = TimedModel(AnalyticSiteModel(reference, 0.1, process))
    one_by_one = sum(run(sequential, [InpaintTask(host, {"Li": 4})], settings, seed)
                     for seed in range(args.crystals))
    print(f"2. {args.crystals} sequential runs: {one_by_one:.2f} s ({sequential.calls} calls, "
          f"{sequential.seconds:.2f} s inside score) vs batched {total:.2f} s: "
          f"batched is {one_by_one / total:.1f}x faster (target >= 5x)")


if __name__ == "__main__":
    main()
