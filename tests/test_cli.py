"""The `chggen` command as a newcomer uses it: help, one inpaint run, one-line errors."""

import subprocess
from pathlib import Path

import numpy as np
import pytest
from ase.io import read
from pymatgen.core import Lattice, Structure

from chggen_plugins.cli import main


def inpaint_args(files, *extra):
    return ["inpaint", str(files / "host.cif"), "--guest", "Li:2", "--model", "analytic",
            "--model-source", str(files / "full.cif"), "--samples", "3", "--seed", "4",
            "--jump-length", "5", "-q", *extra]


def test_help_is_there_for_the_installed_command():
    result = subprocess.run(["chggen", "inpaint", "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--guest", "--samples", "--model", "--out", "--seed", "--resamples"):
        assert flag in result.stdout


def test_inpaint_writes_extxyz_with_the_host_intact(files, host, capsys):
    out = files / "out.extxyz"
    assert main(inpaint_args(files, "--out", str(out))) == 0
    assert "wrote 3 structures" in capsys.readouterr().out
    frames = read(out, index=":")
    assert len(frames) == 3
    for frame in frames:
        assert frame.get_chemical_formula() == "Li2Si4"
        assert np.allclose(frame.get_scaled_positions(wrap=False)[:4], host.frac_coords, atol=1e-8)
        assert frame.info["model"] == "analytic" and frame.info["guests"] == "Li:2"
    # the same seed gives the same structures
    again = files / "again.extxyz"
    main(inpaint_args(files, "--out", str(again)))
    assert np.array_equal(read(again, index=":")[2].positions, frames[2].positions)


def test_inpaint_writes_cif(files):
    out = files / "out.cif"
    assert main(inpaint_args(files, "--out", str(out))) == 0
    assert len(read(out, index=":")) == 3


def test_inpaint_refines_a_start_placement(files, reference, host, capsys):
    """--start with the smallest --start-sigma: one step from the placement, which stays put (about
    1 A away from the analytic model's sites, where sampling from nothing would end)."""
    placement = host.copy()
    for frac in ([0.62, 0.38, 0.5], [0.78, 0.32, 0.6]):
        placement.append("Li", frac)
    placement.to(filename=str(files / "guess.cif"))
    out = files / "refined.extxyz"
    assert main(inpaint_args(files, "--out", str(out), "--start", str(files / "guess.cif"),
                             "--start-sigma", "0.01")) == 0
    for frame in read(out, index=":"):
        gap = frame.get_scaled_positions()[4:] - placement.frac_coords[4:]
        assert np.abs((gap - np.round(gap)) @ reference.lattice.matrix).max() < 0.1
    assert "needs a start sigma" in one_line_error(capsys, inpaint_args(files, "--out", str(files / "x.extxyz"),
                                                                      "--start", str(files / "guess.cif")))


def test_inpaint_regenerates_chosen_sites_and_existing_guests(files, reference, capsys):
    """From the full reference (4 Si, 2 Li): one Li site regenerated; then both Li kept and one
    added, or both regenerated with it. The kept sites come back bit for bit, in their order."""
    out = files / "sites.extxyz"
    base = ["inpaint", str(files / "full.cif"), "--model", "analytic", "--model-source", str(files / "full.cif"),
            "--samples", "2", "--seed", "1", "--jump-length", "5", "-q"]
    full = Structure.from_file(files / "full.cif")
    lithium = [i for i, site in enumerate(full) if site.specie.symbol == "Li"][-1]
    assert main([*base, "--regenerate-sites", str(lithium), "--out", str(out)]) == 0
    assert "regenerating Li:1 of full.cif" in capsys.readouterr().out
    kept = [i for i in range(6) if i != lithium]
    for frame in read(out, index=":"):
        assert frame.get_chemical_symbols() == [full[i].specie.symbol for i in kept] + ["Li"]
        assert np.allclose(frame.get_scaled_positions(wrap=False)[:5], full.frac_coords[kept], atol=1e-8)
    one_li = full.copy()
    one_li.remove_sites([lithium])
    one_li.to(filename=str(files / "one_li.cif"))
    on_top = [str(files / "one_li.cif") if arg == str(files / "full.cif") and i == 1 else arg for i, arg in enumerate(base)]
    assert main([*on_top, "--guest", "Li:1", "--out", str(files / "add.extxyz")]) == 0
    as_read = Structure.from_file(files / "one_li.cif")
    for frame in read(files / "add.extxyz", index=":"):     # the host's Li kept, one Li added
        assert frame.get_chemical_symbols() == [site.specie.symbol for site in as_read] + ["Li"]
        assert np.allclose(frame.get_scaled_positions(wrap=False)[:5], as_read.frac_coords, atol=1e-8)
    assert main([*on_top, "--guest", "Li:1", "--regenerate-existing", "--out", str(files / "all.extxyz")]) == 0
    for frame in read(files / "all.extxyz", index=":"):     # the host's Li taken out and made again
        assert frame.get_chemical_symbols() == ["Si"] * 4 + ["Li"] * 2
    assert "give site indices" not in capsys.readouterr().err
    assert "no guest atoms given" in one_line_error(capsys, [*base, "--out", str(files / "none.extxyz")])


def one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_host_file(files, capsys):
    argv = inpaint_args(files, "--out", str(files / "o.extxyz"))
    argv[1] = str(files / "nowhere.cif")
    assert "nowhere.cif: no such file" in one_line_error(capsys, argv)


def test_partial_occupancy_host(files, capsys):
    Structure(Lattice.cubic(5), [{"Si": 0.5, "Ge": 0.5}], [[0, 0, 0]]).to(filename=str(files / "host.cif"))
    line = one_line_error(capsys, inpaint_args(files, "--out", str(files / "o.extxyz")))
    assert "partial occupancy" in line and "order it first" in line


def test_unknown_model_lists_installed(files, capsys):
    argv = inpaint_args(files, "--out", str(files / "o.extxyz"))
    argv[argv.index("analytic")] = "mattergen-xl"
    assert "unknown model 'mattergen-xl'; installed models: analytic" in one_line_error(capsys, argv)


def test_guest_unknown_to_the_model(files, capsys):
    argv = inpaint_args(files, "--out", str(files / "o.extxyz"))
    argv[argv.index("Li:2")] = "Na:2"
    assert "element(s) Na unknown to AnalyticSiteModel" in one_line_error(capsys, argv)


def test_output_that_is_the_host_file_is_refused(files, capsys):
    before = (files / "host.cif").read_bytes()
    assert "is the host file itself" in one_line_error(capsys, inpaint_args(files, "--out", str(files / "host.cif")))
    assert (files / "host.cif").read_bytes() == before


def test_samples_below_one_names_the_flag(files, capsys):
    argv = inpaint_args(files, "--out", str(files / "o.extxyz"))
    argv[argv.index("--samples") + 1] = "0"
    assert "--samples must be a positive integer, got 0" in one_line_error(capsys, argv)


def test_without_a_seed_the_drawn_seed_is_stored_and_repeats_the_run(files, capsys):
    argv = inpaint_args(files, "--out", str(files / "drawn.extxyz"))
    del argv[argv.index("--seed"):argv.index("--seed") + 2]
    assert main(argv) == 0
    drawn = read(files / "drawn.extxyz", index=":")
    seed = drawn[0].info["seed"]
    assert seed >= 0 and f"(seed {seed})" in capsys.readouterr().out
    argv = inpaint_args(files, "--out", str(files / "again.extxyz"))
    argv[argv.index("--seed") + 1] = str(seed)
    assert main(argv) == 0
    assert np.array_equal(read(files / "again.extxyz", index=":")[2].positions, drawn[2].positions)


def test_bad_output_name(files, capsys):
    assert "--out" in one_line_error(capsys, inpaint_args(files, "--out", str(files / "o.pdb")))


@pytest.mark.parametrize("guest", ["Li:0", "Li:x", "Li"])
def test_bad_guest_count_is_an_argparse_error(files, capsys, guest):
    argv = inpaint_args(files, "--out", str(files / "o.extxyz"))
    argv[argv.index("Li:2")] = guest
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "--guest" in capsys.readouterr().err


@pytest.mark.parametrize("seed", ["-1", str(2**63), "x"])
def test_a_seed_outside_the_range_is_one_usage_error(files, capsys, seed):
    args = inpaint_args(files, "--out", str(files / "o.extxyz"))
    args[args.index("--seed") + 1] = seed
    with pytest.raises(SystemExit) as stop:
        main(args)
    assert stop.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--seed" in error and "Traceback" not in error
    assert ("not an integer" if seed == "x" else f"value {seed}: an integer in 0..2^63-1") in error


def test_ctrl_c_is_one_line_and_exit_130(files, capsys, monkeypatch):
    import chggen_plugins.cli.inpaint as command

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(command, "run", interrupted)
    assert main(inpaint_args(files, "--out", str(files / "o.extxyz"))) == 130
    assert capsys.readouterr().err.startswith("chggen: interrupted; what was stored is kept")
    assert not (files / "o.extxyz").exists()


def test_the_python_api_takes_the_same_host_choices_as_the_cli(files, reference):
    """Regeneration and symmetrization live in the API: the CLI's output equals inpaint()'s."""
    from chggen_plugins import inpaint, load_model

    out = files / "regen.extxyz"
    assert main(["inpaint", str(files / "full.cif"), "--model", "analytic", "--model-source",
                 str(files / "full.cif"), "--regenerate-species", "Li", "--samples", "2", "--seed", "3",
                 "--jump-length", "5", "-q", "--out", str(out)]) == 0
    model = load_model("analytic", str(files / "full.cif"))
    samples = inpaint(reference, {}, model, n_samples=2, seed=3, jump_length=5, regenerate_species=["Li"])
    assert samples[0].properties["regenerated"] == "Li:2"
    for frame, structure in zip(read(out, index=":"), samples):
        assert np.allclose(frame.get_scaled_positions(wrap=False), structure.frac_coords)


def test_the_docs_command_reference_is_the_parser() -> None:
    """docs/reference/cli.md is generated: `python -m chggen_plugins.cli.reference > docs/reference/cli.md`."""
    from chggen_plugins.cli import reference

    page = Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md"
    assert page.read_text() == reference.markdown()
    assert "## `chggen benchmark symmetry`" in page.read_text()
