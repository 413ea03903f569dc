"""`chggen benchmark symmetry`: one table across backends, skipped backends named, resumable."""

from pathlib import Path

import pytest
from monty.serialization import dumpfn
from test_workflow import ENTRIES, REFERENCE

from chggen_plugins.applications.symmetry_benchmark import Case, parse_cases
from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError
from chggen_plugins.runs.schema import read_table
from chggen_plugins.runs.store import ResultStore


def test_compositions_parse_with_the_paper_guests():
    assert parse_cases("Li5Si2:14, ZnP2S6:9,Li2Si:12:Si") == [
        Case("Li5Si2", 2, ("Li",)), Case("ZnP2S6", 1, ("Zn",)), Case("Li2Si", 4, ("Si",))]
    for text, message in (("Li5Si2:13", "multiple of 7"), ("Li5Si2", "FORMULA:ATOMS"), ("Si:8", "one element"),
                          ("Xq2Si:3", "not a formula of known elements"), ("Li2Si:6:Na", "guest 'Na' is not"), ("", "at least one")):
        with pytest.raises(ChggenError, match=message):
            parse_cases(text)


def test_one_table_for_every_backend_with_the_skipped_ones_named(tmp_path, capsys):
    dumpfn(ENTRIES, tmp_path / "entries.json")
    out = tmp_path / "bench"
    args = ["benchmark", "symmetry", "--models", "analytic,mattergen",
            "--model-source", f"analytic={REFERENCE}", "--compositions", "LiSi2:3", "--samples", "2",
            "--hosts", "1", "--max-steps", "300", "--entries", str(tmp_path / "entries.json"), "--out", str(out), "-q"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "skipped mattergen: needs a checkpoint: --model-source mattergen=PATH" in printed
    rows = read_table(out / "symmetry_benchmark.csv")
    ran = [r for r in rows if not r["skipped"]]
    assert {r["backend"] for r in ran} == {"analytic"} and {r["weights"] for r in ran} == {"trained"}
    assert {r["method"] for r in ran} == {"unconditional", "inpainting"}
    store = ResultStore(out / "analytic" / "results.db")
    for row in ran:  # the table's counts are the store's: every generated structure in the denominator
        stored = [r for r in store.results(method=row["method"]) if r.get("n_atoms") == int(row["n_atoms"])]
        assert int(row["generated"]) == len(stored)
        assert float(row["rate_spglib"]) == pytest.approx(int(row["symmetric_spglib"]) / len(stored), abs=1e-4)
    assert sum(int(r["generated"]) for r in ran if r["method"] == "unconditional") == 2  # --samples
    assert {r["backend"]: r["skipped"] for r in rows if r["skipped"]}.keys() == {"mattergen"}
    assert (out / "symmetry_benchmark.png").stat().st_size > 1000
    assert Path(out / "analytic" / "campaign.toml").is_file()

    # A rerun resumes every backend's campaign: nothing new is generated.
    before = len(store)
    assert main(args) == 0
    assert len(ResultStore(out / "analytic" / "results.db")) == before
    assert main([*args[:-3], "--out", str(out), "--model-source", "other=x", "-q"]) == 2
    assert "--model-source names 'other', which is not in --models" in capsys.readouterr().err
    (tmp_path / "a_file").write_text("x")
    assert main([*args[:-3], "--out", str(tmp_path / "a_file"), "-q"]) == 2
    assert "a_file is a file; give a folder" in capsys.readouterr().err


def test_a_misspelt_model_or_none_that_can_run_is_an_error(tmp_path, capsys):
    """A typo in --models used to be listed as skipped after the other campaigns ran, with exit 0."""
    out = tmp_path / "bench"
    assert main(["benchmark", "symmetry", "--models", "analytic,nosuch", "--out", str(out), "-q"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("chggen: error: --models: unknown model 'nosuch'; installed models: ") and "\n" not in error
    assert not out.exists()  # refused before anything was made
    assert main(["benchmark", "symmetry", "--models", "mattergen", "--out", str(out), "-q"]) == 2
    assert "no model could run: mattergen: needs a checkpoint: --model-source mattergen=PATH" in capsys.readouterr().err
