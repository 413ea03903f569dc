"""Symmetric inpainting's orbit choice, uniform vs model-proposed, on the case that motivated it:
zincblende ZnS (F-43m) stripped of its Zn leaves an fcc S sublattice (Fm-3m), whose only orbit for
the Zn count is octahedral (rock salt). Per way: the Wyckoff orbits taken, the space group of each
sample (spglib, 0.1 A, before relaxation), the mean distance of the free pass's guests to the
proposed orbits, and wall seconds.

Run: python benchmarks/orbit_choice.py [--cells 2 --samples 4 --model native]
Writes benchmarks/results/orbit_choice.json and .csv.
"""

from __future__ import annotations

import common  # noqa: I001  (first: pins OpenBLAS before numpy loads)

import time

from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

import chggen_plugins as cg


def main() -> None:
    parser = common.argument_parser(__doc__, "orbit_choice")
    parser.add_argument("--cells", type=int, default=2, help="supercell of the conventional cell (default 2: 64 atoms)")
    parser.add_argument("--samples", type=int, default=4, help="samples per way (default 4)")
    parser.add_argument("--model", default="native", help="score model (default native)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    args = parser.parse_args()
    settings = common.start(args)
    crystal = Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["S", "Zn"], [[0, 0, 0], [.25, .25, .25]])
    crystal.make_supercell([args.cells] * 3)
    host = crystal.copy()
    host.remove_species(["Zn"])
    guests = {"Zn": int(crystal.composition["Zn"])}
    rows = []
    for orbits in ("uniform", "model"):
        start = time.perf_counter()
        samples = cg.inpaint(host, guests, args.model, n_samples=args.samples, seed=args.seed, symmetric=True,
                             orbits=orbits)
        seconds = time.perf_counter() - start
        groups = [SpacegroupAnalyzer(s, symprec=0.1).get_space_group_symbol() for s in samples]
        rows.append({"orbits": orbits, "atoms": len(crystal), "zincblende_F-43m": groups.count("F-43m"),
                     "samples": len(samples), "space_groups": groups,
                     "wyckoff": [s.properties["guest_wyckoff"] for s in samples],
                     "proposal_distance_A": [s.properties.get("orbit_proposal_distance") for s in samples],
                     "wall_s": round(seconds, 1)})
        print(f"{orbits:8} F-43m {groups.count('F-43m')}/{len(samples)}  groups {groups}  "
              f"orbits {rows[-1]['wyckoff']}  distance {rows[-1]['proposal_distance_A']}  {seconds:.1f} s", flush=True)
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
