"""`chggen benchmark symmetry`: the symmetry success rate of every installed model, side by side."""

from __future__ import annotations

import argparse
from pathlib import Path

from chggen_plugins.cli.options import add_quiet, add_relax_options, model_sources, seed
from chggen_plugins.errors import ChggenError


def add_parser(commands: argparse._SubParsersAction) -> None:
    benchmark = commands.add_parser("benchmark", help="benchmarks across installed models",
                                    description="Benchmarks that put installed models side by side.")
    benchmarks = benchmark.add_subparsers(dest="benchmark_command", required=True, metavar="BENCHMARK")
    symmetry = benchmarks.add_parser(
        "symmetry", help="symmetry success rate per model and method (the paper's Fig. 6)",
        description="For every model, composition and cell size: the model's own sampler where it has "
                    "one (MatterGen), CHGGen unconditional generation in random cells, and CHGGen "
                    "inpainting into symmetrized hosts; all relaxed with CHGNet and refined the same "
                    "way. Prints one table (success rate with counts and 95% Wilson interval; the "
                    "weights column says trained or UNTRAINED), writes OUT/symmetry_benchmark.csv and "
                    "OUT/symmetry_benchmark.png, and keeps each model's campaign in OUT/<model>/ "
                    "(rerun to resume). Models that are not installed or have no checkpoint are "
                    "listed as skipped.",
        epilog="Example:\n  chggen benchmark symmetry --models native,mattergen \\\n"
               "      --model-source mattergen=checkpoints/mp_20_base --compositions Li5Si2:14,Li2Si:12 "
               "--samples 20",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    symmetry.add_argument("--models", default="native", help="comma-separated model names (see `chggen models`)")
    symmetry.add_argument("--model-source", action="append", default=[], metavar="NAME=PATH",
                          help="checkpoint of a model that needs one (repeatable)")
    symmetry.add_argument("--compositions", default="Li5Si2:14,Li2Si:12",
                          help="FORMULA:ATOMS[:GUEST],... (guest default: the least electronegative element)")
    symmetry.add_argument("--samples", type=int, default=20,
                          help="structures per model, method, composition and cell size")
    symmetry.add_argument("--hosts", type=int, default=3, help="hosts per composition for inpainting")
    symmetry.add_argument("--max-steps", type=int, default=500, help="FIRE steps per relaxation")
    symmetry.add_argument("--entries", type=Path, default=None,
                          help="ComputedEntry JSON for Ed (default: MP with MP_API_KEY, else a CHGNet hull)")
    symmetry.add_argument("--seed", type=seed, default=0, help="the campaigns' seed (default 0)")
    symmetry.add_argument("--out", default="symmetry_benchmark", help="output folder (default %(default)s)")
    add_relax_options(symmetry, steps=False)
    add_quiet(symmetry)
    symmetry.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.symmetry_benchmark import (  # campaigns: CHGNet, matplotlib
        parse_cases,
        run_symmetry_benchmark,
    )

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not models:
        raise ChggenError("--models: give at least one model name, e.g. native,mattergen,diffcsp")
    run_symmetry_benchmark(models, model_sources(args.model_source), parse_cases(args.compositions),
                           args.samples, Path(args.out), hosts=args.hosts, seed=args.seed,
                           max_steps=args.max_steps, entries=args.entries, progress=not args.quiet,
                           relaxer=args.relaxer, stages=args.relax_stages)
