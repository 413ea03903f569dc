"""One vocabulary and one schema: declared columns with units, atomic writes, one list of methods."""

from __future__ import annotations

from pathlib import Path

import pytest

from chggen_plugins.errors import ChggenError
from chggen_plugins.files import replacing
from chggen_plugins.runs import methods, schema
from chggen_plugins.runs.report import format_table

DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "outputs.md"


def test_headers_carry_units_and_read_back_by_bare_name(tmp_path: Path) -> None:
    rows = [{"composition": "LiSi2", "lowest_e_per_atom": -4.2, "rate_spglib": 0.5, "rate_moyopy_low": 0.1}]
    path = schema.write_table(rows, tmp_path / "summary.csv", schema.SUMMARY)
    header = path.read_text().splitlines()[0]
    assert header == "composition,lowest_e_per_atom [eV/atom],rate_spglib,rate_moyopy_low"
    assert schema.read_table(path) == [{"composition": "LiSi2", "lowest_e_per_atom": "-4.2",
                                        "rate_spglib": "0.5", "rate_moyopy_low": "0.1"}]


def test_an_undeclared_column_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    path = tmp_path / "voltage.csv"
    path.write_text("old\n")
    with pytest.raises(ChggenError, match="voltage.csv: column 'volts' is not declared"):
        schema.write_table([{"voltage": 3.9, "volts": 3.9}], path, schema.VOLTAGE)
    assert path.read_text() == "old\n"


def test_a_write_that_fails_midway_leaves_the_old_file_whole(tmp_path: Path) -> None:
    class Unprintable:
        def __str__(self) -> str:
            raise OSError(28, "No space left on device")  # as a full disk would, mid-write

    path = tmp_path / "methods.csv"
    schema.write_table([{"method": "inpainting", "candidates": 4}], path, schema.METHODS)
    before = path.read_text()
    with pytest.raises(OSError, match="No space left"):
        schema.write_table([{"method": "inpainting", "candidates": Unprintable()}], path, schema.METHODS)
    assert path.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["methods.csv"]  # no temporary left behind


def test_replacing_renames_only_a_finished_file(tmp_path: Path) -> None:
    path = tmp_path / "out.extxyz"
    with replacing(path) as temporary:
        assert temporary.parent == tmp_path and temporary.suffix == ".extxyz" and not path.exists()
        temporary.write_text("frame\n")
    assert path.read_text() == "frame\n"
    with pytest.raises(KeyboardInterrupt):
        with replacing(path) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert path.read_text() == "frame\n" and len(list(tmp_path.iterdir())) == 1


def test_every_declared_column_has_a_kind_and_a_meaning_and_names_are_unique() -> None:
    for table in schema.TABLES:
        names = [c.name for c in table.columns]
        assert len(names) == len(set(names)), table.name
        for column in table.columns:
            assert column.kind in {"int", "float", "str", "bool"} and column.meaning, (table.name, column.name)


def test_the_printed_summary_explains_its_abbreviations() -> None:
    row = {"composition": "LiSi2", "method": "inpainting", "n_atoms": 6, "generated": 4, "converged": 3,
           "errors": 1, "symmetric_spglib": 2, "rate_spglib": 0.5, "rate_spglib_low": 0.15,
           "rate_spglib_high": 0.85, "distinct": 2, "median_steps": 40, "lowest_e_per_atom": -4.2, "lowest_ed": 0.01,
           "below_threshold": 1, "symprec": 0.1, "angle_tolerance": 5.0, "threshold": 0.1, "hull": None,
           "backend": "analytic", "weights": "trained"}
    text = format_table([row], ["spglib"])
    for abbreviation in ("conv = structures relaxed to fmax", "err = ", "Ed<thr = ", "min E/at = ", "[eV/atom]",
                         "dist = relaxed structures pymatgen's StructureMatcher",
                         "m-o-l = XtalPaint's success rule"):
        assert abbreviation in text


def test_method_names_are_one_list_and_old_names_say_their_new_name() -> None:
    assert set(methods.CAMPAIGN) | set(methods.SWEEP) | set(methods.ORDERING) <= set(methods.GENERATED)
    assert set(methods.MEANINGS) == set(methods.GENERATED) | {methods.HOST, methods.REFERENCE}
    with pytest.raises(ChggenError, match="--methods: method 'free' is now called 'inpainting'"):
        methods.check_methods(["free"], methods.ORDERING, "--methods")
    with pytest.raises(ChggenError, match="unknown method 'pyxtal'; choose from inpainting, inpainting-sites"):
        methods.check_methods(["pyxtal"], methods.ORDERING, "--methods")
    assert methods.check_methods(["random", "random", "inpainting"], methods.ORDERING, "x") == ["random", "inpainting"]


def test_the_docs_output_reference_is_the_schema() -> None:
    """docs/reference/outputs.md is generated: `python -m chggen_plugins.runs.schema > docs/reference/outputs.md`."""
    assert DOCS_PAGE.read_text() == schema.markdown()
