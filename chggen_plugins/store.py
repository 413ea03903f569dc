"""Campaign results in an ase.db: one row per structure, written the moment it is finished.

Each row is keyed by a deterministic `uid` (composition / cell / seed / sample / stage, spelled by
the workflow), so a killed campaign resumes by skipping every uid already present: SQLite commits
each row atomically, hence nothing is lost (a structure is either there or redone) and nothing is
repeated. The row's atoms are the relaxed structure when there is one, otherwise the structure as
generated (or nothing, for a host that could not be made); the generated structure is kept in
`data["generated"]` and `has_relaxed` says which one the atoms are. Scalars go in the key-value pairs (ase.db forbids None: missing means None),
so `ase db results.db status=relaxed,ed<0.1` works from the shell.

SQLite allows one writer at a time and its locks are not reliable on network file systems, so a
campaign on several machines never shares one database between processes: each Dask shard writes
its own small store (resumable by uid like this one) and the coordinating process alone copies
finished shards into results.db with `merge`, which takes each uid exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.db
import ase.db.row
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from .errors import ChggenError

Scalar = str | int | float | bool


@dataclass(frozen=True)
class StoredResult:
    """One row read back: relaxed and generated structures (None when absent) and every field."""

    uid: str
    structure: Structure | None
    generated: Structure | None
    fields: dict[str, Scalar]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


class ResultStore:
    """An ase.db of campaign results with resume by uid."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = ase.db.connect(self.path, type="db")
            self._uids = {row.uid for row in self._db.select(columns=["key_value_pairs"])}
        except Exception as error:  # sqlite / ASE raise several kinds for a file that is no ase.db
            raise ChggenError(f"{self.path}: cannot open as an ase.db results store ({error})") from None

    def __contains__(self, uid: str) -> bool:
        return uid in self._uids

    def __len__(self) -> int:
        return len(self._uids)

    @property
    def metadata(self) -> dict:
        """Campaign-level facts (e.g. the config fingerprint) kept with the rows."""
        return dict(self._db.metadata)

    @metadata.setter
    def metadata(self, value: Mapping) -> None:
        self._db.metadata = dict(value)

    def add(self, uid: str, fields: Mapping[str, Scalar | None], structure: Structure | None = None,
            generated: Structure | None = None, energy: float | None = None) -> StoredResult:
        """Write one finished structure; `energy` is the total CHGNet energy (eV) of `structure`."""
        if uid in self._uids:
            raise ChggenError(f"results store {self.path}: {uid} is already stored")
        pairs = {key: value for key, value in fields.items() if value is not None}
        pairs["has_relaxed"] = structure is not None
        shown = structure if structure is not None else generated
        atoms = AseAtomsAdaptor.get_atoms(shown) if shown is not None else Atoms()
        if structure is not None and energy is not None:
            atoms.calc = SinglePointCalculator(atoms, energy=energy)
        data = {"generated": generated.as_dict()} if generated is not None else {}
        self._db.write(atoms, key_value_pairs={"uid": uid, **pairs}, data=data)
        self._uids.add(uid)
        return StoredResult(uid, structure, generated, {"uid": uid, **pairs})

    def results(self, **selection: Scalar) -> Iterator[StoredResult]:
        """Rows in insertion order, filtered by equality on fields (e.g. stage="inpainting")."""
        for row in self._db.select(**selection, sort="id"):
            yield _stored(row)

    def merge(self, path: str | Path) -> list[StoredResult]:
        """Copy every row of the store at `path` whose uid is not here yet (atoms, energy, fields and
        data as they are), first copy of a uid only; returns the rows copied. Merging the same
        shard again, or a shard that two workers both wrote, adds nothing twice."""
        other = ResultStore(path)
        copied = []
        for row in other._db.select(sort="id"):
            uid = row.key_value_pairs["uid"]
            if uid in self._uids:
                continue
            self._db.write(row.toatoms(), key_value_pairs=dict(row.key_value_pairs), data=dict(row.data))
            self._uids.add(uid)
            copied.append(_stored(row))
        return copied


def _stored(row: ase.db.row.AtomsRow) -> StoredResult:
    fields = dict(row.key_value_pairs)
    atoms = row.toatoms()
    shown = AseAtomsAdaptor.get_structure(atoms) if len(atoms) else None
    stored = row.data.get("generated")
    relaxed = shown if fields["has_relaxed"] else None
    generated = Structure.from_dict(stored) if stored is not None else None
    return StoredResult(fields["uid"], relaxed, generated, fields)
