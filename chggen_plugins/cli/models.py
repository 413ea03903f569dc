"""`chggen models`: the installed score models (elements, noise processes) and relaxers (versions)."""

from __future__ import annotations

import argparse

from chggen_plugins.contract.registry import clashing_models, installed_models, installed_relaxers, plugins


def add_parser(commands: argparse._SubParsersAction) -> None:
    models = commands.add_parser("models", help="list installed score models and relaxers",
                                 description="List the score models installed plugins provide (name, "
                                             "elements, noise process, the package it came from), then "
                                             "the relaxers (name, version, package; --relaxer NAME).")
    models.add_argument("-v", "--verbose", action="store_true",
                        help="also print each model's and relaxer's summary")
    models.set_defaults(run=run)


def run(args: argparse.Namespace) -> None:
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
    relaxers = [("RELAXER", "VERSION", "FROM")] + [(name, found.spec.version(), found.origin)
                                                  for name, found in sorted(installed_relaxers().items())]
    widths = [max(len(row[i]) for row in relaxers) for i in range(2)]
    print()
    for row in relaxers:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[2])
    if args.verbose:
        print()
        for name, installed in sorted(installed_models().items()):
            print(f"{name}: {installed.spec.summary}")
        for name, found in sorted(installed_relaxers().items()):
            print(f"relaxer {name}: {found.spec.summary}")
