"""The Python API at the CLI's speed: wall time of the same inpainting through `chggen inpaint`, through
`chggen_plugins.inpaint` with chggen's default torch threads (1, or $CHGGEN_THREADS), and through the API
with torch's own default (as many threads as cores), each in a fresh process, measured side by side.

Why: the README's API example once ran 14x slower than the CLI (45.6 s vs 3.3 s) because the package
pinned OpenBLAS but left torch's threads to the user. The API now takes one torch thread on import.

Run: python benchmarks/api_threads.py [--samples 8 --levels 100 --repeats 3]
Writes benchmarks/results/api_threads.json and .csv.
"""

from __future__ import annotations

import common  # noqa: I001  (first: pins OpenBLAS before numpy loads)

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HOST = common.REPOSITORY / "examples" / "si_host.cif"

API = """
import sys, time
import chggen_plugins as cg
start = time.perf_counter()
cg.inpaint(sys.argv[1], {{"Li": 4}}, "native", n_samples={samples}, seed=0, levels={levels})
print(time.perf_counter() - start)
"""


def timed(command: list[str], environment: dict[str, str]) -> float:
    """Wall seconds of `command` in a fresh process (imports included: what a user waits for)."""
    start = time.perf_counter()
    subprocess.run(command, env=environment, check=True, capture_output=True, text=True)
    return time.perf_counter() - start


def main() -> None:
    parser = common.argument_parser(__doc__, "api_threads")
    parser.add_argument("--samples", type=int, default=8, help="structures per run (default 8)")
    parser.add_argument("--levels", type=int, default=100, help="noise levels (default 100)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per way, the median is reported (default 3)")
    args = parser.parse_args()
    settings = common.start(args)
    base = {k: v for k, v in os.environ.items() if k != "CHGGEN_THREADS"}
    cores = str(os.cpu_count())
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.extxyz"
        ways = {
            "cli (chggen inpaint, --threads default)": (
                [sys.executable, "-m", "chggen_plugins.cli", "inpaint", str(HOST), "--guest", "Li:4", "--model",
                 "native", "--samples", str(args.samples), "--seed", "0", "--levels", str(args.levels), "--out",
                 str(out), "--overwrite", "-q"], base),
            "api (chggen default: 1 torch thread)": (
                [sys.executable, "-c", API.format(samples=args.samples, levels=args.levels), str(HOST)], base),
            f"api (torch default: {cores} threads)": (
                [sys.executable, "-c", API.format(samples=args.samples, levels=args.levels), str(HOST)],
                {**base, "CHGGEN_THREADS": cores}),
        }
        rows = []
        for way, (command, environment) in ways.items():
            seconds = [timed(command, environment) for _ in range(args.repeats)]
            rows.append({"way": way, "median_s": round(statistics.median(seconds), 2),
                         "runs_s": [round(s, 2) for s in seconds]})
            print(f"{way:45} {rows[-1]['median_s']:7.2f} s  (runs: {', '.join(f'{s:.2f}' for s in seconds)})",
                  flush=True)
    common.write_results(args.name, settings, rows, args.results_dir)


if __name__ == "__main__":
    main()
