"""Ordering partially occupied crystals, four methods side by side on the same supercell and the same
number of CHGNet relaxations: inpainting, inpainting-sites, pymatgen's
OrderDisorderedStructureTransformation (its best by Ewald energy) and uniformly random orderings.

Cases (benchmarks/data):
  li2s_synthetic  antifluorite Li2S with its 8 tetrahedral Li and 4 empty octahedral sites all at
                  occupancy 2/3: the answer is known (all tetrahedral). Also reported: how many
                  candidates relax to the original ordering (StructureMatcher against the relaxed original).
  beta_li3ps4     beta-Li3PS4 (Pnma) as published by Homma et al. 2011 (ICSD 180319; the CIF's header
                  gives the sources): 4 Li on the 4 Li2 (4b, occupancy 0.7) and 4 Li3 (4c, 0.3) sites
                  of one cell, 8d Li, P and S the host. The published Li3 site lies 1.42 A from S, so
                  an ordering that puts Li there relaxes away from it.

Each case is one `chggen order` run in OUT/<case> (resumable: rerun the same command). Prints a
markdown table and writes OUT/ordering_benchmark.md / .csv, and benchmarks/results/ordering.json and
.csv (one row per case and method, with the commit and settings).

    python benchmarks/ordering.py --samples 10 --levels 60 --out /work/runs/ordering_final
"""

from __future__ import annotations

import common  # first: it pins OpenBLAS threads before numpy loads

import time  # noqa: E402
from pathlib import Path  # noqa: E402

from pymatgen.analysis.structure_matcher import StructureMatcher  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from chggen_plugins.applications.ordering import order  # noqa: E402
from chggen_plugins.evaluation.relax import Relaxer  # noqa: E402
from chggen_plugins.files import replacing  # noqa: E402
from chggen_plugins.runs.methods import ORDERING as METHODS  # noqa: E402
from chggen_plugins.runs.schema import METHODS as METHOD_COLUMNS  # noqa: E402
from chggen_plugins.runs.schema import Column, Table, write_table  # noqa: E402

TABLE = Table("ordering_benchmark.csv", "benchmarks/ordering.py", "methods.csv of each case, side by side", (
    Column("case", "str", None, "the benchmark case"), Column("supercell", "str", None, "the supercell used"),
    Column("atoms", "int", None, "atoms in the supercell"), *METHOD_COLUMNS.columns,
    Column("lowest_above_best_meV", "float", "meV/atom", "the method's lowest energy above the best of all methods"),
    Column("original_found", "str", None, "samples matching the known ordering")))

DATA = Path(__file__).with_name("data")
CASES = {
    "li2s_synthetic": (DATA / "li2s_synthetic_disordered.cif", {"Li": 1, "S": -2}, DATA / "li2s_synthetic_ordered.cif"),
    "beta_li3ps4": (DATA / "beta_li3ps4_homma2011.cif", {"Li": 1, "P": 5, "S": -2}, None),
}


def original_hits(result, relaxer: Relaxer, original: Path) -> dict[str, str]:
    """Per method: candidates that relax to the known ordering, and whether its lowest one is it."""
    reference = relaxer.relax(Structure.from_file(original)).structure
    matcher = StructureMatcher()
    hits = {}
    for method in result.methods:
        rows = [r for r in result.store.results(method=method["method"]) if r.get("status") in ("relaxed", "unconverged")]
        found = [r for r in rows if matcher.fit(r.structure, reference)]
        lowest = min(rows, key=lambda r: r.get("e_per_atom")) if rows else None
        hits[method["method"]] = (f"{len(found)}/{method['candidates']}"
                                  f"{' (lowest)' if lowest is not None and lowest.uid in {r.uid for r in found} else ''}")
    return hits


def main() -> None:
    parser = common.argument_parser(__doc__, "ordering")
    parser.add_argument("--samples", type=int, default=6, help="candidates (= relaxations) per method and case")
    parser.add_argument("--levels", type=int, default=100, help="native model's noise levels")
    parser.add_argument("--model", default="native")
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("/work/runs/ordering"))
    args = parser.parse_args()
    settings = common.start(args)
    relaxer = Relaxer(max_steps=args.max_steps)
    table = []
    for case in args.cases.split(","):
        path, states, original = CASES[case]
        start = time.time()
        result = order(path, args.model, args.out / case, args.samples, methods=METHODS, levels=args.levels,
                       seed=args.seed, oxidation_states=states, relaxer=relaxer)
        hits = original_hits(result, relaxer, original) if original is not None else {}
        lowest = min(m["lowest_e_per_atom"] for m in result.methods if m["lowest_e_per_atom"] is not None)
        for m in result.methods:
            table.append({"case": case, "supercell": result.problem.cell, "atoms": len(result.problem.host) +
                          sum(result.problem.guests.values()), **m,
                          "lowest_above_best_meV": None if m["lowest_e_per_atom"] is None
                          else round((m["lowest_e_per_atom"] - lowest) * 1000, 1),
                          "original_found": hits.get(m["method"], "-")})
        print(f"{case}: {time.time() - start:.0f} s wall")
    header = ["case", "method", "candidates", "relaxed", "lowest E (eV/atom)", "above best (meV/atom)",
              "median E", "distinct", "symmetric", "original found", "CPU s/candidate (gen + relax)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table:
        def e(key: str) -> str:
            return "-" if row[key] is None else f"{row[key]:.4f}"

        lines.append("| " + " | ".join([
            f"{row['case']} ({row['supercell']}, {row['atoms']} atoms)", row["method"], str(row["candidates"]),
            str(row["relaxed"]), e("lowest_e_per_atom"), str(row["lowest_above_best_meV"]), e("median_e_per_atom"),
            str(row["distinct"]), f"{row['symmetric']}/{row['candidates']}", row["original_found"],
            f"{row['cpu_generate_s']:.1f} + {row['cpu_relax_s']:.1f}"]) + " |")
    text = "\n".join(lines)
    print(text)
    with replacing(args.out / "ordering_benchmark.md") as temporary:
        temporary.write_text(text + "\n")
    write_table(table, args.out / "ordering_benchmark.csv", TABLE)
    common.write_results(args.name, settings, table, args.results_dir)


if __name__ == "__main__":
    main()
