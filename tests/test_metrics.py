"""Coordination-number statistics on crystals whose coordination is textbook, and their plot."""

import pytest
from pymatgen.core import Lattice, Structure

from chggen_plugins.evaluation.coordination import coordination_numbers, coordination_stats
from chggen_plugins.runs.figures import save_figure
from chggen_plugins.runs.report import plot_coordination


def diamond() -> Structure:
    return Structure.from_spacegroup("Fd-3m", Lattice.cubic(5.43), ["Si"], [[0, 0, 0]])


def rocksalt() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.2), ["Li", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def cesium_chloride() -> Structure:
    return Structure(Lattice.cubic(4.1), ["Cs", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])


def test_textbook_coordination_numbers():
    assert {cn for _, cn in coordination_numbers(diamond())} == {4}
    assert sorted(set(coordination_numbers(rocksalt()))) == [("F", 6), ("Li", 6)]
    assert sorted(coordination_numbers(cesium_chloride())) == [("Cl", 8), ("Cs", 8)]


def test_stats_per_group_and_species(tmp_path):
    stats = coordination_stats({"training": [diamond(), rocksalt()], "generated": [cesium_chloride()]})
    by_key = {(s.group, s.species): s for s in stats}
    assert by_key[("training", "Si")].sites == 8 and by_key[("training", "Si")].counts == {4: 8}
    assert by_key[("training", "Li")].mean == pytest.approx(6.0) and by_key[("training", "Li")].std == 0.0
    assert by_key[("generated", "Cs")].counts == {8: 1} and [s.group for s in stats][0] == "training"
    path = save_figure(plot_coordination(stats), tmp_path / "cn.png")
    assert path.stat().st_size > 1000
