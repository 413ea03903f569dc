"""The options and argument types the commands share, built once so that they cannot drift."""

from __future__ import annotations

import argparse

from chggen_plugins.contract.registry import DEFAULT_RELAXER
from chggen_plugins.errors import ChggenError
from chggen_plugins.sampling import SOLVERS
from chggen_plugins.seeds import check_seed


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps an epilog's line breaks and shows every default; an option whose default is None ("as
    the weights or the data have it") says its default in its own help instead of "(default: None)".
    For commands that adapters contribute, whose many numeric options are easiest read with defaults."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def guest_count(text: str) -> tuple[str, int]:
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


def site_indices(text: str) -> list[int]:
    """'3,4,7' -> [3, 4, 7], for --regenerate-sites."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write 0-based site indices, e.g. 3,4,7") from None


def sphere_centre(text: str) -> int | list[float]:
    """'12' (a site index) or '0.5,0.5,0.25' (fractional coordinates), for --around."""
    parts = text.split(",")
    try:
        return int(text) if len(parts) == 1 else [float(part) for part in parts]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: write a site index (12) or fractional x,y,z") from None


def model_sources(items: list[str]) -> dict[str, str]:
    """['mattergen=ckpt/'] -> {'mattergen': 'ckpt/'}, for benchmark --model-source."""
    sources = {}
    for item in items:
        name, _, path = item.partition("=")
        if not name or not path:
            raise ChggenError(f"--model-source {item!r}: write NAME=PATH, e.g. mattergen=checkpoints/mp_20_base")
        sources[name] = path
    return sources


def seed(text: str) -> int:
    """An integer seed in 0..2^63-1, for --seed."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: not an integer") from None
    try:
        return check_seed(value, "value")
    except ChggenError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_model_options(parser: argparse.ArgumentParser, required: bool = True, used_by: str = "") -> None:
    """--model, --model-source, --levels and --device."""
    parser.add_argument("--model", required=required, default=None,
                        help=f"score model name{used_by} (see `chggen models`)")
    parser.add_argument("--model-source", default=None,
                        help="checkpoint or file the model is loaded from (default: its bundled weights)")
    parser.add_argument("--levels", type=int, default=None, metavar="N",
                        help="noise levels of the sampler's ladder over the model's sigma range, for "
                             "models conditioned on sigma (native, mattergen, analytic); DiffCSP's "
                             "ladder is fixed by its checkpoint (default: the model's own)")
    parser.add_argument("--device", default="cpu", help="torch device of the score model (default cpu)")


def solver_steps(text: str) -> int:
    """--steps: an integer >= 2 (the top level and level 0 are always visited)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 2:
        raise argparse.ArgumentTypeError(f"{value}: at least 2 (the top level and level 0)")
    return value


def churn(text: str) -> float:
    """--churn: a finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text}: a number >= 0")
    return value


def add_sampler_options(parser: argparse.ArgumentParser) -> None:
    """--seed, --jump-length, --resamples, --sampler, --steps and --churn."""
    parser.add_argument("--seed", type=seed, default=None,
                        help="random seed: same seed, same structures (default: drawn, printed and stored; "
                             "a rerun into an existing output resumes with the stored one)")
    parser.add_argument("--jump-length", type=int, default=10, help="RePaint jump length j (default 10)")
    parser.add_argument("--resamples", type=int, default=None,
                        help="RePaint resamples r; 1 = off (default: 3, or 1 for a host-conditioned model)")
    parser.add_argument("--sampler", choices=SOLVERS, default="pc",
                        help="move down the noise ladder: pc (predictor + Langevin correctors at every level), "
                             "heun (EDM: churn, then Heun steps of the probability-flow ODE, 2 calls a step) or "
                             "ode (Heun steps, no churn) (default pc)")
    parser.add_argument("--steps", type=solver_steps, default=None, metavar="N",
                        help="heun/ode: ladder levels visited, evenly spaced from the top to 0 (default: every "
                             "level; for pc use --levels)")
    parser.add_argument("--churn", type=churn, default=0.0, metavar="G",
                        help="heun: EDM's gamma, re-noise to sigma * (1 + G) before each step (default 0)")


def relax_stages(text: str) -> tuple[str, ...]:
    """'guests,all' -> ('guests', 'all'), for --relax-stages; unknown or repeated names are a usage
    error naming the option."""
    from chggen_plugins.evaluation.relax import check_stages  # only when the option is given: pymatgen

    try:
        return check_stages([part.strip() for part in text.split(",") if part.strip()], repr(text))
    except ChggenError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_relax_options(parser: argparse.ArgumentParser, steps: bool = True) -> None:
    """--fmax and --max-steps (unless `steps` is False: a command with its own), --relaxer and --relax-stages."""
    if steps:
        parser.add_argument("--fmax", type=float, default=0.1, help="relaxation fmax, eV/A (default 0.1)")
        parser.add_argument("--max-steps", type=int, default=500,
                            help="FIRE steps per relaxation, shared by its stages (default 500)")
    parser.add_argument("--relaxer", default=DEFAULT_RELAXER, metavar="NAME",
                        help=f"relaxer plugin (default {DEFAULT_RELAXER}; an adapter adds more, e.g. sevennet)")
    parser.add_argument("--relax-stages", type=relax_stages, default=("all",), metavar="STAGES",
                        help="comma-separated, in order: guests (guest positions only, host fixed, cell fixed; "
                             "skipped without a host), all (positions and cell) (default all)")


def add_quiet(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
