"""What a new user broke (issue 27): overfilled cells, outputs checked only after the work, files
half-written by a full disk, half-made stores, and tracebacks for ordinary mistakes."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from ase.io import read
from pymatgen.core import Lattice, Structure

from chggen_plugins import inpaint
from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError
from chggen_plugins.runs.store import ResultStore
from chggen_plugins.structures import room
from chggen_plugins.structures.io import close_pairs
from chggen_plugins.structures.room import check_room, filling, guest_room

DIAMOND = [[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5],
           [0.25, 0.25, 0.25], [0.75, 0.75, 0.25], [0.75, 0.25, 0.75], [0.25, 0.75, 0.75]]


def si8() -> Structure:
    return Structure(Lattice.cubic(5.43), ["Si"] * 8, DIAMOND)


def without(structure: Structure, symbol: str) -> tuple[Structure, dict[str, int]]:
    host = structure.copy()
    host.remove_species([symbol])
    return host, {symbol: int(structure.composition[symbol])}


# Measured cells (room-temperature lattice constants): dense ionic crystals whose cations, as
# neutral-atom spheres, overfill the cell. Regenerating all their cations must stay allowed.
REAL_CRYSTALS = {
    "Li2O": Structure.from_spacegroup("Fm-3m", Lattice.cubic(4.61), ["O", "Li"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "Na2O": Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.55), ["O", "Na"], [[0, 0, 0], [0.25, 0.25, 0.25]]),
    "CsF": Structure.from_spacegroup("Fm-3m", Lattice.cubic(6.01), ["Cs", "F"], [[0, 0, 0], [0.5, 0.5, 0.5]]),
}


@pytest.mark.parametrize("name", sorted(REAL_CRYSTALS))
def test_real_crystals_fit_their_own_cells(name):
    crystal = REAL_CRYSTALS[name]
    cation = "F" if name == "CsF" else "O"
    guest = next(symbol for symbol in crystal.composition.as_dict() if symbol != cation)
    host, guests = without(crystal, guest)
    assert 1.0 < filling(host, guests) < room.FILLING_LIMIT  # a limit of 1 (spheres fill the cell) would refuse them
    check_room(host, guests, name)
    assert guest_room(host, guest) >= guests[guest]


def test_an_overfilled_cell_is_refused_before_any_sampling(tmp_path, capsys):
    """30 Li into Si8 used to come back with pairs 0.009 A apart, and exit 0."""
    # 1.5 x 160.1 A^3 less 8 Si spheres (r 1.1 A, 5.58 A^3 each) over one Li sphere (r 1.45 A, 12.77 A^3)
    assert guest_room(si8(), "Li") == 15
    with pytest.raises(ChggenError, match=r"host: guests Li:30 do not fit the Si8 cell \(160.1 A\^3\): .*2.67 times"):
        inpaint(si8(), {"Li": 30}, "native", seed=0)
    si8().to(filename=str(tmp_path / "si8.cif"))
    out = tmp_path / "out.extxyz"
    assert main(["inpaint", str(tmp_path / "si8.cif"), "--guest", "Li:1000", "--model", "native",
                 "--out", str(out), "-q"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and "guests Li:1000 do not fit the Si8 cell" in error and "at most 15 Li" in error
    assert not out.exists()


def test_a_cell_mostly_vacuum_is_refused():
    """A 1000 A axis was accepted, and the guests ended up in the vacuum."""
    slab = Structure(Lattice.from_parameters(5.43, 5.43, 1000.0, 90, 90, 90), ["Si"] * 8,
                     [[x, y, z * 5.43 / 1000] for x, y, z in DIAMOND])
    with pytest.raises(ChggenError, match=r"host: the Si8 cell has 995.9 A of vacuum along c .*give a bulk cell"):
        inpaint(slab, {"Li": 1}, "native", seed=0)
    assert room.vacuum_gap(si8())[0] == pytest.approx(5.43 / 4)  # bulk: a quarter of the cell between planes
    check_room(si8(), {"Li": 1}, "bulk")


def test_close_pairs_counts_each_pair_once_across_the_boundary():
    lattice = Lattice.cubic(6.0)
    assert close_pairs(Structure(lattice, ["Li", "Li"], [[0, 0, 0], [0.5, 0.5, 0.5]])) == 0
    # 0.6 A apart through the cell face, plus a third atom 0.9 A from the first
    crowded = Structure(lattice, ["Li", "Li", "Si"], [[0.05, 0, 0], [0.95, 0, 0], [0.05, 0.15, 0]])
    assert close_pairs(crowded) == 2
    assert close_pairs(crowded, cutoff=0.7) == 1


def test_crowded_samples_are_flagged_in_the_file_and_said(tmp_path, capsys):
    si8().to(filename=str(tmp_path / "si8.cif"))
    out = tmp_path / "crowded.extxyz"
    assert main(["inpaint", str(tmp_path / "si8.cif"), "--guest", "Li:15", "--model", "native", "--levels", "10",
                 "--samples", "2", "--seed", "0", "--out", str(out), "-q"]) == 0
    captured = capsys.readouterr()
    frames = read(out, index=":")
    counts = [frame.info["close_pairs"] for frame in frames]
    assert counts == [close_pairs(Structure.from_ase_atoms(frame)) for frame in frames]
    crowded = sum(count > 0 for count in counts)
    assert crowded > 0  # 15 Li at the limit, 10 levels: the model cannot place them all 1 A apart
    assert f"chggen: warning: {crowded} of 2 samples have atoms closer than 1.0 A" in captured.err
    assert f"{crowded} of them have atoms closer than 1 A (info key close_pairs)" in captured.out


def inpaint_command(tmp_path, out, *extra):
    si8().to(filename=str(tmp_path / "si8.cif"))
    return ["inpaint", str(tmp_path / "si8.cif"), "--guest", "Li:1", "--model", "native", "--levels", "20",
            "--samples", "1", "--seed", "0", "--out", str(out), "-q", *extra]


def test_an_existing_output_is_kept_unless_overwrite(tmp_path, capsys):
    out = tmp_path / "out.extxyz"
    out.write_text("a user's file\n")
    assert main(inpaint_command(tmp_path, out)) == 2
    assert f"--out {out} exists; pass --overwrite to replace it" in capsys.readouterr().err
    assert out.read_text() == "a user's file\n"
    assert main(inpaint_command(tmp_path, out, "--overwrite")) == 0
    assert read(out).get_chemical_formula() == "LiSi8"


@pytest.mark.parametrize("where, message", [("folder", "is a folder; give a file name"),
                                             ("proc", "cannot write in /proc")])
def test_a_bad_output_path_is_refused_before_the_work(tmp_path, capsys, monkeypatch, where, message):
    import chggen_plugins.api as api

    def no_sampling(*args, **kwargs):
        raise AssertionError("sampling started before the output was checked")

    monkeypatch.setattr(api, "sample_tasks", no_sampling)
    out = tmp_path / "a_folder.extxyz" if where == "folder" else "/proc/chggen-test/out.extxyz"
    if where == "folder":
        out.mkdir()
    assert main(inpaint_command(tmp_path, out)) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("chggen: error: --out ") and message in error and "\n" not in error


@pytest.mark.parametrize("command", ["intercalate", "order"])
def test_run_commands_refuse_an_output_that_is_a_file(tmp_path, capsys, command):
    """Both used to end in FileExistsError."""
    (tmp_path / "taken").write_text("x")
    if command == "intercalate":
        si8().to(filename=str(tmp_path / "host.cif"))
        args = ["intercalate", str(tmp_path / "host.cif"), "--guest", "Li", "--max", "1"]
    else:
        disordered = Structure(Lattice.cubic(4.2), [{"Li": 0.5}, "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
        disordered.to(filename=str(tmp_path / "host.cif"))
        args = ["order", str(tmp_path / "host.cif"), "--supercell", "2x1x1"]
    assert main([*args, "--model", "native", "--out", str(tmp_path / "taken"), "-q"]) == 2
    error = capsys.readouterr().err.strip()
    assert "\n" not in error and f"output {tmp_path / 'taken'} is a file; give a folder" in error


def test_a_store_of_another_kind_of_run_is_named(tmp_path):
    store = ResultStore(tmp_path / "results.db")
    store.claim({"seed": "0"}, "a campaign", "hint")
    with pytest.raises(ChggenError, match="holds a campaign, not an intercalation sweep; choose another output"):
        ResultStore(tmp_path / "results.db").claim({"seed": "0"}, "an intercalation sweep", "hint")


def limited(script: str, max_bytes: int) -> subprocess.CompletedProcess:
    """Run `script` in a fresh Python whose files cannot grow past `max_bytes`: a full disk, for real
    writes (the kernel refuses them with EFBIG; SIGXFSZ, which would kill the process, is ignored)."""
    prologue = textwrap.dedent(f"""
        import resource, signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, ({max_bytes}, {max_bytes}))
    """)
    return subprocess.run([sys.executable, "-c", prologue + textwrap.dedent(script)], capture_output=True,
                          text=True, timeout=300)


def test_a_full_disk_while_a_store_is_made_leaves_no_half_store(tmp_path):
    """It used to leave a results.db on which every rerun failed with "'NoneType' object is not subscriptable"."""
    path = tmp_path / "run" / "results.db"
    result = limited(f"""
        from chggen_plugins.runs.store import ResultStore
        try:
            ResultStore({str(path)!r})
        except Exception as error:
            print(type(error).__name__, error)
    """, 4096)
    assert result.stdout.startswith("ChggenError ") and "cannot create the results store" in result.stdout
    assert not path.exists() and list(path.parent.iterdir()) == []
    store = ResultStore(path)  # the rerun, with room: a working store
    store.claim({"seed": "0"}, "a campaign", "hint")
    assert store.metadata["fingerprint"] == {"seed": "0"}


def test_a_full_disk_while_rows_are_written_keeps_the_rows_before(tmp_path):
    path = tmp_path / "results.db"
    ResultStore(path).claim({"seed": "0"}, "a campaign", "hint")
    result = limited(f"""
        from pymatgen.core import Lattice, Structure
        from chggen_plugins.runs.store import ResultStore
        store = ResultStore({str(path)!r})
        structure = Structure(Lattice.cubic(20.0), ["Si"] * 64, [[i / 64, (i % 8) / 8, 0.5] for i in range(64)])
        try:
            with store.writing():
                for i in range(10_000):
                    store.add(f"uid-{{i}}", {{"status": "relaxed"}}, structure)
        except Exception as error:
            print(type(error).__name__, error)
    """, 400_000)
    assert result.stdout.startswith("ChggenError ") and "cannot store uid-" in result.stdout, result.stderr
    kept = int(result.stdout.split("the ")[1].split(" structures")[0])
    store = ResultStore(path)
    assert kept > 0 and len(store) == kept and {r.uid for r in store.results()} == {f"uid-{i}" for i in range(kept)}


def test_a_full_disk_while_inpaint_writes_keeps_the_old_file(tmp_path):
    """A full disk used to turn an existing good 8-frame extxyz into an unreadable truncated file."""
    out = tmp_path / "out.extxyz"
    assert main(inpaint_command(tmp_path, out)) == 0
    before = out.read_bytes()
    args = inpaint_command(tmp_path, out, "--overwrite")
    args[args.index("--samples") + 1] = "40"  # a file larger than the limit
    result = limited(f"""
        import sys
        from chggen_plugins.cli import main
        sys.exit(main({args!r}))
    """, len(before) * 4)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("chggen: error: ") and f"cannot write {out} (File too large); the file there before is kept" in lines[0]
    assert out.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["out.extxyz", "si8.cif"]
    assert np.allclose(read(out).positions[:8], si8().cart_coords)


def test_a_store_is_made_where_hard_links_are_not_allowed(tmp_path, monkeypatch):
    """FAT and some SMB mounts refuse hard links: the store is then made by a rename of an absent name."""
    import errno as errno_
    import os as os_

    def no_links(source, target):
        raise OSError(errno_.EPERM, "Operation not permitted")

    monkeypatch.setattr(os_, "link", no_links)
    store = ResultStore(tmp_path / "run" / "results.db")
    store.claim({"seed": "0"}, "a campaign", "hint")
    assert ResultStore(tmp_path / "run" / "results.db").metadata["kind"] == "a campaign"
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["results.db"]
