"""The same campaign three ways, side by side in one run: the plain local path, Dask with 1 worker
and Dask with 2 workers (local cluster on loopback, single-threaded worker processes).

Each run starts from an empty output folder and runs every stage (unconditional generation in the
random cells, relaxation, hosts, inpainting, relaxation) but not the report, with the bundled
analytic model (cheap score) so that CHGNet relaxation dominates as in a real campaign. Printed:
wall time, structures per minute, and the ratios: Dask 1 worker / plain (the Dask path's overhead:
cluster start, pickling shards, one database per shard and the merge) and 2 workers / 1 worker
(throughput on this machine's 2 cores). Cluster start-up is timed separately and included.

Run: python benchmarks/campaign_dask.py [--cells 6] [--samples 4]
Writes benchmarks/results/campaign_dask.json and .csv (one row per path).
"""

import common  # first: it pins OpenBLAS threads before numpy loads

import os  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from monty.serialization import dumpfn  # noqa: E402
from pymatgen.entries.computed_entries import ComputedEntry  # noqa: E402

from chggen_plugins.applications.campaign import Campaign  # noqa: E402
from chggen_plugins.runs.config import load_config  # noqa: E402
from chggen_plugins.runs.dask import dask_client  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SYSTEMS = ("cubic", "tetragonal", "orthorhombic", "monoclinic", "triclinic", "hexagonal", "rhombohedral")


def campaign_file(folder: Path, cells: int, samples: int) -> Path:
    """LiSi2, 6-atom cells, `cells` lattice systems at ratio 1, `samples` inpainted Li per host."""
    folder.mkdir(parents=True)
    dumpfn([ComputedEntry("Li", -1.9), ComputedEntry("Si2", -10.6), ComputedEntry("LiSi", -7.5)],
           folder / "entries.json")
    systems = ", ".join(f'"{s}"' for s in SYSTEMS[:cells])
    (folder / "campaign.toml").write_text(f"""
output = "out"
seed = 0
[model]
name = "analytic"
source = "{EXAMPLES / 'li4si8_reference.cif'}"
[sampler]
batch_size = 2
[cells]
systems = [{systems}]
ratios = [1.0]
samples_per_cell = 2
[relax]
max_steps = 300
[hosts]
per_composition = 2
samples = {samples}
cell = "primitive"
[stability]
entries = "entries.json"
[[compositions]]
formula = "LiSi2"
formula_units = [2]
guests = ["Li"]
""")
    return folder / "campaign.toml"


def run(folder: Path, cells: int, samples: int, workers: int | None) -> tuple[float, float, int]:
    """(wall seconds of the campaign, seconds to start the cluster, structures stored)."""
    config = load_config(campaign_file(folder, cells, samples))
    start = time.perf_counter()
    with dask_client(workers) as client:
        started = time.perf_counter() - start
        campaign = Campaign(config, progress=False, client=client)
        campaign.stages()
        return time.perf_counter() - start, started, len(campaign.store)


def main() -> None:
    parser = common.argument_parser(__doc__, "campaign_dask")
    parser.add_argument("--cells", type=int, default=6, help="lattice systems (1-7), 2 structures each")
    parser.add_argument("--samples", type=int, default=4, help="inpainting samples per host (2 hosts)")
    args = parser.parse_args()
    settings = common.start(args)  # the torch threads of this process; each Dask worker runs single-threaded
    results = {}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, workers in (("plain", None), ("dask 1 worker", 1), ("dask 2 workers", 2)):
            wall, started, stored = run(Path(tmp) / name.replace(" ", "_"), args.cells, args.samples, workers)
            results[name] = (wall, stored)
            rows.append({"path": name, "workers": workers, "wall_s": round(wall, 2), "cluster_start_s": round(started, 2),
                         "structures": stored, "structures_per_min": round(60 * stored / wall, 2),
                         "load_average": round(os.getloadavg()[0], 2)})
            print(f"{name:<15} {wall:7.1f} s wall ({started:4.1f} s cluster start)  {stored} structures  "
                  f"{60 * stored / wall:6.1f} structures/min  load {os.getloadavg()[0]:.2f}")
    counts = {stored for _, stored in results.values()}
    assert len(counts) == 1, f"the three paths stored different numbers of structures: {results}"
    plain, one, two = (results[k][0] for k in ("plain", "dask 1 worker", "dask 2 workers"))
    print(f"Dask overhead (1 worker / plain wall time): {one / plain:.2f}x")
    print(f"throughput 2 workers / 1 worker: {one / two:.2f}x")
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
