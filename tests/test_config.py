"""Campaign config: defaults, and one line naming the key for every kind of mistake."""

from pathlib import Path

import pytest

from chggen_plugins.cli import main
from chggen_plugins.errors import ChggenError
from chggen_plugins.runs import config as config_module
from chggen_plugins.runs.config import (CellsConfig, CoordinationConfig, HostsConfig, RelaxConfig, SamplerConfig,
                                      SymmetryConfig, load_config)
from chggen_plugins.structures.cells import LATTICE_SYSTEMS

MINIMAL = """
[model]
name = "analytic"

[[compositions]]
formula = "Li2Si"
guests = ["Li"]
"""


DOCS_PAGE = Path(__file__).resolve().parents[1] / "docs" / "reference" / "config.md"


def write(tmp_path, text: str):
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    return path


def test_minimal_config_gets_the_paper_defaults(tmp_path):
    config = load_config(write(tmp_path, MINIMAL))
    assert config.output == (tmp_path / "chggen_campaign").resolve()
    assert config.cells.v0 == 24.0 and config.cells.systems == LATTICE_SYSTEMS
    assert config.cells.ratios == (0.5, 0.75, 1.0, 1.25, 1.5)
    # resamples left to the model: 3 (the paper's), or 1 for a host-conditioned model (test_workflow)
    assert (config.sampler.jump_length, config.sampler.resamples) == (10, None)
    assert (config.relax.fmax, config.relax.max_steps) == (0.1, 500)
    assert (config.symmetry.symprec, config.symmetry.angle_tolerance) == (0.1, 10.0)
    assert config.stability.threshold == 0.1 and config.stability.cache == config.output / "hull"
    assert config.compositions[0].counts(2) == {"Li": 4, "Si": 2}


def test_a_config_without_optional_keys_gets_the_declared_defaults(tmp_path):
    """The loader takes its defaults from the config classes, the same the reference page prints."""
    config = load_config(write(tmp_path, MINIMAL))
    assert (config.sampler, config.cells, config.relax) == (SamplerConfig(), CellsConfig(), RelaxConfig())
    assert (config.hosts, config.symmetry, config.coordination) == (HostsConfig(), SymmetryConfig(),
                                                                    CoordinationConfig())
    assert (config.seed, config.shortlist_max, config.model.device) == (0, 20, "cpu")
    assert (config.compositions[0].formula_units, config.compositions[0].host_files) == ((1,), ())
    page = config_module.markdown()
    assert "| `jump_length` | integer | `10` | levels |" in page
    assert "| `threshold` | number | `0.1` | eV/atom |" in page
    assert "| `max` | integer | `20` | structures |" in page.split("## [shortlist]")[1]


def test_the_docs_config_reference_is_the_config_classes() -> None:
    """docs/reference/config.md is generated: `python -m chggen_plugins.runs.config > docs/reference/config.md`."""
    assert DOCS_PAGE.read_text() == config_module.markdown()


def test_fingerprint_ignores_report_settings_only(tmp_path):
    base = load_config(write(tmp_path, MINIMAL)).fingerprint()
    looser = load_config(write(tmp_path, MINIMAL + "[stability]\nthreshold = 0.03\n[shortlist]\nmax = 3\n"))
    assert looser.fingerprint() == base
    other = load_config(write(tmp_path, MINIMAL + "[cells]\nv0 = 20.0\n")).fingerprint()
    assert [k for k in base if base[k] != other[k]] == ["cells"]


# Computed before [hosts] orbits existed (main at 1281cc3): a store made then must still resume.
OLD_SYMMETRIC = MINIMAL.replace("[[compositions]]", '[hosts]\nmethods = ["inpainting", "inpainting-sym"]\nsamples = 4\n'
                                "[[compositions]]")
