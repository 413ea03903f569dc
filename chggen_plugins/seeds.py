"""Seeds: one range, one check and one way to draw, for the CLI, the API and every run.

Why one place: the range was checked three times (the API, the run setup, the `--seed` parser) and a
missing seed drawn at two widths; torch's and numpy's generators take 0..2^63-1.
"""

from __future__ import annotations

import secrets

from chggen_plugins.errors import ChggenError

MAX_SEED = 2**63 - 1


def check_seed(seed: object, where: str = "seed") -> int:
    """`seed` when it is an integer in 0..MAX_SEED, else one line naming `where`.

    Args:
        seed: the value given.
        where: what to name in the message (e.g. "--seed").

    Returns:
        The seed.

    Raises:
        ChggenError: not an integer, or outside 0..2^63-1.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ChggenError(f"{where} {seed!r}: an integer in 0..2^63-1")
    return seed


def draw_seed() -> int:
    """A new seed for a run given none: 31 bits, short enough to read back from the printed line."""
    return secrets.randbits(31)
