"""Structures in and out: files, pymatgen and ASE, with the checks that make bad input one clear line."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Union

import ase.io
import numpy as np
from ase import Atoms
from ase.io.formats import UnknownFileTypeError, extension2format, filetype, ioformats
from monty.io import zopen
from pymatgen.core import Element, Lattice, Structure
from pymatgen.io.ase import AseAtomsAdaptor
from pymatgen.io.cif import CifParser

from chggen_plugins.errors import ChggenError, ChggenWarning, first_line

StructureLike = Union[Structure, Atoms, str, Path]

_MIN_HEIGHT = 0.5  # Angstrom: a cell thinner than this in any direction cannot hold an atom layer
MIN_HOST_DISTANCE = 0.5  # Angstrom: shorter than any bond (H2: 0.74 A), so a duplicated or misplaced atom
MIN_DISTANCE = 1.0  # Angstrom: a generated structure with a closer pair is flagged, and set aside before relaxation
ISOLATION = 7.0  # Angstrom: the paper's graph cutoff; an atom with no neighbour within it guides nothing

# Extensions pymatgen reads, by its format names: pymatgen before ASE for these (it keeps CIF
# occupancies and says why a CIF has no structure). Every other extension ASE knows goes to ASE.
_PYMATGEN_FORMATS = {"vasp": "poscar", "poscar": "poscar", "json": "json", "yaml": "yaml", "yml": "yaml",
                     "cssr": "cssr", "xsf": "xsf", "res": "res"}
_COMPRESSION = {"gz", "bz2", "xz"}


def read_structure(path: Path, ordered: bool = True) -> Structure:
    """The first structure in a CIF, POSCAR, extxyz, ... file, checked for use as a host
    (`ordered=False`: only its cell is checked, partial occupancies are kept, for `chggen order`).

    The extension picks the reader (pymatgen's for CIF, POSCAR/.vasp, JSON ...; ASE's for extxyz and
    everything else ASE reads); only a file without a known extension goes by its name (POSCAR,
    CONTCAR) or content, so `POSCAR_relaxed.extxyz` is read as extxyz.
    """
    path = Path(path)
    if not path.is_file():
        raise ChggenError(f"{path}: no such file")
    try:
        structure = _read(path)
    except ChggenError:
        raise
    except Exception as error:  # pymatgen and ASE raise many kinds; all mean "cannot read this file"
        raise ChggenError(f"{path}: cannot read a crystal structure ({first_line(error)})") from None
    if ordered:
        check_structure(structure, str(path))
    else:
        check_lattice(structure.lattice, str(path))
    return structure


def _read(path: Path) -> Structure:
    """The structure as the file's extension says to read it; without a known one, by name or content."""
    suffixes = [suffix.lstrip(".").lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] in _COMPRESSION:
        suffixes.pop()
    extension = suffixes[-1] if suffixes else ""
    if extension == "cif":
        return _read_cif(path)
    if extension in _PYMATGEN_FORMATS:
        with zopen(path, mode="rt", encoding="utf-8") as handle, warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_str(handle.read(), fmt=_PYMATGEN_FORMATS[extension])
    if extension in extension2format:
        fmt = extension2format[extension].name
    elif extension in ioformats:  # extensions that are ASE format names: extxyz, traj, ...
        fmt = extension
    else:
        try:
            fmt = filetype(str(path))  # by name (POSCAR, CONTCAR, OUTCAR) or content
        except UnknownFileTypeError:
            raise ChggenError(f"{path}: unknown structure format; name it .cif, .vasp, .extxyz or "
                              "another extension pymatgen or ASE reads") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        atoms = ase.io.read(path, index=0, format=fmt)
    return from_atoms(atoms, f"{path} (read by ASE as {fmt})")