OLD_FINGERPRINT = {"seed": "5feceb66ffc86f38", "model": "91e38e7ee54f2827", "sampler": "e42dc152b9b09680",
                   "cells": "50ea752e856a4612", "relax": "cd89a20e8e1d9cad", "hosts": "eb817d1c4e9aadb5",
                   "symmetry": "fc07b78d118eb8ab", "stability": "c9b31405b35869ee",
                   "compositions": "3813ede61090901f"}


def test_orbits_uniform_keeps_the_fingerprint_of_configs_from_before_the_key_and_model_changes_it(tmp_path):
    """A config without `orbits` and one with the default "uniform" hash as before the key (every
    section but the relaxer's version, which follows the installed CHGNet); "model" makes other
    structures, so it changes [hosts] alone and a resume with it is refused."""
    for text in (OLD_SYMMETRIC, OLD_SYMMETRIC.replace("samples = 4", 'samples = 4\norbits = "uniform"')):
        config = load_config(write(tmp_path, text))
        assert config.hosts.orbits == "uniform"
        assert {k: v for k, v in config.fingerprint().items() if k != "relaxer"} == OLD_FINGERPRINT
    model = load_config(write(tmp_path, OLD_SYMMETRIC.replace("samples = 4", 'samples = 4\norbits = "model"')))
    assert model.hosts.orbits == "model"
    assert [k for k, v in model.fingerprint().items() if k != "relaxer" and v != OLD_FINGERPRINT[k]] == ["hosts"]


def test_solver_keys_at_their_defaults_keep_the_fingerprint_of_stores_made_before_them(tmp_path):
    """The sampler hash of a config without solver keys is the one of the dict stores were made with."""
    import hashlib
    import json

    base = load_config(write(tmp_path, MINIMAL))
    before = {"jump_length": 10, "resamples": None, "unconditional_resamples": 1, "batch_size": 64}
    assert base.fingerprint()["sampler"] == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    explicit = load_config(write(tmp_path, MINIMAL + "[sampler]\nsolver = \"pc\"\nchurn = 0.0\n"))
    assert explicit.fingerprint() == base.fingerprint()
    heun = load_config(write(tmp_path, MINIMAL + "[sampler]\nsolver = \"heun\"\nsteps = 25\nchurn = 0.3\n"))
    assert (heun.sampler.solver, heun.sampler.steps, heun.sampler.churn) == ("heun", 25, 0.3)
    assert [k for k in base.fingerprint() if base.fingerprint()[k] != heun.fingerprint()[k]] == ["sampler"]


def test_fingerprint_follows_file_contents_not_paths(tmp_path):
    """Moved or copied, a campaign keeps its fingerprint (the hull cache is no setting); an entries
    or host file with other contents changes it."""
    text = MINIMAL.replace("[[compositions]]", '[stability]\nentries = "entries.json"\n[[compositions]]') + \
        'host_files = ["host.cif"]\n'
    fingerprints = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "entries.json").write_text("[]")
        (tmp_path / folder / "host.cif").write_text("data_host\n")
        fingerprints.append(load_config(write(tmp_path / folder, text)).fingerprint())
    assert fingerprints[0] == fingerprints[1]
    (tmp_path / "b" / "entries.json").write_text('[{"@module": "x"}]')
    (tmp_path / "b" / "host.cif").write_text("data_other\n")
    changed = load_config(tmp_path / "b" / "campaign.toml").fingerprint()
    assert [k for k in changed if changed[k] != fingerprints[0][k]] == ["stability", "compositions"]


