"""A Dask cluster of SLURM jobs for `chggen campaign CONFIG --scheduler ADDRESS` (docs/guides/slurm.md).

Run it on the login node with the chggen environment active and keep it running while campaigns run:

    python examples/slurm_cluster.py --jobs 16 --address-file scheduler.txt &
    chggen campaign my_campaign.toml --scheduler "$(cat scheduler.txt)"

Each job is one single-threaded worker process (the shape `runs/dask.py` wants: CHGNet and torch do
not share a process well). A job that dies (scancel, walltime, a lost node) takes its shard with it;
the scheduler reruns that shard on another worker, and every `--check` seconds this script submits
jobs until `--jobs` are queued or running again. Ctrl-C or SIGTERM cancels every job it submitted.
tests/test_slurm.py runs this very script on a single-node SLURM (.ci/slurm-up).
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from types import FrameType

from chggen_plugins.files import replacing

# what every worker job runs before the worker starts: one BLAS thread (runs/dask.py warns otherwise)
PROLOGUE = ["export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    """The command line; argparse turns a bad value into one usage line and exit status 2."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=4, help="worker jobs to keep queued or running (default 4)")
    parser.add_argument("--memory", default="4GB", help="memory per job (default 4GB: CHGNet and the model)")
    parser.add_argument("--walltime", default="08:00:00", help="time limit per job (default 08:00:00)")
    parser.add_argument("--partition", help="SLURM partition (default: the site's default)")
    parser.add_argument("--account", help="SLURM account to charge")
    parser.add_argument("--interface", help="network interface the workers reach the scheduler on (ib0, eth0)")
    parser.add_argument("--prologue", action="append", default=[],
                        help="a shell line each job runs first (module load ...); repeatable")
    parser.add_argument("--job-name", default="chggen-worker", help="SLURM job name (default chggen-worker)")
    parser.add_argument("--logs", type=Path, help="folder for the jobs' output (default: SLURM's, here)")
    parser.add_argument("--address-file", type=Path, help="also write the scheduler's address to this file")
    parser.add_argument("--check", type=float, default=30.0,
                        help="seconds between checks that --jobs jobs are still there (default 30)")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.check <= 0:
        parser.error("--jobs must be >= 1 and --check > 0")
    return args


def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """SIGTERM (kill, or SLURM ending this script's own job) leaves like Ctrl-C: jobs are cancelled."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, announce its address, keep `--jobs` jobs until interrupted.

    Args:
        argv: command-line arguments (None: sys.argv).

    Returns:
        The exit status: 0 after Ctrl-C or SIGTERM, 2 when dask-jobqueue is missing.
    """
    args = parse(argv)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        print("slurm_cluster: error: dask-jobqueue is not installed (pip install 'chggen-plugins[dask]')",
              file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, stop_on_sigterm)
    cluster = SLURMCluster(cores=1, processes=1, memory=args.memory, walltime=args.walltime,
                           queue=args.partition, account=args.account, interface=args.interface,
                           job_name=args.job_name, python=sys.executable,
                           job_script_prologue=PROLOGUE + args.prologue,
                           log_directory=None if args.logs is None else str(args.logs),
                           scheduler_options={"dashboard": False})
    try:
        cluster.scale(jobs=args.jobs)
        if args.address_file is not None:
            with replacing(args.address_file) as temporary:
                temporary.write_text(cluster.scheduler_address + "\n")
        print(f"scheduler {cluster.scheduler_address}: {args.jobs} job(s) of 1 core, {args.memory}, "
              f"{args.walltime}; Ctrl-C cancels them", flush=True)
        while True:
            time.sleep(args.check)
            # a job that died is dropped from the cluster after distributed.deploy.lost-worker-timeout
            # (15 s); scaling to the same number then submits its replacement
            cluster.scale(jobs=args.jobs)
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.close()


if __name__ == "__main__":
    sys.exit(main())
