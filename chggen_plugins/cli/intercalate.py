"""`chggen intercalate`: a guest-content sweep into one host, its hull and voltage profile."""

from __future__ import annotations

import argparse
from pathlib import Path

from chggen_plugins.cli.options import add_model_options, add_quiet, add_relax_options, add_sampler_options
from chggen_plugins.contract.devices import check_device
from chggen_plugins.errors import ChggenError


def add_parser(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser(
        "intercalate", help="guest-content sweep into a fixed host: hull and voltage profile",
        description="For each guest count per (super)cell, inpaint SAMPLES structures of the guest into the "
                    "fixed HOST (all counts in one sampler batch), relax host and guests together with CHGNet, "
                    "and keep every result in OUT/results.db (rerun the same command to resume). The empty "
                    "host and the guest's elemental solid, relaxed with the same CHGNet, make the pseudo-"
                    "binary HOST - GUEST_x: formation energy per host formula unit vs x, its lower convex "
                    "hull, the stable x and the voltage steps between them (pymatgen InsertionElectrode: "
                    "V = -dEf/(dx z), z = 1 for Li, Na, K; 2 for Mg, Zn). Writes intercalation.csv, "
                    "voltage.csv, hull.png, voltage.png and structures/*.cif, and prints a summary.",
        epilog="Example:\n  chggen intercalate examples/si_host.cif --guest Li --max 4 --samples 4 "
               "--model native --levels 100 --out li_si_sweep",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sweep.add_argument("host", help="host structure file (CIF, POSCAR, ...), without the guest (or use --strip)")
    sweep.add_argument("--guest", required=True, help="guest element, e.g. Li, Na, Mg, Zn")
    sweep.add_argument("--counts", help="guest counts per (super)cell, e.g. 1,2,3,4")
    sweep.add_argument("--max", type=int, metavar="N", help="counts 1..N (instead of --counts)")
    sweep.add_argument("--supercell", default="1x1x1", help="supercell of the host, e.g. 2x1x1 (default 1x1x1)")
    sweep.add_argument("--samples", type=int, default=4, help="inpainted structures per count (default 4)")
    sweep.add_argument("--reference", default=None,
                       help="the guest's elemental structure file (default: the lowest-energy AFLOW "
                            "elemental prototype after CHGNet relaxation)")
    sweep.add_argument("--strip", action="store_true", help="remove the guest species from HOST first")
    sweep.add_argument("--symmetric", action="store_true",
                       help="also SAMPLES symmetric samples per count: guests on Wyckoff orbits of the "
                            "host's group or of its largest subgroup that fits (counts that none fits "
                            "get free samples only)")
    sweep.add_argument("--out", required=True, help="output folder (results.db, tables, plots, CIFs)")
    add_model_options(sweep)
    add_sampler_options(sweep)
    add_relax_options(sweep)
    add_quiet(sweep)
    sweep.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.intercalation import (  # CHGNet, pymatgen's battery code, matplotlib
        intercalate,
        parse_counts,
    )

    check_device(args.device, "--device")
    if (args.counts is None) == (args.max is None):
        raise ChggenError("give the guest counts per cell with --counts 1,2,3 or --max N (one of them)")
    counts = parse_counts(args.counts) if args.counts is not None else list(range(1, args.max + 1))
    intercalate(Path(args.host), args.guest, counts, args.model, Path(args.out), samples=args.samples,
                supercell=args.supercell, model_source=args.model_source, levels=args.levels, seed=args.seed,
                jump_length=args.jump_length, resamples=args.resamples, sampler=args.sampler, steps=args.steps,
                churn=args.churn, fmax=args.fmax, max_steps=args.max_steps,
                relaxer=args.relaxer, stages=args.relax_stages,
                reference=None if args.reference is None else Path(args.reference), strip=args.strip,
                symmetric=args.symmetric, device=args.device, progress=not args.quiet)
