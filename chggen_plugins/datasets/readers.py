"""Datasets users already have, as pymatgen Structures with energies where the file has them.

One entry point, `read_dataset(path)`, chosen by what the path is:
- `*.csv`: the CDVAE / MP-20 layout, one CIF text per row in a `cif` column. A total `energy` (eV)
  or an `energy_per_atom` column becomes the energy; other columns are kept in `info` as text.
- `*.extxyz`, `*.xyz` (also `.gz`, `.bz2`, `.xz`): energies from the frame (ASE reads `energy=`).
- `*.db`: an ase.db; the row's energy and key-value pairs.
- `*.cif`: one structure; a folder: every `*.cif` and `*.extxyz[.gz]` in it, sorted by name (a
  compressed file is skipped when its plain copy sits beside it: the dataset builder keeps both).
"""

from __future__ import annotations

import csv
import io
import math
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import ase.db
import ase.io
from ase import Atoms
from pymatgen.core import Structure

from chggen_plugins.errors import ChggenError, first_line
from chggen_plugins.structures.io import from_atoms

_XYZ = (".extxyz", ".xyz")
_COMPRESSED = ("", ".gz", ".bz2", ".xz")


@dataclass
class Record:
    """One structure read from a dataset; `energy` is the total energy in eV, or None."""

    structure: Structure
    energy: float | None
    source: str
    info: dict[str, object] = field(default_factory=dict)


def _atoms_energy(atoms: Atoms) -> float | None:
    if atoms.calc is not None and "energy" in atoms.calc.results:
        return float(atoms.calc.results["energy"])
    value = atoms.info.get("energy")
    return float(value) if value is not None else None


def _from_cif_text(text: str, where: str) -> Structure:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Structure.from_str(text, fmt="cif")
    except Exception as error:  # pymatgen's CIF parser raises many kinds; all mean "bad CIF"
        raise ChggenError(f"{where}: cannot parse the CIF ({first_line(error)})") from None


def _float_or_none(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


def _read_csv(path: Path) -> list[Record]:
    csv.field_size_limit(sys.maxsize)  # CIF texts exceed the default 128 kB cell limit in big cells
    with open(path, newline="") as handle:
        rows = csv.DictReader(handle)
        if rows.fieldnames is None or "cif" not in rows.fieldnames:
            raise ChggenError(f"{path}: no 'cif' column (columns: {', '.join(rows.fieldnames or [])})")
        records = []
        for number, row in enumerate(rows):
            where = f"{path} row {number + 1}"
            if row.get("material_id"):
                where += f" ({row['material_id']})"
            structure = _from_cif_text(row["cif"] or "", where)
            energy = _float_or_none(row.get("energy"))
            per_atom = _float_or_none(row.get("energy_per_atom"))
            if energy is None and per_atom is not None:
                energy = per_atom * len(structure)
            info = {k: v for k, v in row.items() if k and k != "cif"}
            records.append(Record(structure, energy, f"{path}#{number}", info))
    return records


def _read_xyz(path: Path) -> list[Record]:
    try:
        frames = ase.io.read(path, index=":", format="extxyz")
    except Exception as error:  # ASE raises many kinds on a malformed frame
        raise ChggenError(f"{path}: cannot read extxyz ({first_line(error)})") from None
    return [Record(from_atoms(a, f"{path} frame {i}"), _atoms_energy(a), f"{path}#{i}", dict(a.info))
            for i, a in enumerate(frames)]


def _read_db(path: Path) -> list[Record]:
    try:
        rows = list(ase.db.connect(path, type="db").select())
    except Exception as error:  # sqlite and ASE raise several kinds for a file that is no ase.db
        raise ChggenError(f"{path}: cannot read as an ase.db ({first_line(error)})") from None
    return [Record(from_atoms(row.toatoms(), f"{path} row id {row.id}"), row.get("energy"),
                   f"{path}#{row.id}", dict(row.key_value_pairs)) for row in rows]


def _is_xyz(path: Path) -> bool:
    return any(path.name.endswith(x + c) for x in _XYZ for c in _COMPRESSED)


def read_dataset(path: str | Path) -> list[Record]:
    """All structures in a CSV (cif column), extxyz, ase.db, CIF file or folder of CIF/extxyz files."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if (p.suffix == ".cif" or _is_xyz(p))
                       and not (p.suffix in (".gz", ".bz2", ".xz") and p.with_suffix("").is_file()))
        if not files:
            raise ChggenError(f"{path}: folder has no *.cif or *.extxyz files")
        return [record for p in files for record in read_dataset(p)]
    if not path.is_file():
        raise ChggenError(f"{path}: no such file or folder")
    if path.suffix == ".csv":
        return _read_csv(path)
    if path.suffix == ".db":
        return _read_db(path)
    if path.suffix == ".cif":
        return [Record(_from_cif_text(path.read_text(), str(path)), None, str(path))]
    if _is_xyz(path):
        return _read_xyz(path)
    raise ChggenError(f"{path}: unknown dataset format (expected .csv, .extxyz, .xyz, .db, .cif or a folder)")


def read_complete_frames(path: Path, offset: int) -> tuple[list[Atoms], int]:
    """extxyz frames that are complete from byte `offset` on, and the offset after the last one.

    A writer appends whole frames, so only the file's tail can be partial (a crash, or a sibling
    process mid-write); it is left for the next call.
    """
    with open(path, "rb") as handle:
        handle.seek(offset)
        data = handle.read()
    lines = data.split(b"\n")  # the last item has no newline: incomplete (or empty)
    end = 0
    while end < len(lines) - 1:
        try:
            count = int(lines[end])
        except ValueError:
            at = offset + sum(len(line) + 1 for line in lines[:end])
            raise ChggenError(f"{path}: byte {at}: expected an atom count, found {lines[end][:40]!r}") from None
        if end + count + 2 > len(lines) - 1:
            break
        end += count + 2
    text = b"".join(line + b"\n" for line in lines[:end])
    frames = ase.io.read(io.StringIO(text.decode()), index=":", format="extxyz") if end else []
    return frames, offset + len(text)
