"""One-stage against staged (guests first, host fixed; then everything) relaxation of inpainted structures.

The same inpainted structures are relaxed twice with the same relaxer, fmax and step budget: once in
the paper's one stage ("all": positions and cell) and once staged ("guests" with ASE FixAtoms on the
host and the cell fixed, then "all"; the budget is shared, see `Relaxer`). Reported per host and
overall: FIRE steps (median, the sum over stages), final energy per atom (median, and how often staged
ends lower or higher by more than 1 meV/atom), converged count and CPU seconds. One torch thread.

Hosts: Li into diamond Si (examples/si_host.cif, 8 atoms; 2 and 8 Li) and into a 2x2x2 supercell of
1T-TiS2 (examples/tis2_host.cif, 24 atoms; 4 and 8 Li), inpainted with the native model on a
100-level ladder: a dilute and a full guest content for each host.

    nice python benchmarks/staged_relaxation.py --samples 10
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pymatgen.core import Structure  # noqa: E402

from chggen_plugins import inpaint  # noqa: E402
from chggen_plugins.evaluation.relax import ALL, GUESTS, Relaxer, RelaxResult  # noqa: E402
from chggen_plugins.files import replacing  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
HOSTS = {"Li2Si8": (ROOT / "examples/si_host.cif", (1, 1, 1), {"Li": 2}),
         "Li8Si8": (ROOT / "examples/si_host.cif", (1, 1, 1), {"Li": 8}),
         "Li4Ti8S16": (ROOT / "examples/tis2_host.cif", (2, 2, 2), {"Li": 4}),
         "Li8Ti8S16": (ROOT / "examples/tis2_host.cif", (2, 2, 2), {"Li": 8})}
MODES = {"one-stage": (ALL,), "staged": (GUESTS, ALL)}
LOWER = 1e-3  # eV/atom: an energy difference below this counts as a tie


def git_hash() -> str:
    """The commit the numbers were made at (with `-dirty` when the tree had uncommitted changes)."""
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                           capture_output=True, text=True).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def relax_timed(relaxer: Relaxer, structure: Structure, fixed: range) -> tuple[RelaxResult, float]:
    start = time.process_time()
    result = relaxer.relax(structure, fixed=fixed)
    return result, time.process_time() - start


def summary(records: list[dict]) -> dict:
    """Medians, counts and CPU of both modes over `records` (one per structure, both modes)."""
    out: dict = {"structures": len(records)}
    for mode in MODES:
        rows = [r[mode] for r in records]
        relaxed = [r for r in rows if r["energy"] is not None]
        out[mode] = {"median_steps": statistics.median(r["steps"] for r in relaxed) if relaxed else None,
                     "median_e_per_atom": statistics.median(r["energy"] for r in relaxed) if relaxed else None,
                     "converged": sum(r["converged"] for r in rows), "errors": len(rows) - len(relaxed),
                     "cpu_s": round(sum(r["cpu_s"] for r in rows), 1)}
    both = [r for r in records if r["one-stage"]["energy"] is not None and r["staged"]["energy"] is not None]
    differences = [r["staged"]["energy"] - r["one-stage"]["energy"] for r in both]
    out["staged_lower"] = sum(d < -LOWER for d in differences)
    out["staged_higher"] = sum(d > LOWER for d in differences)
    out["ties"] = len(differences) - out["staged_lower"] - out["staged_higher"]
    out["median_staged_minus_one_stage_mev"] = round(1000 * statistics.median(differences), 2) if differences else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=10, help="inpainted structures per host")
    parser.add_argument("--levels", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-steps", type=int, default=500)
    parser.add_argument("--relaxer", default="chgnet")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/staged_relaxation.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    commit = git_hash()
    relaxers = {"one-stage": Relaxer(max_steps=args.max_steps, relaxer=args.relaxer)}
    relaxers["staged"] = Relaxer(max_steps=args.max_steps, relaxer=relaxers["one-stage"].loaded, stages=MODES["staged"])
    records = []
    for name, (path, supercell, guests) in HOSTS.items():
        host = Structure.from_file(path) * supercell
        made = inpaint(host, guests, "native", args.samples, seed=args.seed, levels=args.levels)
        for index, structure in enumerate(made):
            head = structure.frac_coords[:len(host)]  # the host comes first and back bit for bit
            if structure.species[:len(host)] != host.species or not np.allclose(head, host.frac_coords, atol=1e-8):
                raise SystemExit(f"{name}/{index}: the first {len(host)} sites are not the host")
            record: dict = {"host": name, "sample": index}
            for mode, relaxer in relaxers.items():
                result, cpu = relax_timed(relaxer, structure, range(len(host)))
                record[mode] = {"steps": result.steps, "converged": result.converged, "energy": result.final_energy,
                                "error": result.error, "cpu_s": round(cpu, 2)}
            records.append(record)
            print(json.dumps(record), flush=True)
    result = {"benchmark": "staged_relaxation", "git": commit, "relaxer": relaxers["one-stage"].version,
              "settings": {"samples_per_host": args.samples, "levels": args.levels, "seed": args.seed,
                           "max_steps": args.max_steps, "fmax": relaxers["one-stage"].fmax, "torch_threads": 1,
                           "hosts": {name: {"file": str(path.relative_to(ROOT)), "supercell": list(supercell),
                                            "guests": guests} for name, (path, supercell, guests) in HOSTS.items()},
                           "model": "native", "tie_eV_per_atom": LOWER},
              "overall": summary(records),
              "per_host": {name: summary([r for r in records if r["host"] == name]) for name in HOSTS},
              "structures": records}
    with replacing(args.out) as temporary:
        temporary.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps({"overall": result["overall"], "per_host": result["per_host"]}, indent=1))


if __name__ == "__main__":
    main()
