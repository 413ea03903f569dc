"""Symmetric inpainting's orbit choice, uniform vs model-proposed, on the cases that motivated it:
zincblende ZnS (F-43m) stripped of its Zn leaves an fcc S sublattice (Fm-3m), whose only orbit for
the Zn count is octahedral (rock salt); wurtzite ZnS (P6_3mc, AFLOW's AB_hP4_186_b_b prototype)
leaves an hcp one (P6_3/mmc). Per crystal and way: the Wyckoff orbits taken, the space group of each
sample (spglib, 0.1 A, before relaxation), the mean distance of the free pass's guests to the
proposed orbits, and wall seconds; then each sample relaxed (CHGNet, FIRE 0.1 eV/A, 500 steps, cell
too) and its space group (spglib 0.1 A), energy, and whether it matches the original crystal
(relaxed the same way; the project's StructureMatcher) after relaxation: a before-relaxation figure
can flatter.

Run: python benchmarks/orbit_choice.py [--cells 2 --samples 4 --model native --crystals zincblende wurtzite]
Writes benchmarks/results/orbit_choice.json and .csv.
"""

from __future__ import annotations

import common  # noqa: I001  (first: pins OpenBLAS before numpy loads)

import time

from pymatgen.analysis.prototypes import AFLOW_PROTOTYPE_LIBRARY
from pymatgen.core import Lattice, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

import chggen_plugins as cg
from chggen_plugins.evaluation.matching import structure_matcher
from chggen_plugins.evaluation.relax import Relaxer


def zincblende() -> Structure:
    return Structure.from_spacegroup("F-43m", Lattice.cubic(5.41), ["S", "Zn"], [[0, 0, 0], [.25, .25, .25]])


def wurtzite() -> Structure:
    prototype = next(entry["snl"].structure for entry in AFLOW_PROTOTYPE_LIBRARY
                     if entry["tags"]["aflow"] == "AB_hP4_186_b_b")
    return SpacegroupAnalyzer(prototype, symprec=0.01).get_refined_structure()


CRYSTALS = {"zincblende": (zincblende, "F-43m"), "wurtzite": (wurtzite, "P6_3mc")}


def main() -> None:
    parser = common.argument_parser(__doc__, "orbit_choice")
    parser.add_argument("--cells", type=int, default=2, help="supercell of the conventional cell (default 2: 64 atoms of zincblende, 32 of wurtzite)")
    parser.add_argument("--samples", type=int, default=4, help="samples per way (default 4)")
    parser.add_argument("--model", default="native", help="score model (default native)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--crystals", nargs="+", choices=sorted(CRYSTALS), default=["zincblende", "wurtzite"],
                        help="which ZnS polymorphs (default both)")
    args = parser.parse_args()
    settings = common.start(args)
    relaxer, matcher = Relaxer(), structure_matcher()
    rows = []
    for name in args.crystals:
        build, target = CRYSTALS[name]
        crystal = build()
        crystal.make_supercell([args.cells] * 3)
        host = crystal.copy()
        host.remove_species(["Zn"])
        guests = {"Zn": int(crystal.composition["Zn"])}
        reference = relaxer.relax(crystal)
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
            rows.append({"crystal": name, "orbits": orbits, "atoms": len(crystal), "target_group": target,
                         "in_target_group": groups.count(target), "samples": len(samples), "space_groups": groups,
                         "relaxed_space_groups": after, "relaxed_match": matches,
                         "relaxed_e_per_atom": [round(r.final_energy, 4) if r.final_energy is not None else None
                                                for r in relaxed],
                         "original_e_per_atom": round(reference.final_energy, 4),
                         "wyckoff": [s.properties["guest_wyckoff"] for s in samples],
                         "proposal_distance_A": [s.properties.get("orbit_proposal_distance") for s in samples],
                         "wall_s": round(seconds, 1)})
            print(f"{name:10} {orbits:8} {target} {groups.count(target)}/{len(samples)}  groups {groups}  "
                  f"orbits {rows[-1]['wyckoff']}  distance {rows[-1]['proposal_distance_A']}  {seconds:.1f} s; "
                  f"relaxed: groups {after}, {name} {matches}/{len(samples)}, E/atom "
                  f"{rows[-1]['relaxed_e_per_atom']} ({name} {rows[-1]['original_e_per_atom']})", flush=True)
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
