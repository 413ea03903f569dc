"""Discovery through the `chggen` entry-point group, exactly as a pip-installed adapter is found."""

import os
import subprocess
import sys

import pluggy
import pytest

from chggen_plugins.contract import hookspecs
from chggen_plugins.contract.registry import installed_models, load_model
from chggen_plugins.errors import ChggenError

FAKE_PLUGIN = '''
from pymatgen.core import Lattice, Structure

from chggen_plugins.models.analytic import AnalyticSiteModel
from chggen_plugins.contract.hookspecs import ModelSpec, hookimpl
from chggen_plugins.sampling.noise import FractionalVE


def load(source):
    reference = Structure(Lattice.cubic(4.0), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return AnalyticSiteModel(reference, 0.02, FractionalVE(num_levels={levels}))


@hookimpl
def chggen_score_models():
    return [ModelSpec(name="{name}", load=load, summary="a toy adapter for tests")]
'''


def make_distribution(root, package, name, version="1.2.3", levels=50, entry_name=None):
    """A pip-style installed distribution: a package plus a dist-info with an entry point."""
    (root / package).mkdir()
    (root / package / "__init__.py").write_text("")
    (root / package / "plugin.py").write_text(FAKE_PLUGIN.format(name=name, levels=levels))
    info = root / f"{package}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[chggen]\n{entry_name or name} = {package}.plugin\n")


def run_chggen(args, pythonpath):
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    return subprocess.run([sys.executable, "-m", "chggen_plugins.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_models_lists_an_installed_adapter_with_its_origin(tmp_path):
    make_distribution(tmp_path, "toy_adapter", "toy")
    result = run_chggen(["models"], tmp_path)
    assert result.returncode == 0, result.stderr
    toy = next(line for line in result.stdout.splitlines() if line.startswith("toy "))
    assert "S Zn" in toy and "FractionalVE" in toy and "50 levels" in toy
    assert "toy_adapter 1.2.3 (toy_adapter.plugin)" in toy
    # the core's own sanity-check models come through the same entry-point group
    assert any(line.startswith("analytic ") and "chggen-plugins" in line
               for line in result.stdout.splitlines())


def test_inpaint_with_an_adapter_model_end_to_end(tmp_path):
    make_distribution(tmp_path, "toy_adapter", "toy", levels=12)
    from pymatgen.core import Lattice, Structure
    Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]]).to(filename=str(tmp_path / "zn.cif"))
    out = tmp_path / "out.extxyz"
    result = run_chggen(["inpaint", str(tmp_path / "zn.cif"), "--guest", "S:1", "--model", "toy",
                         "--samples", "3", "--seed", "1", "--resamples", "1", "--out", str(out), "-q"],
                        tmp_path)
    assert result.returncode == 0, result.stderr
    from ase.io import read
    frames = read(out, index=":")
    assert len(frames) == 3 and all(f.get_chemical_formula() == "SZn" for f in frames)


@pytest.mark.parametrize("clash,listed,message", [
    ("model", "NAME CLASH", "model name 'same' is registered by several plugins: toy_one 1.2.3 (toy_one.plugin) "
                            "and toy_two 1.2.3 (toy_two.plugin); uninstall all but one"),
    ("entry point", "NOT LOADED", "plugin name 'same' is declared by both"),
])
def test_two_plugins_claiming_one_name_disable_that_name_only(tmp_path, clash, listed, message):
    """Two packages offering one model name, or one entry-point name (pluggy would drop one): both
    are listed and marked, that name is refused in one line, every other model still works."""
    make_distribution(tmp_path, "toy_one", "same", entry_name=None if clash == "entry point" else "one")
    make_distribution(tmp_path, "toy_two", "same", entry_name=None if clash == "entry point" else "two")
    make_distribution(tmp_path, "toy_adapter", "toy")
    result = run_chggen(["models"], tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    same = [line for line in lines if line.startswith("same ")]
    assert len(same) == (2 if clash == "model" else 1) and all(listed in line for line in same)
    assert any(line.startswith("toy ") and "S Zn" in line for line in lines)
    assert any(line.startswith("analytic ") for line in lines)
    from pymatgen.core import Lattice, Structure
    Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]]).to(filename=str(tmp_path / "zn.cif"))
    used = run_chggen(["inpaint", str(tmp_path / "zn.cif"), "--guest", "S:1", "--model", "same",
                       "--out", str(tmp_path / "o.cif")], tmp_path)
    assert used.returncode == 2
    error = used.stderr.strip().splitlines()
    assert len(error) == 1 and message in error[0], error


