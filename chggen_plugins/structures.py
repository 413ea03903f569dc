"""Structures in and out: files, pymatgen and ASE, with the checks that make bad input one clear line."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import numpy as np
from ase import Atoms
from pymatgen.core import Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .errors import ChggenError

StructureLike = Union[Structure, Atoms, str, Path]

_MIN_HEIGHT = 0.5  # Angstrom: a cell thinner than this in any direction cannot hold an atom layer


def read_structure(path: Path) -> Structure:
    """The first structure in a CIF, POSCAR, extxyz, ... file, checked for use as a host."""
    path = Path(path)
    if not path.is_file():
        raise ChggenError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_file(path)
    except Exception as error:  # pymatgen raises many kinds; all mean "cannot read this file"
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ChggenError(f"{path}: cannot read a crystal structure ({message})") from None
    check_structure(structure, str(path))
    return structure


def check_lattice(lattice: Lattice, where: str) -> None:
    """Refuse cells that are degenerate, zero-volume or not finite."""
    matrix = np.asarray(lattice.matrix, dtype=float)
    if not np.isfinite(matrix).all():
        raise ChggenError(f"{where}: lattice has non-finite entries")
    volume = abs(float(np.linalg.det(matrix)))
    faces = np.linalg.norm(np.cross(matrix[[1, 2, 0]], matrix[[2, 0, 1]]), axis=1)
    if volume < 1e-6 or faces.max() == 0 or volume / faces.max() < _MIN_HEIGHT:
        raise ChggenError(f"{where}: degenerate lattice (volume {volume:.3g} A^3, abc "
                          f"{np.round(lattice.abc, 3).tolist()}, angles "
                          f"{np.round(lattice.angles, 1).tolist()})")


def check_structure(structure: Structure, where: str) -> None:
    """A host must be ordered and sit in a proper cell."""
    check_lattice(structure.lattice, where)
    if not structure.is_ordered:
        partial = next(site for site in structure if not site.is_ordered)
        raise ChggenError(
            f"{where}: partial occupancy at site {partial.species_string} "
            f"({np.round(partial.frac_coords, 4).tolist()}); order it first, e.g. with pymatgen's "
            "OrderDisorderedStructureTransformation or by editing the CIF occupancies to 1")


def to_structure(host: StructureLike, where: str = "host") -> tuple[Structure, bool]:
    """(pymatgen Structure, whether the caller gave ASE Atoms) for any accepted host form."""
    if isinstance(host, (str, Path)):
        return read_structure(Path(host)), False
    if isinstance(host, Atoms):
        if not host.pbc.all() or host.cell.rank < 3:
            raise ChggenError(f"{where}: ASE Atoms must be periodic in 3D with a full cell")
        structure = AseAtomsAdaptor.get_structure(host)
        check_structure(structure, where)
        return structure, True
    if isinstance(host, Structure):
        check_structure(host, where)
        return host, False
    raise ChggenError(f"{where}: expected a pymatgen Structure, ASE Atoms or a file path, "
                      f"got {type(host).__name__}")


def to_atoms(structure: Structure) -> Atoms:
    return AseAtomsAdaptor.get_atoms(structure)
