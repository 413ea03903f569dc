"""The `chggen` command. Every user error ends as one line on stderr and exit status 2; every
ChggenWarning as one `chggen: warning:` line.

torch, pymatgen and the sampler are imported inside the commands that use them: building the parser
(and so `chggen --help`) needs only argparse and the plugins' registration modules.
"""

from __future__ import annotations

import argparse
import ast
import secrets
import sys
import warnings
from pathlib import Path

from chggen_plugins.cli.dataset import add_build_arguments, run_build
from chggen_plugins.contract.devices import check_device
from chggen_plugins.contract.registry import clashing_models, installed_models, load_model, plugin_manager, plugins
from chggen_plugins.errors import ChggenError, ChggenWarning

_FORMATS = {".extxyz": "extxyz", ".xyz": "extxyz", ".cif": "cif"}


def _guest(text: str) -> tuple[str, int]:
    """'Li:4' -> ('Li', 4), for --guest."""
    symbol, _, count = text.partition(":")
    if not count:
        raise argparse.ArgumentTypeError(f"{text!r}: write ELEMENT:COUNT, e.g. Li:4")
    try:
        number = int(count)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: count {count!r} is not an integer") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: count must be a positive integer")
    return symbol, number


def _indices(text: str) -> list[int]:
    """'3,4,7' -> [3, 4, 7], for --regenerate-sites."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write 0-based site indices, e.g. 3,4,7") from None


def _centre(text: str) -> int | list[float]:
    """'12' (a site index) or '0.5,0.5,0.25' (fractional coordinates), for --around."""
    parts = text.split(",")
    try:
        return int(text) if len(parts) == 1 else [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a site index (12) or fractional x,y,z") from None


def _output_format(path: Path) -> str:
    if path.suffix.lower() not in _FORMATS:
        raise ChggenError(f"--out {path}: use a .extxyz, .xyz or .cif file name")
    return _FORMATS[path.suffix.lower()]


def cmd_models(args: argparse.Namespace) -> None:
    from pymatgen.core import Element

    rows = [("NAME", "ELEMENTS", "NOISE PROCESS", "FROM")]
    for name, installed in sorted(installed_models().items()):
        if installed.spec.needs_source:
            elements, process = "from --model-source", "from --model-source"
        else:
            model = installed.spec.load(None)
            elements = " ".join(Element.from_Z(z).symbol for z in sorted(model.elements))
            process = model.noise_process.describe()
        rows.append((name, elements, process, installed.origin))
    for name, found in sorted(clashing_models().items()):
        rows += [(name, "NAME CLASH", "-", f"{item.origin}; registered {len(found)} times, uninstall all "
                                             "but one") for item in sorted(found, key=lambda i: i.origin)]
    for name, why in sorted(plugins().broken.items()):
        rows.append((name, "NOT LOADED", "-", why))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    if args.verbose:
        print()
        for name, installed in sorted(installed_models().items()):
            print(f"{name}: {installed.spec.summary}")


def cmd_inpaint(args: argparse.Namespace) -> None:
    from ase.io import write as write_atoms

    from chggen_plugins.api import inpaint
    from chggen_plugins.structures.io import read_structure, to_atoms

    check_device(args.device, "--device")
    out = Path(args.out)
    fmt = _output_format(out)
    if out.resolve() == Path(args.host).resolve():
        raise ChggenError(f"--out {out} is the host file itself and would overwrite it; choose another name")
    if args.samples < 1:
        raise ChggenError(f"--samples must be a positive integer, got {args.samples}")
    seed = secrets.randbits(31) if args.seed is None else args.seed  # stored, so any run can be repeated
    guests: dict[str, int] = {}
    for symbol, count in args.guest or []:
        guests[symbol] = guests.get(symbol, 0) + count
    host = read_structure(Path(args.host))
    if args.regenerate_sites or args.regenerate_species or args.around is not None or args.within is not None:
        from chggen_plugins.structures.host import select_guests

        host, taken = select_guests(host, args.regenerate_sites, args.regenerate_species, args.around, args.within)
        print(f"regenerating {', '.join(f'{s}:{n}' for s, n in taken.items())} of {Path(args.host).name}")
        guests = {s: taken.get(s, 0) + guests.get(s, 0) for s in {**taken, **guests}}
    if args.space_group is not None and not args.symmetric:
        raise ChggenError("--space-group is used with --symmetric")
    if args.symmetric:
        from chggen_plugins.structures.host import symmetric_host

        symmetrized = symmetric_host(host, guests)
        if symmetrized.structure is not host:
            print(f"host symmetrized at symprec {symmetrized.symprec} A to {symmetrized.spacegroup_symbol} "
                  f"({len(symmetrized.structure)} atoms; guests {symmetrized.guests})")
        host, guests, host_group = symmetrized.structure, symmetrized.guests, symmetrized.spacegroup_symbol
    model = load_model(args.model, args.model_source, device=args.device)
    samples = inpaint(host, guests, model, n_samples=args.samples, seed=seed,
                      jump_length=args.jump_length, resamples=args.resamples, device=args.device,
                      progress=not args.quiet, symmetric=args.symmetric, space_group=args.space_group,
                      levels=args.levels, start=None if args.start is None else read_structure(Path(args.start)),
                      start_sigma=args.start_sigma, regenerate_existing=args.regenerate_existing)
    if args.symmetric:
        first = samples[0].properties
        kept = first["guest_space_group_symbol"]
        print(f"guests keep {kept} (No. {first['guest_space_group']})"
              f"{'' if kept == host_group else f', a subgroup of the host group {host_group}'}; Wyckoff "
              f"positions per sample: {', '.join(s.properties['guest_wyckoff'] for s in samples)}")
    frames = []
    for index, structure in enumerate(samples):
        atoms = to_atoms(structure)
        atoms.info.update(sample=index, seed=seed, model=args.model,
                          host=str(args.host), guests=",".join(f"{s}:{n}" for s, n in guests.items()))
        frames.append(atoms)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atoms(out, frames, format=fmt)
    print(f"wrote {len(frames)} structures to {out} (seed {seed})")


def cmd_campaign(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.campaign import run_campaign
    from chggen_plugins.runs.config import load_config  # the campaign pulls in CHGNet and matplotlib: only when asked

    config = load_config(Path(args.config))
    if args.workers is None and args.scheduler is None:
        run_campaign(config, progress=not args.quiet)
        return
    from chggen_plugins.runs.dask import dask_client  # Dask only when asked for

    with dask_client(args.workers, args.scheduler) as client:
        run_campaign(config, progress=not args.quiet, client=client)


def cmd_intercalate(args: argparse.Namespace) -> None:
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
                jump_length=args.jump_length, resamples=args.resamples, fmax=args.fmax, max_steps=args.max_steps,
                reference=None if args.reference is None else Path(args.reference), strip=args.strip,
                symmetric=args.symmetric, device=args.device, progress=not args.quiet)


def cmd_order(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.ordering import (  # CHGNet, pymatgen's transformations, matplotlib
        order,
        parse_oxidation_states,
    )

    check_device(args.device, "--device")
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    states = parse_oxidation_states(args.oxidation_states) if args.oxidation_states else None
    order(Path(args.structure), args.model, Path(args.out), samples=args.samples, supercell=args.supercell,
          methods=methods, keep=args.keep, model_source=args.model_source, levels=args.levels, seed=args.seed,
          jump_length=args.jump_length, resamples=args.resamples, width=args.width, site_pull=args.site_pull,
          oxidation_states=states,
          fmax=args.fmax, max_steps=args.max_steps, device=args.device, progress=not args.quiet)


def _config_example() -> str:
    """The annotated example config from `chggen_plugins.runs.config`'s docstring, read from the source:
    importing the module would load CHGNet's and pymatgen's phase-diagram code for every command."""
    source = (Path(__file__).parents[1] / "runs" / "config.py").read_text()
    doc = ast.get_docstring(ast.parse(source), clean=False)
    return doc.split("A full example with every key and its default:\n", 1)[1]


def cmd_dataset_build(args: argparse.Namespace) -> None:
    summary = run_build(args)
    print(f"distinct structures per system: {summary.counts}; this run: {dict(summary.outcomes)}")


def _model_sources(items: list[str]) -> dict[str, str]:
    """['mattergen=ckpt/'] -> {'mattergen': 'ckpt/'}, for benchmark --model-source."""
    sources = {}
    for item in items:
        name, _, path = item.partition("=")
        if not name or not path:
            raise ChggenError(f"--model-source {item!r}: write NAME=PATH, e.g. mattergen=checkpoints/mp_20_base")
        sources[name] = path
    return sources


def cmd_benchmark_symmetry(args: argparse.Namespace) -> None:
    from chggen_plugins.applications.symmetry_benchmark import (  # campaigns: CHGNet, matplotlib
        parse_cases,
        run_symmetry_benchmark,
    )

    models = [name.strip() for name in args.models.split(",") if name.strip()]
    if not models:
        raise ChggenError("--models: give at least one model name, e.g. native,mattergen,diffcsp")
    run_symmetry_benchmark(models, _model_sources(args.model_source), parse_cases(args.compositions),
                           args.samples, Path(args.out), hosts=args.hosts, seed=args.seed,
                           max_steps=args.max_steps, entries=args.entries, progress=not args.quiet)


def _add_sample_and_relax_options(parser: argparse.ArgumentParser) -> None:
    """The options every generate-then-relax command shares (intercalate, order)."""
    parser.add_argument("--seed", type=int, default=0, help="random seed: same seed, same structures (default 0)")
    parser.add_argument("--jump-length", type=int, default=10, help="RePaint jump length j (default 10)")
    parser.add_argument("--resamples", type=int, default=None, help="RePaint resamples r; 1 = off (default: 3, or 1 for a host-conditioned model)")
    parser.add_argument("--fmax", type=float, default=0.1, help="CHGNet relaxation fmax, eV/A (default 0.1)")
    parser.add_argument("--max-steps", type=int, default=500, help="FIRE steps per relaxation (default 500)")
    parser.add_argument("--device", default="cpu", help="torch device of the score model (default cpu)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chggen",
        description="Host-guided crystal structure generation (CHGGen): keep a host framework fixed "
                    "and generate guest atoms into it by RePaint inpainting with a diffusion score model.",
        epilog="Examples:\n  chggen models\n  chggen inpaint host.cif --guest Li:4 --samples 8 "
               "--model native --out li_in_host.extxyz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: more threads are slower when another "
                             "process shares the cores)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    models = commands.add_parser("models", help="list installed score models",
                                 description="List the score models installed plugins provide: name, "
                                             "elements, noise process, and the package it came from.")
    models.add_argument("-v", "--verbose", action="store_true", help="also print each model's summary")
    models.set_defaults(run=cmd_models)

    paint = commands.add_parser(
        "inpaint", help="generate guest atoms into a fixed host structure",
        description="Keep every atom of HOST where it is (lattice and species too) and generate the "
                    "guest atoms around it. Writes all samples to one file; the host comes back exact.")
    paint.add_argument("host", help="host structure file (CIF, POSCAR, extxyz, ...)")
    paint.add_argument("--guest", type=_guest, action="append", metavar="EL:N",
                       help="guest element and count per structure, e.g. Li:4 (repeat for more); added to the "
                            "host's own atoms of that element unless --regenerate-existing")
    paint.add_argument("--regenerate-existing", action="store_true",
                       help="with --guest: regenerate the host's own atoms of the guest elements too "
                            "(a host with 2 Li and --guest Li:2 gets 4 Li, all new)")
    paint.add_argument("--regenerate-sites", type=_indices, default=None, metavar="I,J,...",
                       help="regenerate these sites of HOST (0-based indices) as guests")
    paint.add_argument("--regenerate-species", nargs="+", default=None, metavar="EL",
                       help="regenerate every atom of these elements (within --within of --around, if given)")
    paint.add_argument("--around", type=_centre, default=None, metavar="SITE|X,Y,Z",
                       help="centre of the sphere to regenerate: a site index or fractional coordinates")
    paint.add_argument("--within", type=float, default=None, metavar="RADIUS",
                       help="radius in A of the sphere around --around whose atoms (of --regenerate-species, "
                            "or of every element) are regenerated")
    paint.add_argument("--model", required=True, help="score model name (see `chggen models`)")
    paint.add_argument("--model-source", default=None,
                       help="checkpoint or file the model is loaded from (default: its bundled weights)")
    paint.add_argument("--samples", type=int, default=8, help="structures to generate (default 8)")
    paint.add_argument("--out", required=True, help="output file: .extxyz/.xyz (all samples) or .cif")
    paint.add_argument("--seed", type=int, default=None, help="random seed: same seed, same structures")
    paint.add_argument("--jump-length", type=int, default=10, help="RePaint jump length j (default 10)")
    paint.add_argument("--resamples", type=int, default=None, help="RePaint resamples r; 1 = off (default: 3, or 1 for a host-conditioned model)")
    paint.add_argument("--levels", type=int, default=None, metavar="N",
                       help="noise levels of the sampler's ladder over the model's sigma range, for "
                            "models conditioned on sigma (native, mattergen, analytic); DiffCSP's "
                            "ladder is fixed by its checkpoint (default: the model's own)")
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
    paint.add_argument("--device", default="cpu", help="torch device (default cpu)")
    paint.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    paint.set_defaults(run=cmd_inpaint)

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
    campaign.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    campaign.add_argument("--workers", type=int, metavar="N",
                          help="run the shards on a local Dask cluster of N single-threaded worker "
                               "processes (pip install 'chggen-plugins[dask]')")
    campaign.add_argument("--scheduler", metavar="ADDRESS",
                          help="run the shards on a running Dask cluster, e.g. tcp://host:8786 (OUTPUT "
                               "must be on a file system the workers share)")
    campaign.set_defaults(run=cmd_campaign)

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
    sweep.add_argument("--model", required=True, help="score model name (see `chggen models`)")
    sweep.add_argument("--model-source", default=None,
                       help="checkpoint or file the model is loaded from (default: its bundled weights)")
    sweep.add_argument("--levels", type=int, default=None,
                       help="noise levels of the sampler's ladder, for models that offer another (native, "
                            "mattergen); default: the model's own")
    sweep.add_argument("--reference", default=None,
                       help="the guest's elemental structure file (default: the lowest-energy AFLOW "
                            "elemental prototype after CHGNet relaxation)")
    sweep.add_argument("--strip", action="store_true", help="remove the guest species from HOST first")
    sweep.add_argument("--symmetric", action="store_true",
                       help="also SAMPLES symmetric samples per count: guests on Wyckoff orbits of the "
                            "host's group or of its largest subgroup that fits (counts that none fits "
                            "get free samples only)")
    sweep.add_argument("--out", required=True, help="output folder (results.db, tables, plots, CIFs)")
    _add_sample_and_relax_options(sweep)
    sweep.set_defaults(run=cmd_intercalate)

    ordering = commands.add_parser(
        "order", help="order a partially occupied crystal: candidate orderings, relaxed and ranked",
        description="Read STRUCTURE (a CIF with partial occupancies), take the smallest supercell in which "
                    "every partially occupied species has an integer count (or --supercell), keep the fully "
                    "occupied sites as the host and order the rest: SAMPLES candidates per method (free: "
                    "inpainting anywhere; restricted: inpainting pulled to, then assigned onto, the listed "
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
    ordering.add_argument("--model", default=None, help="score model name for inpainting and inpainting-sites (see `chggen models`)")
    ordering.add_argument("--model-source", default=None,
                          help="checkpoint or file the model is loaded from (default: its bundled weights)")
    ordering.add_argument("--levels", type=int, default=None,
                          help="noise levels of the sampler's ladder (native, mattergen, analytic); default: the model's own")
    ordering.add_argument("--site-pull", type=float, default=0.0,
                          help="restricted: strength of an extra pull of the guests towards the listed sites "
                               "while sampling (default 0: the model alone places them, then each is assigned "
                               "a distinct listed site; a pull overrode the native model on Li2S)")
    ordering.add_argument("--width", type=float, default=0.1,
                          help="restricted, with --site-pull: std (A) of the site pull at the end of sampling")
    ordering.add_argument("--oxidation-states", default=None, metavar="EL:Q,...",
                          help="e.g. Li:1,P:5,S:-2, for pymatgen's ordering and the Ewald column "
                               "(default: pymatgen's BVAnalyzer)")
    ordering.add_argument("--out", required=True, help="output folder (results.db, tables, plot, CIFs)")
    _add_sample_and_relax_options(ordering)
    ordering.set_defaults(run=cmd_order)

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
    symmetry.add_argument("--seed", type=int, default=0)
    symmetry.add_argument("--out", default="symmetry_benchmark", help="output folder (default %(default)s)")
    symmetry.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    symmetry.set_defaults(run=cmd_benchmark_symmetry)

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
    build.set_defaults(run=cmd_dataset_build)

    plugin_manager().hook.chggen_add_commands(commands=commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    with warnings.catch_warnings():
        python_show = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None) -> None:
            if issubclass(category, ChggenWarning):
                print(f"chggen: warning: {message}", file=sys.stderr)
            else:
                python_show(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        warnings.simplefilter("always", ChggenWarning)
        try:
            args = build_parser().parse_args(argv)  # building it loads the plugins, which may clash
            if args.threads < 1:
                raise ChggenError("--threads must be >= 1")
            import torch

            torch.set_num_threads(args.threads)
            args.run(args)
        except ChggenError as error:
            print(f"chggen: error: {error}", file=sys.stderr)
            return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
