"""The ase.db results store: round trip, resume by uid, refusal to repeat."""

import ase.db
import pytest
from pymatgen.core import Lattice, Structure

from chggen_plugins.errors import ChggenError
from chggen_plugins.store import ResultStore


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
