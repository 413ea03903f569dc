"""Does batching CHGNet pay on CPU? One prediction for N structures vs N predictions, side by side.

A relaxation step is one CHGNet energy + forces + stress call per structure; relaxing many structures
together could only help if one batched call is cheaper than the same calls one by one. Measured on
rattled Li-Si cells of 32 atoms (energy, forces and stress, as FIRE needs), repeated and interleaved
so machine load hits both ways alike; the ratio is printed. The campaign relaxes one structure at a
time (ASE FIRE + FrechetCellFilter) because of what this shows.

Run: python benchmarks/chgnet_batching.py [--structures 16] [--repeats 3]
Writes benchmarks/results/chgnet_batching.json and .csv (one row per way of calling CHGNet).
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
from chgnet.model import CHGNet  # noqa: E402
from pymatgen.core import Lattice, Structure  # noqa: E402


def cells(count: int, seed: int = 0) -> list[Structure]:
    """Diamond Si 2x1x1 (16 Si) with Li in the 16 tetrahedral holes of the supercell (32 atoms), rattled."""
    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.6), ["Si"], [[0, 0, 0]])
    holes = [[0.5, 0.5, 0.5], [0.0, 0.0, 0.5], [0.0, 0.5, 0.0], [0.5, 0.0, 0.0],
             [0.25, 0.25, 0.75], [0.25, 0.75, 0.25], [0.75, 0.25, 0.25], [0.75, 0.75, 0.75]]
    for site in holes:
        si.append("Li", site)
    base = si * (2, 1, 1)
    rng = np.random.default_rng(seed)
    return [Structure(base.lattice, base.species, base.cart_coords + rng.normal(scale=0.05, size=(len(base), 3)),
                      coords_are_cartesian=True) for _ in range(count)]


def main() -> None:
    parser = common.argument_parser(__doc__, "chgnet_batching")
    parser.add_argument("--structures", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    settings = common.start(args)
    model = CHGNet.load(verbose=False)
    structures = cells(args.structures)
    model.predict_structure(structures[:2], task="efs", batch_size=2)  # warm-up
    batched, sequential = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        together = model.predict_structure(structures, task="efs", batch_size=len(structures))
        batched.append(time.perf_counter() - start)
        start = time.perf_counter()
        alone = [model.predict_structure(s, task="efs") for s in structures]
        sequential.append(time.perf_counter() - start)
    drift = max(abs(float(a["e"]) - float(b["e"])) for a, b in zip(together, alone))
    b, s = statistics.median(batched), statistics.median(sequential)
    print(f"{len(structures)} structures of {len(structures[0])} atoms, energy+forces+stress; "
          f"load average {os.getloadavg()[0]:.2f}")
    print(f"one batched call   {b:7.2f} s  ({b / len(structures) * 1000:.0f} ms per structure)")
    print(f"one call each      {s:7.2f} s  ({s / len(structures) * 1000:.0f} ms per structure)")
    print(f"batched speed-up   {s / b:.2f}x   (largest energy difference {drift:.1e} eV/atom)")
    per = {"structures": len(structures), "atoms": len(structures[0]), "repeats": args.repeats}
    common.write_results(args.name, settings, [
        {"way": "one batched call", **per, "median_s": round(b, 3), "ms_per_structure": round(b / len(structures) * 1000, 1),
         "speed_up": round(s / b, 3), "largest_energy_difference_ev_per_atom": drift},
        {"way": "one call each", **per, "median_s": round(s, 3), "ms_per_structure": round(s / len(structures) * 1000, 1),
         "speed_up": 1.0, "largest_energy_difference_ev_per_atom": drift}], args.results_dir)


if __name__ == "__main__":
    main()
