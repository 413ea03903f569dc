"""Ed against hand-made, file-given, MP-cached and CHGNet-built hulls."""

import json
import sys

import pytest
from monty.serialization import dumpfn
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition, Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry

from chggen_plugins.errors import ChggenError
from chggen_plugins.evaluation.relax import Relaxer
from chggen_plugins.evaluation.stability import (
    SOURCE_FILE,
    SOURCE_MP,
    SOURCE_REFERENCE,
    Hull,
    build_hull,
    load_entries,
    passes_screen,
)
from chggen_plugins.evaluation import stability


def li_si_entries() -> list[ComputedEntry]:
    """Li -2, Si -5, LiSi -4 eV/atom (stable, 0.5 below the Li-Si tie line), Li2Si -3.1 (above hull)."""
    silicon = Structure(Lattice.cubic(5.43), ["Si", "Si"], [[0, 0, 0], [0.25, 0.25, 0.25]])
    return [ComputedEntry("Li", -2.0, entry_id="li"),
            ComputedStructureEntry(silicon, -10.0, entry_id="si"),
            ComputedEntry("LiSi", -8.0, entry_id="lisi"),
            ComputedEntry("Li2Si", -9.3, entry_id="li2si")]


def file_hull(tmp_path) -> Hull:
    path = tmp_path / "entries.json"
    dumpfn(li_si_entries(), path)
    return build_hull(["Li", "Si"], entries_file=path, cache_dir=tmp_path / "cache", api_key="")


def test_ed_by_hand_and_against_pymatgen(tmp_path):
    hull = file_hull(tmp_path)
    # Li3Si (x_Si = 1/4) lies halfway between Li (-2) and LiSi (-4) on the hull: -3 eV/atom.
    assert hull.decomposition_energy("Li3Si", -2.8) == pytest.approx(0.2, abs=1e-9)
    assert hull.decomposition_energy(Composition("Li6Si2"), -2.8) == pytest.approx(0.2, abs=1e-9)
    # Below the hull is negative: a new ground state against this reference.
    assert hull.decomposition_energy("Li3Si", -3.1) == pytest.approx(-0.1, abs=1e-9)
    # Li2Si (x_Si = 1/3): hull -2 + (1/3)/(1/2) * (-2) = -10/3; the entry sits at -3.1.
    assert hull.decomposition_energy("Li2Si", -3.1) == pytest.approx(-3.1 + 10 / 3, abs=1e-9)
    # Si-rich side: hull between LiSi (-4, x=1/2) and Si (-5, x=1): at x=3/4 it is -4.5.
    assert hull.decomposition_energy("LiSi3", -4.4) == pytest.approx(0.1, abs=1e-9)
    direct = PhaseDiagram([PDEntry(e.composition, e.energy) for e in li_si_entries()])
    assert direct.get_e_above_hull(PDEntry("LiSi3", 4 * -4.4)) == pytest.approx(0.1, abs=1e-9)


def test_entries_file_hull_is_labelled_and_not_approximate(tmp_path):
    hull = file_hull(tmp_path)
    assert hull.source == SOURCE_FILE and not hull.approximate
    assert "entries file" in hull.label and "Li-Si" in hull.label and "APPROXIMATE" not in hull.label
    assert {e.entry_id for e in hull.diagram.stable_entries} == {"li", "si", "lisi"}


def test_entries_outside_the_system_are_ignored_and_missing_elements_named(tmp_path):
    path = tmp_path / "entries.json"
    dumpfn(li_si_entries() + [ComputedEntry("O", -4.9), ComputedEntry("Li2O", -14.0)], path)
    hull = build_hull(["Si", "Li"], entries_file=path, api_key="")
    assert {e.symbol for e in hull.diagram.elements} == {"Li", "Si"}
    with pytest.raises(ChggenError, match="no entry for element.*P"):
        build_hull(["Li", "P", "Si"], entries_file=path, api_key="")
    with pytest.raises(ChggenError, match=r"element\(s\) O are not in the hull"):
        hull.decomposition_energy("Li2O", -4.0)


def test_bad_entries_files_are_one_line(tmp_path):
    with pytest.raises(ChggenError, match="no such entries file"):
        load_entries(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    with pytest.raises(ChggenError, match="cannot read entries"):
        load_entries(broken)
    numbers = tmp_path / "numbers.json"
    numbers.write_text(json.dumps([1, 2]))
    with pytest.raises(ChggenError, match="item 0 is int, not a ComputedEntry"):
        load_entries(numbers)


def test_mp_key_uses_the_cache_and_needs_mp_api_otherwise(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    dumpfn(li_si_entries(), cache / "mp-Li-Si-GGA_GGA+U.json")
    monkeypatch.setitem(sys.modules, "mp_api", None)  # importing mp_api now fails, installed or not
    monkeypatch.setitem(sys.modules, "mp_api.client", None)
    monkeypatch.setenv("MP_API_KEY", "x" * 32)
    hull = build_hull(["Li", "Si"], cache_dir=cache)
    assert hull.source == SOURCE_MP and not hull.approximate and "Materials Project GGA/GGA+U" in hull.label
    assert hull.decomposition_energy("Li3Si", -2.8) == pytest.approx(0.2, abs=1e-9)
    with pytest.raises(ChggenError, match="mp-api is not installed"):
        build_hull(["Li", "Zn"], cache_dir=cache)


def test_screen_threshold():
    assert passes_screen(0.05) and not passes_screen(0.1) and not passes_screen(None)
    assert not passes_screen(0.05, stability.DFT_THRESHOLD) and passes_screen(-0.2, stability.DFT_THRESHOLD)


def test_chgnet_reference_hull_is_approximate_and_cached(tmp_path, monkeypatch):
    relaxer = Relaxer(max_steps=60)
    hull = build_hull(["Li", "Si"], cache_dir=tmp_path, relaxer=relaxer, reference_max_atoms=2,
                      reference_per_formula=1, api_key="")
    assert hull.source == SOURCE_REFERENCE and hull.approximate and hull.label.startswith("APPROXIMATE")
    elements = {e.composition.reduced_formula: e for e in hull.diagram.all_entries if e.composition.is_element}
    assert -2.1 < elements["Li"].energy_per_atom < -1.7  # CHGNet 0.3.0: Li about -1.9, Si about -5.3
    assert -5.5 < elements["Si"].energy_per_atom < -5.0
    stable = hull.diagram.stable_entries
    assert all(hull.decomposition_energy(e.composition, e.energy_per_atom) == pytest.approx(0, abs=1e-9)
               for e in stable)
    monkeypatch.setattr(stability, "reference_entries", lambda *a, **k: pytest.fail("cache not used"))
    again = build_hull(["Li", "Si"], cache_dir=tmp_path, relaxer=relaxer, reference_max_atoms=2,
                       reference_per_formula=1, api_key="")
    assert again.label == hull.label