def test_a_plugin_that_fails_to_import_is_reported_and_skipped(tmp_path):
    """One broken adapter (a missing dependency, say) must not take every other model down."""
    make_distribution(tmp_path, "toy_adapter", "toy")
    make_distribution(tmp_path, "bad_adapter", "bad")
    (tmp_path / "bad_adapter" / "plugin.py").write_text("import a_dependency_that_is_not_installed\n")
    listed = run_chggen(["models"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert any(line.startswith("toy ") for line in listed.stdout.splitlines())
    broken = next(line for line in listed.stdout.splitlines() if line.startswith("bad "))
    assert "NOT LOADED" in broken and "No module named 'a_dependency_that_is_not_installed'" in broken
    from pymatgen.core import Lattice, Structure
    Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]]).to(filename=str(tmp_path / "zn.cif"))
    used = run_chggen(["inpaint", str(tmp_path / "zn.cif"), "--guest", "S:1", "--model", "bad",
                       "--out", str(tmp_path / "o.cif")], tmp_path)
    assert used.returncode == 2
    error = [line for line in used.stderr.splitlines() if line.startswith("chggen: error")]
    assert len(error) == 1 and "plugin 'bad' failed to load: bad_adapter 1.2.3: ModuleNotFoundError" in error[0]


def _manager_with(*plugins):
    manager = pluggy.PluginManager(hookspecs.PROJECT)
    manager.add_hookspecs(hookspecs)
    for plugin in plugins:
        manager.register(plugin)
    return manager


def test_unknown_model_lists_the_installed_ones():
    with pytest.raises(ChggenError, match=r"unknown model 'nope'; installed models: analytic, "
                                          r"analytic-fractional"):
        load_model("nope")


def test_a_plugin_returning_something_else_is_refused():
    class Broken:
        @hookspecs.hookimpl
        def chggen_score_models(self):
            return [hookspecs.ModelSpec("broken", lambda source: object(), "returns junk")]

    manager = _manager_with(Broken())
    assert list(installed_models(manager)) == ["broken"]
    with pytest.raises(ChggenError, match=r"model .broken.: object has no noise_process, elements, score, to; "
                                          "a score model implements chggen_plugins.contract.protocol.ScoreModel"):
        load_model("broken", manager=manager)


@pytest.mark.parametrize("mistake, reason", [
    ("@hookimpl\ndef chggen_score_model():", "hook 'chggen_score_model' is not a chggen hook (did you mean "
                                             "'chggen_score_models'?)"),
    ("def chggen_score_models():", "toy_adapter.plugin registers no hook: mark its functions with "
                                  "@chggen_plugins.hookimpl"),
])
def test_a_misspelt_or_unmarked_hook_is_named(tmp_path, mistake, reason):
    """Both used to register nothing, silently: the user saw only "unknown model 'toy'"."""
    make_distribution(tmp_path, "toy_adapter", "toy")
    plugin = tmp_path / "toy_adapter" / "plugin.py"
    plugin.write_text(plugin.read_text().replace("@hookimpl\ndef chggen_score_models():", mistake))
    listed = run_chggen(["models"], tmp_path)
    assert listed.returncode == 0, listed.stderr
    toy = next(line for line in listed.stdout.splitlines() if line.startswith("toy "))
    assert "NOT LOADED" in toy and reason in toy
    from pymatgen.core import Lattice, Structure
    Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]]).to(filename=str(tmp_path / "zn.cif"))
    used = run_chggen(["inpaint", str(tmp_path / "zn.cif"), "--guest", "S:1", "--model", "toy",
                       "--out", str(tmp_path / "o.cif")], tmp_path)
    assert used.returncode == 2 and reason in used.stderr and used.stderr.count("chggen: error") == 1


def test_a_model_object_that_breaks_the_protocol_is_named():
    """A model without noise_process was a bare AttributeError; elements given as symbols failed in pymatgen."""
    from pymatgen.core import Lattice, Structure

    from chggen_plugins import inpaint
    from chggen_plugins.models.analytic import AnalyticSiteModel
    from chggen_plugins.sampling.noise import FractionalVE

    reference = Structure(Lattice.cubic(4.0), ["Zn", "S"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    host = Structure(Lattice.cubic(4.0), ["Zn"], [[0, 0, 0]])
    model = AnalyticSiteModel(reference, 0.02, FractionalVE(num_levels=10))
    model.elements = frozenset({"Zn", "S"})
    with pytest.raises(ChggenError, match=r"model: elements must be a non-empty set of atomic numbers 1..118, "
                                          r"got \['S', 'Zn'\] \(e.g. '.*': use its atomic number"):
        inpaint(host, {"S": 1}, model)

    class NoProcess:
        elements = frozenset({16, 30})

        def score(self, batch, level):
            raise AssertionError("never called")

        def to(self, device):
            return self

    with pytest.raises(ChggenError, match="model: NoProcess has no noise_process; a score model implements"):
        inpaint(host, {"S": 1}, NoProcess())


def test_model_that_needs_a_source_says_so():
    with pytest.raises(ChggenError, match="needs --model-source"):
        load_model("analytic")


def test_the_core_never_imports_an_adapter():
    """Adapters are found by entry point only: no core module names one."""
    import pathlib

    core = pathlib.Path(hookspecs.__file__).parent
    for path in core.rglob("*.py"):
        text = path.read_text()
        for adapter in ("adapters", "chggen_native", "chggen_mattergen", "chggen_diffcsp"):
            assert f"import {adapter}" not in text and f"from {adapter}" not in text, path
