"""The ase.db results store: round trip, resume by uid, refusal to repeat, one writer at a time."""

import subprocess
import sys
from contextlib import contextmanager

import ase.db
import pytest
from pymatgen.core import Lattice, Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.runs.config import SymmetryConfig
from chggen_plugins.runs.report import summary_rows
from chggen_plugins.runs.store import ResultStore, StoredResult

HOLD_LOCK = """
import sys
from chggen_plugins.runs.store import ResultStore

store = ResultStore(sys.argv[1])
with store.writing():
    store.add("written-by-the-other-process", {"status": "skipped"})
    print("holding", flush=True)
    sys.stdin.read()  # holds the lock until killed
"""


@contextmanager
def another_writer(path):
    """A real second process that has written one row into the store at `path` and holds its lock."""
    process = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path)], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "holding", "the other writer did not start"
        yield process
    finally:
        process.kill()
        process.wait()


def silicon(a: float) -> Structure:
    return Structure(Lattice.cubic(a), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])


def test_round_trip_and_reopen(tmp_path):
    path = tmp_path / "results.db"
    store = ResultStore(path)
    store.add("Si/x1/unconditional/seed0/cubic-1/0", {"status": "relaxed", "ed": 0.02, "steps": 12,
                                                     "converged": True, "error": None},
              structure=silicon(5.43), generated=silicon(5.7), energy=-10.6)
    store.add("Si/x1/unconditional/seed0/cubic-1/1", {"status": "error", "error": "relaxation failed: X"},
              generated=silicon(5.6))
    store.metadata = {"fingerprint": {"seed": "abc"}}

    again = ResultStore(path)
    assert len(again) == 2 and "Si/x1/unconditional/seed0/cubic-1/0" in again
    assert again.metadata["fingerprint"] == {"seed": "abc"}
    ok, failed = list(again.results())
    assert ok.structure.lattice.a == pytest.approx(5.43) and ok.generated.lattice.a == pytest.approx(5.7)
    assert ok.fields["converged"] is True and ok.get("ed") == pytest.approx(0.02) and "error" not in ok.fields
    assert failed.structure is None and failed.generated.lattice.a == pytest.approx(5.6)
    assert [r.uid for r in again.results(status="error")] == [failed.uid]
    # Plain ASE sees the relaxed structure and its total energy.
    row = ase.db.connect(path).get(uid=ok.uid)
    assert row.energy == pytest.approx(-10.6) and row.natoms == 2


def test_a_uid_is_stored_once(tmp_path):
    store = ResultStore(tmp_path / "results.db")
    store.add("a", {"status": "skipped"})
    with pytest.raises(ChggenError, match="a is already stored"):
        ResultStore(tmp_path / "results.db").add("a", {"status": "skipped"})


def test_not_a_database_is_one_line(tmp_path):
    path = tmp_path / "results.db"
    path.write_text("not sqlite")
    with pytest.raises(ChggenError, match="cannot open as an ase.db"):
        ResultStore(path)


def test_a_second_writer_is_refused_and_a_killed_writers_lock_does_not_block(tmp_path):
    path = tmp_path / "results.db"
    store = ResultStore(path)  # opened before the other process wrote its row
    with another_writer(path) as other:
        with pytest.raises(ChggenError, match="is being written by another chggen process") as error:
            with store.writing():
                pass
        assert "\n" not in str(error.value) and "results.db.writer.lock" in str(error.value)
        other.kill()  # SIGKILL: nothing of its own releases the lock, the lock file stays
        other.wait()
    assert (tmp_path / "results.db.writer.lock").exists()
    with store.writing():
        assert "written-by-the-other-process" in store  # reread on taking the lock: not stored twice
        with pytest.raises(ChggenError, match="already stored"):
            store.add("written-by-the-other-process", {"status": "skipped"})
        with store.writing():  # reentrant
            store.add("mine", {"status": "skipped"})
    assert len(ResultStore(path)) == 2


def test_a_structure_stored_twice_counts_once(tmp_path):
    """Two writers without the lock (older versions) stored every uid twice: reading, and so every
    table, takes each uid once."""
    path = tmp_path / "results.db"
    first, second = ResultStore(path), ResultStore(path)  # each saw an empty store
    for store in (first, second):
        for k in range(3):
            store.add(f"Si/x1/unconditional/seed0/cubic-1/{k}",
                      {"status": "relaxed", "method": "unconditional", "composition": "Si", "n_atoms": 2,
                       "steps": 5, "e_per_atom": -5.4, "ed": 0.01, "hull": "entries file"},
                      structure=silicon(5.43 + 0.01 * k), generated=silicon(5.6))
    assert len(list(ase.db.connect(path).select())) == 6
    rows = list(ResultStore(path).results())
    assert [r.uid[-1] for r in rows] == ["0", "1", "2"]
    summary = summary_rows(rows, SymmetryConfig(0.1, 10.0, ("spglib",)), 0.1)
    assert len(summary) == 1 and summary[0]["generated"] == 3 and summary[0]["converged"] == 3


def test_the_summary_counts_distinct_relaxed_structures():
    """Three relaxed diamond Si cells 0.2% apart are one structure to StructureMatcher; a rock-salt-like
    one is another: a symmetric rate of 4/4 is 2 distinct structures, not 4."""
    fields = {"status": "relaxed", "method": "inpainting", "composition": "Si", "n_atoms": 2, "steps": 5,
              "e_per_atom": -5.4, "ed": 0.01, "hull": "entries file"}
    other = Structure(Lattice.cubic(3.0), ["Si", "Si"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    rows = [StoredResult(f"u{k}", silicon(5.43 + 0.01 * k), None, {**fields, "uid": f"u{k}"}) for k in range(3)]
    rows.append(StoredResult("u3", other, None, {**fields, "uid": "u3"}))
    summary = summary_rows(rows, SymmetryConfig(0.1, 10.0, ("spglib",)), 0.1)
    assert summary[0]["generated"] == 4 and summary[0]["distinct"] == 2
