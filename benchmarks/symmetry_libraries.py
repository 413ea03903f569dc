"""spglib vs moyopy, side by side in one run: time per space-group call and whether they agree.

Both go through `chggen_plugins.evaluation.symmetry.space_group` (symprec 0.1 A, angle 10 deg), so the
times include the same Structure -> cell conversion. Cases: a 64-atom Si diamond supercell, ideal and
rattled by 0.05 A, and LiFePO4 (28 atoms, ideal and rattled; 56-atom rattled supercell). The last
table counts how often each library recovers the parent group over many rattled copies. moyopy
may change the tolerance in its iterative search (e.g. tighten 0.1 -> 0.05 A when 0.1 gives an
inconsistent group), so the tolerance it actually used is printed too.

Run: python benchmarks/symmetry_libraries.py [--repeats 30] [--copies 50]
Writes benchmarks/results/symmetry_libraries.json and .csv: one row per case (`table` = timings) and
per recovery count (`table` = recovery).
"""

import common  # first: it pins OpenBLAS threads before numpy loads (BLAS threads only add noise to small calls)

import os
import statistics
import time

import numpy as np
from pymatgen.core import Lattice, Structure
from pymatgen.util.testing import STRUCTURES_DIR

from chggen_plugins.evaluation.symmetry import space_group


def rattle(structure: Structure, distance: float, seed: int) -> Structure:
    """Move every atom by exactly `distance` A in a random direction."""
    v = np.random.default_rng(seed).normal(size=(len(structure), 3))
    v *= distance / np.linalg.norm(v, axis=1, keepdims=True)
    return Structure(structure.lattice, structure.species, structure.cart_coords + v, coords_are_cartesian=True)


def seconds_per_call(structure: Structure, library: str, repeats: int) -> float:
    space_group(structure, library=library)  # warm-up (imports, caches)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        space_group(structure, library=library)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = common.argument_parser(__doc__, "symmetry_libraries")
    parser.add_argument("--repeats", type=int, default=30, help="timed calls per case (median reported)")
    parser.add_argument("--copies", type=int, default=50, help="rattled copies for the recovery count")
    args = parser.parse_args()
    settings = common.start(args)

    si = Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.431), ["Si"], [[0, 0, 0]]) * (2, 2, 2)
    lfp = Structure.from_file(STRUCTURES_DIR / "LiFePO4.json")
    cases = {
        "Si 2x2x2 ideal": si,
        "Si 2x2x2 rattled 0.05": rattle(si, 0.05, 0),
        "LiFePO4 ideal": lfp,
        "LiFePO4 rattled 0.05": rattle(lfp, 0.05, 0),
        "LiFePO4 2x1x1 rattled 0.05": rattle(lfp * (2, 1, 1), 0.05, 0),
    }
    settings["rayon_threads"] = os.environ.get("RAYON_NUM_THREADS", "unset")  # moyopy's thread pool
    print(f"RAYON_NUM_THREADS={settings['rayon_threads']}; symprec 0.1 A, angle 10 deg; median of {args.repeats} calls")
    rows = []
    print(f"{'case':28s} {'atoms':>5s} {'spglib ms':>10s} {'moyopy ms':>10s} {'spglib/moyopy':>14s}  groups (spglib | moyopy)")
    for name, structure in cases.items():
        t_spg = seconds_per_call(structure, "spglib", args.repeats)
        t_moyo = seconds_per_call(structure, "moyopy", args.repeats)
        g_spg, g_moyo = space_group(structure, library="spglib"), space_group(structure, library="moyopy")
        agree = "agree" if g_spg.number == g_moyo.number else "DIFFER"
        rows.append({"table": "timings", "case": name, "atoms": len(structure), "spglib_ms": round(1e3 * t_spg, 4),
                     "moyopy_ms": round(1e3 * t_moyo, 4), "spglib_over_moyopy": round(t_spg / t_moyo, 3),
                     "spglib_group": g_spg.number, "moyopy_group": g_moyo.number, "moyopy_symprec": g_moyo.symprec,
                     "moyopy_angle_tolerance": g_moyo.angle_tolerance})
        print(f"{name:28s} {len(structure):5d} {1e3 * t_spg:10.3f} {1e3 * t_moyo:10.3f} {t_spg / t_moyo:14.2f}  "
              f"{g_spg.number} {g_spg.symbol} | {g_moyo.number} {g_moyo.symbol} ({agree}; moyopy used "
              f"symprec {g_moyo.symprec:g}, angle {g_moyo.angle_tolerance:g})")

    print(f"\nparent group recovered over {args.copies} copies rattled by 0.05 A (symprec 0.1):")
    for name, parent, number in (("Si 2x2x2", si, 227), ("LiFePO4", lfp, 62)):
        copies = [rattle(parent, 0.05, seed) for seed in range(args.copies)]
        hits = {lib: sum(space_group(c, library=lib).number == number for c in copies) for lib in ("spglib", "moyopy")}
        print(f"  {name:10s} spglib {hits['spglib']}/{args.copies}   moyopy {hits['moyopy']}/{args.copies}")
        rows.append({"table": "recovery", "case": name, "copies": args.copies, "spglib_recovered": hits["spglib"],
                     "moyopy_recovered": hits["moyopy"]})
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
