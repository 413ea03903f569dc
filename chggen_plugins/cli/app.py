"""The `chggen` command: one parser with a subcommand per module of this folder. Every user error
ends as one line on stderr and exit status 2; every ChggenWarning as one `chggen: warning:` line.

torch, pymatgen and the sampler are imported inside the commands that use them: building the parser
(and so `chggen --help`) needs only argparse and the plugins' registration modules.
"""

from __future__ import annotations

import argparse
import sys
import warnings

from chggen_plugins.cli import benchmark, campaign, dataset, inpaint, intercalate, models, order
from chggen_plugins.contract.registry import plugin_manager
from chggen_plugins.errors import ChggenError, ChggenWarning

COMMANDS = (models, inpaint, campaign, intercalate, order, benchmark, dataset)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chggen",
        description="Host-guided crystal structure generation (CHGGen): keep a host framework fixed "
                    "and generate guest atoms into it by RePaint inpainting with a diffusion score model.",
        epilog="Examples:\n  chggen models\n  chggen inpaint host.cif --guest Li:4 --samples 8 "
               "--model native --out li_in_host.extxyz",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: $CHGGEN_THREADS, else 1; more threads are "
                             "slower when another process shares the cores)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    for command in COMMANDS:
        command.add_parser(commands)
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
            if args.threads is not None and args.threads < 1:
                raise ChggenError("--threads must be >= 1")
            import torch

            from chggen_plugins.contract.devices import default_threads

            torch.set_num_threads(args.threads or default_threads())
            args.run(args)
        except ChggenError as error:
            print(f"chggen: error: {error}", file=sys.stderr)
            return 2
        except OSError as error:  # a full disk or a vanished folder while writing: named, not a traceback
            where = f"{error.filename}: " if error.filename else ""
            print(f"chggen: error: {where}{error.strerror or error}; what was written before is kept",
                  file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            print("chggen: interrupted; what was stored is kept (rerun the same command to resume a "
                  "campaign, sweep or ordering)", file=sys.stderr)
            return 130
    return 0

