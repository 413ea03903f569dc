"""Comparing fractional coordinates that went through a file, a database or Cartesian coordinates:
equal modulo 1 (a -5e-18 read back for a 0.0 written, or 0.99999999 for 0.0, is the same site) and to
a stated tolerance. Host atoms through the sampler in memory are compared exactly, never with this."""

import numpy as np


def periodic_offset(a, b) -> np.ndarray:
    """a - b per coordinate, taken to the nearest image: in [-0.5, 0.5]."""
    difference = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return difference - np.round(difference)


def same_frac_coords(a, b, atol: float) -> bool:
    """Same shape and every coordinate within `atol` of the other's, modulo 1."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.abs(periodic_offset(a, b)) <= atol))
