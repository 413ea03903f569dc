"""`chggen inpaint`: guests generated into one host, all samples written to one file."""

from __future__ import annotations

import argparse
from pathlib import Path

from chggen_plugins.cli.options import (
    add_model_options,
    add_quiet,
    add_sampler_options,
    guest_count,
    site_indices,
    sphere_centre,
)
from chggen_plugins.contract.devices import check_device
from chggen_plugins.errors import ChggenError
from chggen_plugins.seeds import draw_seed

FORMATS = {".extxyz": "extxyz", ".xyz": "extxyz", ".cif": "cif"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    paint = commands.add_parser(
        "inpaint", help="generate guest atoms into a fixed host structure",
        description="Keep every atom of HOST where it is (lattice and species too) and generate the "
                    "guest atoms around it. Writes all samples to one file; the host comes back exact.")
    paint.add_argument("host", help="host structure file (CIF, POSCAR, extxyz, ...)")
    paint.add_argument("--guest", type=guest_count, action="append", metavar="EL:N",
                       help="guest element and count per structure, e.g. Li:4 (repeat for more); added to the "
                            "host's own atoms of that element unless --regenerate-existing")
    paint.add_argument("--regenerate-existing", action="store_true",
                       help="with --guest: regenerate the host's own atoms of the guest elements too "
                            "(a host with 2 Li and --guest Li:2 gets 4 Li, all new)")
    paint.add_argument("--regenerate-sites", type=site_indices, default=None, metavar="I,J,...",
                       help="regenerate these sites of HOST (0-based indices) as guests")
    paint.add_argument("--regenerate-species", nargs="+", default=None, metavar="EL",
                       help="regenerate every atom of these elements (within --within of --around, if given)")
    paint.add_argument("--around", type=sphere_centre, default=None, metavar="SITE|X,Y,Z",
                       help="centre of the sphere to regenerate: a site index or fractional coordinates")
    paint.add_argument("--within", type=float, default=None, metavar="RADIUS",
                       help="radius in A of the sphere around --around whose atoms (of --regenerate-species, "
                            "or of every element) are regenerated")
    paint.add_argument("--samples", type=int, default=8, help="structures to generate (default 8)")
    paint.add_argument("--out", required=True, help="output file: .extxyz/.xyz (all samples) or .cif; "
                                                    "written whole or not at all")
    paint.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    paint.add_argument("--start", default=None, metavar="GUESS",
                       help="refine a placement instead of sampling from nothing: a structure file in the "
                            "host's cell whose guest-species sites (apart from the host's) are the guests")
    paint.add_argument("--start-sigma", type=float, default=None, metavar="SIGMA",
                       help="with --start: noise put on the placement before refining it, in the model's "
                            "units (A for native; fractional for DiffCSP/MatterGen), e.g. 0.5")
    paint.add_argument("--symmetric", action="store_true",
                       help="keep the host's space group: guests on its Wyckoff orbits (or on those of "
                            "its largest subgroup that fits the counts); a host that is P1/P-1 at "
                            "symprec 0.01 A is symmetrized first")
    paint.add_argument("--space-group", type=int, default=None, metavar="N",
                       help="with --symmetric: keep this subgroup of the host's group instead")
    paint.add_argument("--orbits", choices=("uniform", "model"), default="uniform",
                       help="with --symmetric: draw each sample's Wyckoff orbits uniformly (default), or take "
                            "those nearest to where a free inpainting pass put the guests (model), over the "
                            "host's group and its subgroups")
    add_model_options(paint)
    add_sampler_options(paint)
    add_quiet(paint)
    paint.set_defaults(run=run)


def output_format(path: Path) -> str:
    """The ASE format of an --out file name, or one line saying which names work."""
    if path.suffix.lower() not in FORMATS:
        raise ChggenError(f"--out {path}: use a .extxyz, .xyz or .cif file name")
    return FORMATS[path.suffix.lower()]


def run(args: argparse.Namespace) -> None:
    from ase.io import write as write_atoms

    from chggen_plugins.api import inpaint
    from chggen_plugins.contract.registry import load_model
    from chggen_plugins.files import output_file, replacing
    from chggen_plugins.structures.io import read_structure, to_atoms

    check_device(args.device, "--device")
    out = Path(args.out)
    fmt = output_format(out)
    if out.resolve() == Path(args.host).resolve():
        raise ChggenError(f"--out {out} is the host file itself and would overwrite it; choose another name")
    output_file(out, "--out", args.overwrite)  # before the work, so a bad path loses nothing
    if args.samples < 1:
        raise ChggenError(f"--samples must be a positive integer, got {args.samples}")
    if args.space_group is not None and not args.symmetric:
        raise ChggenError("--space-group is used with --symmetric")
    if args.orbits == "model" and (not args.symmetric or args.space_group is not None):
        raise ChggenError("--orbits model is used with --symmetric, without --space-group (it chooses the group)")
    seed = draw_seed() if args.seed is None else args.seed  # stored, so any run can be repeated
    guests: dict[str, int] = {}
    for symbol, count in args.guest or []:
        guests[symbol] = guests.get(symbol, 0) + count
    host = read_structure(Path(args.host))  # a bad host is named before a model is loaded
    start = None if args.start is None else read_structure(Path(args.start))
    model = load_model(args.model, args.model_source, device=args.device)
    samples = inpaint(host, guests, model, n_samples=args.samples, seed=seed,
                      jump_length=args.jump_length, resamples=args.resamples, device=args.device,
                      progress=not args.quiet, symmetric=args.symmetric, space_group=args.space_group,
                      levels=args.levels, start=start,
                      start_sigma=args.start_sigma, regenerate_existing=args.regenerate_existing,
                      regenerate_sites=args.regenerate_sites, regenerate_species=args.regenerate_species,
                      around=args.around, within=args.within, orbits=args.orbits, sampler=args.sampler,
                      steps=args.steps, churn=args.churn)
    first = samples[0].properties
    if "regenerated" in first:
        print(f"regenerating {first['regenerated']} of {Path(args.host).name}")
    if "host_symmetrized" in first:
        print(f"host symmetrized {first['host_symmetrized']}; guests {first['guests']}")
    if args.symmetric:
        kept, host_group = first["guest_space_group_symbol"], first["host_space_group"]
        print(f"guests keep {kept} (No. {first['guest_space_group']})"
              f"{'' if kept == host_group else f', a subgroup of the host group {host_group}'}; Wyckoff "
              f"positions per sample: {', '.join(s.properties['guest_wyckoff'] for s in samples)}")
    frames = []
    for index, structure in enumerate(samples):
        atoms = to_atoms(structure)
        atoms.info.update(sample=index, seed=seed, model=args.model, host=str(args.host),
                          guests=structure.properties["guests"])
        frames.append(atoms)
    with replacing(out) as temporary:
        write_atoms(temporary, frames, format=fmt)
    print(f"wrote {len(frames)} structures to {out} (seed {seed})")
    crowded = sum(structure.properties["close_pairs"] > 0 for structure in samples)
    if crowded:  # said again after the progress output, beside the file it concerns
        print(f"{crowded} of them have atoms closer than 1 A (info key close_pairs)")
