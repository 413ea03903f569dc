"""One-stage against staged (guests first, host fixed; then everything) relaxation of inpainted structures.

The same inpainted structures are relaxed twice with the same relaxer, fmax and step budget: once in
the paper's one stage ("all": positions and cell) and once staged ("guests" with ASE FixAtoms on the
host and the cell fixed, then "all"; the budget is shared, see `Relaxer`). Reported per host and
overall: FIRE steps (median, the sum over stages), final energy per atom (median, and how often staged
ends lower or higher by more than 1 meV/atom), converged count and CPU seconds. One torch thread.

Hosts: Li into diamond Si (examples/si_host.cif, 8 atoms; 2 and 8 Li) and into a 2x2x2 supercell of
1T-TiS2 (examples/tis2_host.cif, 24 atoms; 4 and 8 Li), inpainted with the native model on a
100-level ladder: a dilute and a full guest content for each host.

    nice python benchmarks/staged_relaxation.py --samples 10        # -> benchmarks/results/staged_relaxation.json
    nice python benchmarks/staged_relaxation.py --samples 3 --relaxer sevennet --name staged_relaxation_sevennet

Writes NAME.json/.csv (one row per case and one for all; `identical`: structures relaxed bit for bit
the same both ways, i.e. the guest stage ended at once) and NAME_structures.json/.csv (every structure).
"""

from __future__ import annotations

import statistics
import time

import common  # first: it pins OpenBLAS threads before numpy loads

import numpy as np  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from chggen_plugins import inpaint  # noqa: E402
from chggen_plugins.evaluation.relax import ALL, GUESTS, Relaxer, RelaxResult  # noqa: E402

ROOT = common.REPOSITORY
HOSTS = {"Li2Si8": (ROOT / "examples/si_host.cif", (1, 1, 1), {"Li": 2}),
         "Li8Si8": (ROOT / "examples/si_host.cif", (1, 1, 1), {"Li": 8}),
         "Li4Ti8S16": (ROOT / "examples/tis2_host.cif", (2, 2, 2), {"Li": 4}),
         "Li8Ti8S16": (ROOT / "examples/tis2_host.cif", (2, 2, 2), {"Li": 8})}
MODES = {"one-stage": (ALL,), "staged": (GUESTS, ALL)}
LOWER = 1e-3  # eV/atom: an energy difference below this counts as a tie


def relax_timed(relaxer: Relaxer, structure: Structure, fixed: range) -> tuple[RelaxResult, float]:
    start = time.process_time()
    result = relaxer.relax(structure, fixed=fixed)
    return result, time.process_time() - start


def summary(case: str, records: list[dict]) -> dict:
    """One table row: medians, counts and CPU of both modes over `records` (one per structure)."""
    row: dict = {"case": case, "structures": len(records)}
    for mode, short in (("one-stage", "one"), ("staged", "staged")):
        relaxed = [r for r in records if r[f"{short}_energy"] is not None]
        row[f"median_steps_{short}"] = statistics.median(r[f"{short}_steps"] for r in relaxed) if relaxed else None
        row[f"median_e_per_atom_{short}"] = statistics.median(r[f"{short}_energy"] for r in relaxed) if relaxed else None
        row[f"converged_{short}"] = sum(r[f"{short}_converged"] for r in records)
        row[f"errors_{short}"] = len(records) - len(relaxed)
        row[f"cpu_s_{short}"] = round(sum(r[f"{short}_cpu_s"] for r in records), 1)
    differences = [r["staged_energy"] - r["one_energy"] for r in records
                   if r["one_energy"] is not None and r["staged_energy"] is not None]
    row["staged_lower"] = sum(d < -LOWER for d in differences)
    row["staged_higher"] = sum(d > LOWER for d in differences)
    row["ties"] = len(differences) - row["staged_lower"] - row["staged_higher"]
    row["identical"] = sum(r["identical"] for r in records)
    row["largest_difference_mev"] = round(1000 * max(map(abs, differences)), 2) if differences else None
    return row


def main() -> None:
    parser = common.argument_parser(__doc__, "staged_relaxation")
    parser.add_argument("--samples", type=int, default=10, help="inpainted structures per case")
    parser.add_argument("--levels", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--relaxer", default="chgnet")
    args = parser.parse_args()
    settings = common.start(args)
    relaxers = {"one": Relaxer(max_steps=args.max_steps, relaxer=args.relaxer)}
    relaxers["staged"] = Relaxer(max_steps=args.max_steps, relaxer=relaxers["one"].loaded, stages=MODES["staged"])
    settings.update(relaxer_version=relaxers["one"].version, fmax=relaxers["one"].fmax, model="native",
                    tie_eV_per_atom=LOWER, cases={name: {"file": str(path.relative_to(ROOT)), "supercell": list(cell),
                                                         "guests": guests} for name, (path, cell, guests) in HOSTS.items()})
    records = []
    for name, (path, supercell, guests) in HOSTS.items():
        host = Structure.from_file(path) * supercell
        made = inpaint(host, guests, "native", args.samples, seed=args.seed, levels=args.levels)
        for index, structure in enumerate(made):
            head = structure.frac_coords[:len(host)]  # the host comes first and back bit for bit
            if structure.species[:len(host)] != host.species or not np.allclose(head, host.frac_coords, atol=1e-8):
                raise SystemExit(f"{name}/{index}: the first {len(host)} sites are not the host")
            record: dict = {"case": name, "sample": index}
            for short, relaxer in relaxers.items():
                result, cpu = relax_timed(relaxer, structure, range(len(host)))
                record.update({f"{short}_steps": result.steps, f"{short}_converged": result.converged,
                               f"{short}_energy": result.final_energy, f"{short}_error": result.error,
                               f"{short}_cpu_s": round(cpu, 2)})
            record["identical"] = (record["one_steps"] == record["staged_steps"]
                                   and record["one_energy"] == record["staged_energy"])
            records.append(record)
            print(record, flush=True)
    table = [summary(name, [r for r in records if r["case"] == name]) for name in HOSTS]
    table.append(summary("all", records))
    for row in table:
        print(row)
    common.write_results(args.name, settings, table, args.results_dir)
    common.write_results(f"{args.name}_structures", settings, records, args.results_dir)


if __name__ == "__main__":
    main()
