"""What every benchmark script shares: its arguments' common part, thread settings, where its numbers
came from (commit, machine, date, settings) and writing them to benchmarks/results/.

Why: each script parsed its own --threads, set its own threads, some recorded the commit and some did
not, and the docs copied printed tables by hand. Now each script ends with `write_results(name,
settings, rows)`: benchmarks/results/<name>.json (commit, dirty flag, date, command, settings,
machine, rows) and <name>.csv beside it (the rows), so a docs table is regenerated from a file, not
copied from a terminal.

Import this module first, before numpy: it pins OpenBLAS to one thread (its threads only add noise
to the many small matrix products benchmarked here) unless OPENBLAS_NUM_THREADS is already set.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from collections.abc import Mapping, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

from chggen_plugins.files import replacing  # noqa: E402

REPOSITORY = Path(__file__).resolve().parent.parent
RESULTS = REPOSITORY / "benchmarks" / "results"


def argument_parser(doc: str, name: str) -> argparse.ArgumentParser:
    """The script's parser with the options every benchmark has.

    Args:
        doc: the script's docstring (shown by --help, layout kept).
        name: the default stem of its result files.

    Returns:
        A parser with --threads (torch threads, 1: one thread keeps timings comparable on a busy
        machine), --results-dir (benchmarks/results) and --name (`name`); the script adds its own.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help=f"where NAME.json and NAME.csv go ({RESULTS})")
    parser.add_argument("--name", default=name, help=f"stem of the result files (default {name})")
    return parser


def set_threads(threads: int) -> dict[str, Any]:
    """Set torch's intra-op threads and say which thread settings are in force.

    Args:
        threads: torch threads (the OpenBLAS count is fixed at import, see the module docstring).

    Returns:
        {"torch_threads", "torch_interop_threads", "openblas_threads"} as they are now, for the
        printed header and the results' settings.
    """
    import torch  # here: scripts that never use torch still record the same settings

    torch.set_num_threads(threads)
    return {"torch_threads": torch.get_num_threads(), "torch_interop_threads": torch.get_num_interop_threads(),
            "openblas_threads": os.environ["OPENBLAS_NUM_THREADS"]}


def git_state() -> dict[str, Any]:
    """The commit the numbers were measured at.

    Returns:
        {"commit": short hash or "unknown" outside a git checkout, "dirty": True when tracked files
        differ from that commit (the numbers are then not exactly that commit's)}.
    """
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=REPOSITORY, capture_output=True, text=True)

    commit = git("rev-parse", "--short", "HEAD")
    if commit.returncode != 0:
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit.stdout.strip(), "dirty": bool(git("status", "--porcelain", "--untracked-files=no").stdout.strip())}


def machine() -> dict[str, Any]:
    """The machine the numbers were measured on.

    Returns:
        CPU model and count, system, Python and torch versions, the accelerator if any, and the
        1-minute load average at the call (timings on a shared machine move with it).
    """
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
                    if line.startswith("model name")), cpu)
    found: dict[str, Any] = {"cpu": cpu, "cpus": os.cpu_count(), "system": platform.platform(),
                             "python": platform.python_version(), "load_average": round(os.getloadavg()[0], 2)}
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        found["torch"] = torch.__version__
        found["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return found


# The commit a run started at: results written while the checkout moves on (a long comparison
# written after every method) still name the code that measured them.
STARTED_AT: dict[str, Any] = {}


def start(args: argparse.Namespace) -> dict[str, Any]:
    """Set the threads, print one header line (commit, machine, threads) and return the settings.

    Args:
        args: the parsed arguments of a parser made by `argument_parser`.

    Returns:
        The settings to record: every argument (paths as text) and the thread settings in force.
    """
    threads = set_threads(args.threads)
    state, host = git_state(), machine()
    STARTED_AT.update(state)
    print(f"commit {state['commit']}{' (dirty)' if state['dirty'] else ''}; {host['cpus']} x {host['cpu']}, "
          f"load {host['load_average']}; torch threads {threads['torch_threads']} (interop "
          f"{threads['torch_interop_threads']}), OPENBLAS_NUM_THREADS {threads['openblas_threads']}", flush=True)
    settings = {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()
                if key not in ("results_dir", "name")}
    return {**settings, **threads}


def write_results(name: str, settings: Mapping[str, Any], rows: Sequence[Mapping[str, Any]],
                  folder: Path = RESULTS) -> Path:
    """Write `folder`/<name>.json and <name>.csv, each whole or not at all.

    Args:
        name: file stem, e.g. "backend_costs".
        settings: what the run was asked to do (from `start`), kept with the numbers.
        rows: the measured figures, one mapping per table row; values are numbers, text, None or
            lists (lists are written to the CSV as JSON).
        folder: where to write (benchmarks/results unless the script was told otherwise).

    Returns:
        The JSON's path. The JSON holds commit, dirty (as `start` found them, else as now), date (UTC, ISO), command, settings, machine
        and rows; the CSV's columns are every key of the rows, in order of first appearance.
    """
    record = {**(STARTED_AT or git_state()), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "settings": dict(settings),
              "machine": machine(), "rows": [dict(row) for row in rows]}
    path = Path(folder) / f"{name}.json"
    with replacing(path) as temporary:
        temporary.write_text(json.dumps(record, indent=1, default=str) + "\n")
    write_csv(path.with_suffix(".csv"), rows)
    print(f"results: {path} and {path.with_suffix('.csv').name}")
    return path


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> Path:
    """Write `rows` to `path` as CSV, whole or not at all.

    Args:
        path: the CSV file.
        rows: one mapping per line; the columns are every key, in order of first appearance (rows
            of different tables may have different keys); lists and mappings are written as JSON.

    Returns:
        `path`.
    """
    columns = list(dict.fromkeys(key for row in rows for key in row))
    with replacing(path) as temporary, open(temporary, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: json.dumps(v) if isinstance(v, (list, tuple, dict)) else v for k, v in row.items()})
    return path
