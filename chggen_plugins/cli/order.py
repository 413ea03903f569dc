"""`chggen order`: candidate orderings of a partially occupied crystal, relaxed and ranked."""

from __future__ import annotations

import argparse
from pathlib import Path

from chggen_plugins.cli.options import add_model_options, add_quiet, add_relax_options, add_sampler_options
from chggen_plugins.contract.devices import check_device


def add_parser(commands: argparse._SubParsersAction) -> None:
    ordering = commands.add_parser(
        "order", help="order a partially occupied crystal: candidate orderings, relaxed and ranked",
        description="Read STRUCTURE (a CIF with partial occupancies), take the smallest supercell in which "
                    "every partially occupied species has an integer count (or --supercell), keep the fully "
                    "occupied sites as the host and order the rest: SAMPLES candidates per method (inpainting: "
                    "anywhere; inpainting-sites: inpainting, optionally pulled to, then assigned onto, the listed "
                    "sites; pymatgen: OrderDisorderedStructureTransformation's best by Ewald energy; random: "
                    "uniform orderings of the sites), each relaxed with CHGNet and kept in OUT/results.db "
                    "(rerun to resume). Writes OUT/orderings.csv, OUT/methods.csv, OUT/energies.png and the "
                    "KEEP lowest distinct orderings as OUT/structures/*.cif, and prints a table per method.",
        epilog="Example:\n  chggen order benchmarks/data/beta_li3ps4_homma2011.cif --samples 8 --model native "
               "--levels 100 --methods inpainting,inpainting-sites,pymatgen,random --oxidation-states Li:1,P:5,S:-2 "
               "--out li3ps4_orderings",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ordering.add_argument("structure", help="disordered structure (CIF with _atom_site_occupancy)")
    ordering.add_argument("--supercell", default=None,
                          help="e.g. 2x1x1 (default: the smallest that gives integer counts)")
    ordering.add_argument("--samples", type=int, default=8, help="candidates per method (default 8)")
    ordering.add_argument("--methods", default="inpainting,inpainting-sites",
                          help="comma-separated: inpainting, inpainting-sites, pymatgen, random "
                               "(default inpainting,inpainting-sites)")
    ordering.add_argument("--keep", type=int, default=None,
                          help="lowest distinct orderings written as CIF (default SAMPLES)")
    ordering.add_argument("--site-pull", type=float, default=0.0,
                          help="inpainting-sites: strength of an extra pull of the guests towards the listed sites "
                               "while sampling (default 0: the model alone places them, then each is assigned "
                               "a distinct listed site; a pull overrode the native model on Li2S)")
    ordering.add_argument("--width", type=float, default=0.1,
                          help="inpainting-sites, with --site-pull: std (A) of the site pull at the end of sampling")
    ordering.add_argument("--oxidation-states", default=None, metavar="EL:Q,...",
                          help="e.g. Li:1,P:5,S:-2, for pymatgen's ordering and the Ewald column "
                               "(default: pymatgen's BVAnalyzer)")
    ordering.add_argument("--out", required=True, help="output folder (results.db, tables, plot, CIFs)")
    add_model_options(ordering, required=False, used_by=" for inpainting and inpainting-sites")
    add_sampler_options(ordering)
    add_relax_options(ordering)
    add_quiet(ordering)
    ordering.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.ordering import (  # CHGNet, pymatgen's transformations, matplotlib
        order,
        parse_oxidation_states,
    )

    check_device(args.device, "--device")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    states = parse_oxidation_states(args.oxidation_states) if args.oxidation_states else None
    order(Path(args.structure), args.model, Path(args.out), samples=args.samples, supercell=args.supercell,
          methods=methods, keep=args.keep, model_source=args.model_source, levels=args.levels, seed=args.seed,
          jump_length=args.jump_length, resamples=args.resamples, sampler=args.sampler, steps=args.steps,
          churn=args.churn, width=args.width, site_pull=args.site_pull,
          oxidation_states=states,
          fmax=args.fmax, max_steps=args.max_steps, relaxer=args.relaxer,
          stages=args.relax_stages, device=args.device, progress=not args.quiet)
