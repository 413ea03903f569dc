"""Symmetric inpainting's orbit choice, uniform vs model-proposed, on the case that motivated it:
zincblende ZnS (F-43m) stripped of its Zn leaves an fcc S sublattice (Fm-3m), whose only orbit for
the Zn count is octahedral (rock salt). Per way: the Wyckoff orbits taken, the space group of each
sample (spglib, 0.1 A, before relaxation), the mean distance of the free pass's guests to the
proposed orbits, and wall seconds; then each sample relaxed (CHGNet, FIRE 0.1 eV/A, 500 steps, cell
too) and its space group (spglib 0.1 A), energy, and whether it matches the zincblende crystal
(pymatgen StructureMatcher defaults) after relaxation: a before-relaxation figure can flatter.

Run: python benchmarks/orbit_choice.py [--cells 2 --samples 4 --model native]
Writes benchmarks/results/orbit_choice.json and .csv.
"""

from __future__ import annotations

import common  # noqa: I001  (first: pins OpenBLAS before numpy loads)

import time

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

import chggen_plugins as cg
from chggen_plugins.evaluation.relax import Relaxer


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
    relaxer, matcher = Relaxer(), StructureMatcher()
    reference = relaxer.relax(crystal)
    rows = []
    for orbits in ("uniform", "model"):
        start = time.perf_counter()
        samples = cg.inpaint(host, guests, args.model, n_samples=args.samples, seed=args.seed, symmetric=True,
                             orbits=orbits)
        seconds = time.perf_counter() - start
        groups = [SpacegroupAnalyzer(s, symprec=0.1).get_space_group_symbol() for s in samples]
        relaxed = [relaxer.relax(s) for s in samples]
        after = [SpacegroupAnalyzer(r.structure, symprec=0.1).get_space_group_symbol() if r.structure else "error"
                 for r in relaxed]
        matches = sum(bool(r.structure) and matcher.fit(r.structure, reference.structure) for r in relaxed)
        rows.append({"orbits": orbits, "atoms": len(crystal), "zincblende_F-43m": groups.count("F-43m"),
                     "samples": len(samples), "space_groups": groups, "relaxed_space_groups": after,
                     "relaxed_match_zincblende": matches,
                     "relaxed_e_per_atom": [round(r.final_energy, 4) if r.final_energy is not None else None
                                            for r in relaxed],
                     "zincblende_e_per_atom": round(reference.final_energy, 4),
                     "wyckoff": [s.properties["guest_wyckoff"] for s in samples],
                     "proposal_distance_A": [s.properties.get("orbit_proposal_distance") for s in samples],
                     "wall_s": round(seconds, 1)})
        print(f"{orbits:8} F-43m {groups.count('F-43m')}/{len(samples)}  groups {groups}  "
              f"orbits {rows[-1]['wyckoff']}  distance {rows[-1]['proposal_distance_A']}  {seconds:.1f} s; "
              f"relaxed: groups {after}, zincblende {matches}/{len(samples)}, E/atom "
              f"{rows[-1]['relaxed_e_per_atom']} (zincblende {rows[-1]['zincblende_e_per_atom']})", flush=True)
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
