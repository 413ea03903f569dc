"""`chggen dataset build`: its options and its call into the builder.

Apart from `build.py` so that defining the options (every `chggen` command, `--help` included, builds
the whole parser) imports neither PyXtal, CHGNet nor pymatgen's AFLOW prototype library.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from chggen_plugins.evaluation.relax import MAX_STEPS
from chggen_plugins.structures.systems import CATHODE_SYSTEMS, DEFAULT_SYSTEMS

if TYPE_CHECKING:
    from chggen_plugins.datasets.build import BuildSummary


def add_build_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `chggen dataset build`."""
    parser.add_argument("out_dir", type=Path,
                        help="folder for structures.w<k>.extxyz and attempts.w<k>.jsonl")
    parser.add_argument("--systems", nargs="+", default=list(DEFAULT_SYSTEMS),
                        help="e.g. Li-Si Zn-P-S, or Li-Si:LiSi,Li3Si with explicit formulas; "
                             "'cathodes' stands for the battery-cathode oxides "
                             f"{', '.join(CATHODE_SYSTEMS)} (default: {' '.join(DEFAULT_SYSTEMS)})")
    parser.add_argument("--target", type=int, default=500, help="distinct structures per system")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-atoms", type=int, default=24)
    parser.add_argument("--worker", type=int, default=0, help="this process's index (own output file)")
    parser.add_argument("--workers", type=int, default=1, help="processes sharing out_dir")
    parser.add_argument("--max-steps", type=int, default=MAX_STEPS, help="FIRE steps per relaxation")
    parser.add_argument("--no-prototypes", action="store_true", help="random PyXtal crystals only")
    parser.add_argument("--patience", type=int, default=300)


def run_build(args: argparse.Namespace) -> BuildSummary:
    """Run `dataset build` from parsed options (torch threads are set by `chggen --threads`)."""
    from chggen_plugins.datasets.build import build_dataset

    return build_dataset(args.out_dir, args.systems, args.target, args.seed, args.max_atoms,
                         worker=args.worker, workers=args.workers, max_steps=args.max_steps,
                         prototypes=not args.no_prototypes, patience=args.patience)


def add_parser(commands: argparse._SubParsersAction) -> None:
    dataset = commands.add_parser("dataset", help="build a relaxed-structure training dataset",
                                  description="Training data the project makes itself.")
    dataset_commands = dataset.add_subparsers(dest="dataset_command", required=True, metavar="ACTION")
    build = dataset_commands.add_parser(
        "build", help="random symmetric crystals + AFLOW prototypes, CHGNet-relaxed, de-duplicated",
        description="Relax PyXtal random symmetric crystals and decorated AFLOW prototypes of each "
                    "chemical system with CHGNet, drop duplicates (StructureMatcher), and append every "
                    "kept structure to OUT_DIR/structures.w<worker>.extxyz with its energy. Resumes: "
                    "attempted tasks are recorded in OUT_DIR/attempts.w<worker>.jsonl. Run several "
                    "workers (--worker k --workers n) in parallel on one folder.",
        epilog="Example:\n  chggen dataset build data/dataset --systems Li-Si Zn-P-S --target 500",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    add_build_arguments(build)
    build.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    summary = run_build(args)
    print(f"distinct structures per system: {summary.counts}; this run: {dict(summary.outcomes)}")