def _read_cif(path: Path) -> Structure:
    """The first structure of a CIF; pymatgen's own reason when there is none (a singular cell,
    overlapping atoms summing to an occupancy above 1), and a warning when there are several."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser(path)
        try:
            structures = parser.parse_structures(primitive=False)
        except ValueError as error:
            reasons = "; ".join(" ".join(warning.split()) for warning in parser.warnings)
            raise ChggenError(f"{path}: cannot read a crystal structure ({reasons or error})") from None
    if len(structures) > 1:
        warnings.warn(f"{path}: {len(structures)} data blocks hold a structure; using the first "
                      f"({structures[0].composition.reduced_formula}, {len(structures[0])} sites)",
                      ChggenWarning, stacklevel=4)
    return structures[0]


def closest_pair(structure: Structure, cutoff: float) -> tuple[float, int, int] | None:
    """The closest pair (distance, i, j) under `cutoff`, periodic images included; None if none."""
    centers, neighbors, _, distances = structure.get_neighbor_list(cutoff)
    if len(distances) == 0:
        return None
    k = int(np.argmin(distances))
    return float(distances[k]), int(centers[k]), int(neighbors[k])


def close_pairs(structure: Structure, cutoff: float = MIN_DISTANCE) -> int:
    """How many pairs of atoms (each pair once, periodic images included) are closer than `cutoff`.

    Why: the sampler places any atoms anywhere; a count above 0 says a generated structure is not
    physical as it stands (campaigns set it aside; `chggen inpaint` flags it in its output).
    """
    return len(structure.get_neighbor_list(cutoff)[0]) // 2


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
    """A host must be ordered, sit in a proper cell and have no two atoms on top of each other; an
    atom without neighbours is worth a warning (a score network sees it alone)."""
    check_lattice(structure.lattice, where)
    if not structure.is_ordered:
        partial = next(site for site in structure if not site.is_ordered)
        raise ChggenError(
            f"{where}: partial occupancy at site {partial.species_string} "
            f"({np.round(partial.frac_coords, 4).tolist()}); order it first, e.g. with pymatgen's "
            "OrderDisorderedStructureTransformation or by editing the CIF occupancies to 1")
    if len(structure) == 0:  # an empty host: unconditional generation
        return
    pair = closest_pair(structure, MIN_HOST_DISTANCE)
    if pair is not None:
        distance, i, j = pair[0], *sorted(pair[1:])
        raise ChggenError(f"{where}: sites {i} ({structure[i].species_string}) and {j} "
                          f"({structure[j].species_string}) are {distance:.2f} A apart (closer than "
                          f"{MIN_HOST_DISTANCE} A: a duplicated or misplaced atom); remove or move one")
    centres = set(structure.get_neighbor_list(ISOLATION)[0].tolist())
    alone = [i for i in range(len(structure)) if i not in centres]
    if alone:
        more = f" and {len(alone) - 1} more" if len(alone) > 1 else ""
        warnings.warn(f"{where}: site {alone[0]} ({structure[alone[0]].species_string}){more} has no "
                      f"other atom within {ISOLATION} A, images included (cell lengths "
                      f"{np.round(structure.lattice.abc, 2).tolist()} A): a score network sees it alone, "
                      "so it does not guide the guests", ChggenWarning, stacklevel=3)


def to_structure(host: StructureLike, where: str = "host") -> tuple[Structure, bool]:
    """(pymatgen Structure, whether the caller gave ASE Atoms) for any accepted host form."""
    if isinstance(host, (str, Path)):
        return read_structure(Path(host)), False
    if isinstance(host, Atoms):
        structure = from_atoms(host, where)
        check_structure(structure, where)
        return structure, True
    if isinstance(host, Structure):
        check_structure(host, where)
        return host, False
    raise ChggenError(f"{where}: expected a pymatgen Structure, ASE Atoms or a file path, "
                      f"got {type(host).__name__}")


def from_atoms(atoms: Atoms, where: str) -> Structure:
    """A periodic ASE Atoms as a pymatgen Structure (ASE's `info` kept as its properties); a molecule
    or a slab is refused in one line, since every structure here is a 3D crystal."""
    if not atoms.pbc.all() or atoms.cell.rank < 3:
        raise ChggenError(f"{where}: not a periodic 3D crystal (pbc={atoms.pbc.tolist()}, cell rank "
                          f"{atoms.cell.rank}); a crystal needs a full cell")
    return AseAtomsAdaptor.get_structure(atoms)


def atomic_radius(element: Element) -> float:
    """Tabulated atomic radius (A), else pymatgen's calculated one, else 1.5 A. pymatgen warns on
    every missing value (Cf has neither, and AFLOW prototypes use it), which would reach a user as a
    stray library line, so that warning is silenced here."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return float(element.atomic_radius or element.atomic_radius_calculated or 1.5)


def to_atoms(structure: Structure) -> Atoms:
    return AseAtomsAdaptor.get_atoms(structure)
