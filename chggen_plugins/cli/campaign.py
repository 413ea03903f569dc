"""`chggen campaign`: the CHGGen workflow from a TOML config, here or on a Dask cluster."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

from chggen_plugins.cli.options import add_quiet


def add_parser(commands: argparse._SubParsersAction) -> None:
    campaign = commands.add_parser(
        "campaign", help="run (or resume) a CHGGen campaign from a TOML config",
        description="The CHGGen workflow per composition: random cells -> unconditional generation -> "
                    "CHGNet relaxation -> symmetrized hosts -> inpainting -> relaxation -> space group "
                    "-> Ed -> shortlist. Every structure goes to OUTPUT/results.db as it is finished; "
                    "running the same command again resumes. Writes summary.csv, plots/*.png, "
                    "shortlist/*.cif and r2SCAN inputs (r2scan/, no POTCARs).",
        epilog="Example:\n  chggen campaign li_si.toml\n\nConfig (TOML; every key with its default, only "
               "model.name and one [[compositions]] with formula and guests are required):\n"
               + _config_example(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    campaign.add_argument("config", help="campaign config file (TOML)")
    add_quiet(campaign)
    campaign.add_argument("--workers", type=int, metavar="N",
                          help="run the shards on a local Dask cluster of N single-threaded worker "
                               "processes (pip install 'chggen-plugins[dask]')")
    campaign.add_argument("--scheduler", metavar="ADDRESS",
                          help="run the shards on a running Dask cluster, e.g. tcp://host:8786 (OUTPUT "
                               "must be on a file system the workers share)")
    campaign.set_defaults(run=run)


def _config_example() -> str:
    """The annotated example config from `chggen_plugins.runs.config`'s docstring, read from the source:
    importing the module would load CHGNet's and pymatgen's phase-diagram code for every command."""
    source = (Path(__file__).parents[1] / "runs" / "config.py").read_text()
    doc = ast.get_docstring(ast.parse(source), clean=False)
    return doc.split("A full example with every key and its default:\n", 1)[1]


def run(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.campaign import run_campaign
    from chggen_plugins.runs.config import load_config  # the campaign pulls in CHGNet and matplotlib: only when asked

    config = load_config(Path(args.config))
    if args.workers is None and args.scheduler is None:
        run_campaign(config, progress=not args.quiet)
        return
    from chggen_plugins.runs.dask import dask_client  # Dask only when asked for

    with dask_client(args.workers, args.scheduler) as client:
        run_campaign(config, progress=not args.quiet, client=client)