@pytest.mark.parametrize("text, message", [
    ("", "the config is empty"),
    ("   \n# only a comment\n", "the config is empty"),
    ("[model\nname = 1", "not valid TOML"),
    ("[[compositions]]\nformula = \"LiSi\"\nguests = [\"Li\"]\n", "missing key 'model.name'"),
    ("[model]\nname = \"analytic\"\n", "missing key 'compositions'"),
    (MINIMAL + "[cells]\nv0 = -3.0\n", "key 'cells.v0' must be > 0"),
    (MINIMAL + "[cells]\nv0 = \"big\"\n", "key 'cells.v0' must be a number"),
    (MINIMAL + "[cells]\nsystems = [\"cubic\", \"sphere\"]\n", "key 'cells.systems' has 'sphere'"),
    (MINIMAL + "[cells]\ncount = 0\n", "key 'cells.count' must be >= 1"),
    (MINIMAL + "[cells]\ncount = 5\nsamples_per_cell = 2\n", "'cells.count' and samples_per_cell exclude"),
    (MINIMAL.replace('name = "analytic"', 'name = "analytic"\nown_samples = -1'), "'model.own_samples' must be >= 0"),
    (MINIMAL + "[sampler]\njump_lenght = 5\n", "unknown key 'sampler.jump_lenght'"),
    (MINIMAL + "[sampler]\nresamples = 0\n", "key 'sampler.resamples' must be >= 1"),
    (MINIMAL + "[sampler]\nsolver = \"euler\"\n", "key 'sampler.solver' is 'euler', not one of pc, heun, ode"),
    (MINIMAL + "[sampler]\nsteps = 20\n", "key 'sampler.steps' is for solver heun or ode, not pc"),
    (MINIMAL + "[sampler]\nsolver = \"ode\"\nchurn = 0.2\n", "key 'sampler.churn' is for solver heun, not ode"),
    (MINIMAL + "[sampler]\nsolver = \"heun\"\nsteps = 1\n", "key 'sampler.steps' must be >= 2"),
    (MINIMAL + "[sampler]\nsolver = \"heun\"\nchurn = -1\n", "key 'sampler.churn' must be >= 0"),
    (MINIMAL + "[symmetry]\nlibraries = [\"spglib\", \"nope\"]\n", "key 'symmetry.libraries'"),
    (MINIMAL + "[stability]\nentries = \"missing.json\"\n", "key 'stability.entries' names"),
    (MINIMAL + "[hosts]\norbits = \"nearest\"\n", "key 'hosts.orbits' must be one of \"uniform\", \"model\", got 'nearest'"),
    (MINIMAL.replace('"Li2Si"', '"Xx2Si"'), r"key 'compositions\[0\].formula'"),
    (MINIMAL.replace('["Li"]', '["Na"]'), r"key 'compositions\[0\].guests' .*'Na' is not an element of Li2Si"),
    (MINIMAL.replace('["Li"]', '["Li", "Si"]'), r"compositions\[0\].guests' must leave host atoms"),
    (MINIMAL + "host_files = [\"nope.cif\"]\n", r"key 'compositions\[0\].host_files\[0\]' names"),
    (MINIMAL + "formula_units = [0]\n", r"compositions\[0\].formula_units"),
    (MINIMAL + "formula_units = [1.5]\n", r"formula_units' must be a non-empty list of integers, got \[1.5\]"),
    ("model = 3\n" + MINIMAL.replace("[model]\nname = \"analytic\"\n", ""), "'model' must be a table"),
])
def test_mistakes_are_one_line_naming_the_key(tmp_path, text, message):
    with pytest.raises(ChggenError, match=message) as error:
        load_config(write(tmp_path, text))
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, MINIMAL + "[relax]\nfmax = 0\n")
    assert main(["campaign", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chggen: error:") and "'relax.fmax' must be > 0" in err and "\n" not in err


def test_the_shipped_example_config_is_valid():
    examples = Path(__file__).resolve().parents[1] / "examples"
    config = load_config(examples / "campaign_analytic.toml")
    assert config.model.name == "analytic" and Path(config.model.source).is_file()
    assert config.compositions[0].host_files[0] == (examples / "si_host.cif").resolve()


def test_campaign_help_shows_an_example_and_every_section(capsys):
    with pytest.raises(SystemExit) as done:
        main(["campaign", "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "chggen campaign li_si.toml" in text
    for section in ("[model]", "[sampler]", "[cells]", "[relax]", "[hosts]", "[symmetry]", "[stability]",
                    "[shortlist]", "[coordination]", "[[compositions]]"):
        assert section in text
