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

Two campaigns on one output would each skip only the uids *they* saw and store every structure
twice, so the campaign writes inside `ResultStore.writing()`: an OS file lock beside the database
(`results.db.writer.lock`; ASE's own `results.db.lock` is a different, per-write lock) that refuses a
second process with one line and that the kernel drops when its holder dies (a killed campaign never
blocks its resume). The lock file itself stays behind: it is a lock only while a process holds it,
and deleting it while another process waits would let two writers in.

A store is created whole or not at all (made under a temporary name, then linked into place), so
a full disk or a kill during creation leaves no half-made database for the rerun to trip on; a
full disk while rows are written ends in one line, with every row stored before it kept. Rows stored twice by older versions are read once (`results`), so tables count
each structure once.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.db
import ase.db.row
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from filelock import FileLock, Timeout
from pymatgen.core import Structure
from pymatgen.io.ase import AseAtomsAdaptor

from chggen_plugins.errors import ChggenError

Scalar = str | int | float | bool

# Fingerprint keys added after stores were first made. A store that lacks one was made before it
# existed, with the settings its absence meant (every other key says so: a campaign's "relax"
# names a relaxer and stages only when they are not CHGNet in one stage); it resumes, and the key is
# recorded then and checked on every later resume. "relaxer": the relaxer's name and version.
ADDED_KEYS = ("relaxer",)


@dataclass(frozen=True)
class StoredResult:
    """One row read back: relaxed and generated structures (None when absent) and every field."""

    uid: str
    structure: Structure | None
    generated: Structure | None
    fields: dict[str, Scalar]

    def get(self, key: str, default: Any = None) -> Any:
        return self.fields.get(key, default)


def _link_new(source: Path, target: Path) -> None:
    """Give `source` the name `target` only if `target` does not exist (FileExistsError if it does).

    A hard link does it atomically; on a file system without hard links (FAT, some SMB mounts) a
    rename of a target that is still absent has to do, which is atomic too but may replace a store
    another process made in the same instant (its creator then finds its claim refused or repeated).
    """
    try:
        os.link(source, target)
    except FileExistsError:
        raise
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
            raise
        if target.exists():
            raise FileExistsError(target) from None
        os.replace(source, target)


class ResultStore:
    """An ase.db of campaign results with resume by uid."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if not self.path.exists():
            self._create()
        try:
            self._db = ase.db.connect(self.path, type="db")
            self._uids = self._stored_uids()
        except Exception as error:  # sqlite / ASE raise several kinds for a file that is no ase.db
            raise ChggenError(f"{self.path}: cannot open as an ase.db results store ({error})") from None
        self._lock = FileLock(f"{self.path}.writer.lock", timeout=0, thread_local=False)

    def _create(self) -> None:
        """Make an empty store at `path` in one step: tables written under a temporary name, then
        hard-linked to `path` (which fails if another process made it first: theirs is used)."""
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp.db", dir=self.path.parent)
        os.close(handle)
        temporary = Path(name)
        temporary.unlink()  # ase.db makes its tables only in a file it creates itself
        try:
            ase.db.connect(temporary, type="db").metadata = {}
            _link_new(temporary, self.path)
        except FileExistsError:
            pass
        except (OSError, sqlite3.Error) as error:
            raise ChggenError(f"{self.path}: cannot create the results store ({error}); nothing was stored, "
                              "so free space (or choose another output) and rerun") from None
        finally:
            temporary.unlink(missing_ok=True)

    def _stored_uids(self) -> set[str]:
        return {row.uid for row in self._db.select(columns=["key_value_pairs"])}

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold the single-writer lock (reentrant) while adding rows; another process holding it is
        refused with one line. On first entry the uids are reread: what another writer stored before
        is skipped, not repeated."""
        first = not self._lock.is_locked
        try:
            self._lock.acquire()
        except Timeout:
            raise ChggenError(f"{self.path} is being written by another chggen process (it holds "
                              f"{self._lock.lock_file}); wait for it to finish, or choose another "
                              "output") from None
        try:
            if first:
                self._uids = self._stored_uids()
            yield
        finally:
            self._lock.release()

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
        try:
            self._db.metadata = dict(value)
        except (OSError, sqlite3.Error) as error:
            raise ChggenError(f"{self.path}: cannot record the run's settings ({error}); free space (or choose "
                              "another output) and rerun") from None

    def claim(self, fingerprint: Mapping[str, str], what: str, hint: str, **facts: str) -> None:
        """Tie the store to the run that fills it: a new store records `what` (the kind of run, e.g.
        "a campaign"), `fingerprint` and `facts` in its metadata; a store of another kind of run, or
        made with other settings, is refused in one line (naming the kind, or the changed keys), so
        a resume never mixes rows of two different runs."""
        stored = self.metadata.get("fingerprint")
        if stored is None and len(self) == 0:
            self.metadata = {"fingerprint": dict(fingerprint), "kind": what, **facts}
            return
        kind = self.metadata.get("kind")
        if kind is not None and kind != what:
            raise ChggenError(f"{self.path} holds {kind}, not {what}; choose another output")
        stored = stored or {}
        added = [k for k in ADDED_KEYS if k in fingerprint and k not in stored]
        changed = sorted(k for k in set(fingerprint) | set(stored)
                         if k not in added and stored.get(k) != fingerprint.get(k))
        if changed:
            raise ChggenError(f"{self.path} holds {what} made with different settings "
                              f"({', '.join(changed)} changed); {hint}")
        if added:  # recorded now, checked on every later resume
            self.metadata = {**self.metadata, "fingerprint": {**stored, **{k: fingerprint[k] for k in added}}}

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
        try:
            self._db.write(atoms, key_value_pairs={"uid": uid, **pairs}, data=data)
        except (OSError, sqlite3.Error) as error:  # a full disk, a read-only or vanished folder
            raise ChggenError(f"{self.path}: cannot store {uid} ({error}); the {len(self)} structures stored "
                              "before are kept: free space and rerun the same command to resume") from None
        self._uids.add(uid)
        return StoredResult(uid, structure, generated, {"uid": uid, **pairs})

    def results(self, **selection: Scalar) -> Iterator[StoredResult]:
        """Rows in insertion order, filtered by equality on fields (e.g. stage="inpainting"); a uid
        stored twice (two writers before the lock) is its first row only, so nothing counts twice."""
        seen: set[str] = set()
        for row in self._db.select(**selection, sort="id"):
            if row.uid not in seen:
                seen.add(row.uid)
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
